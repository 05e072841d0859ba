//! Per-token log-probabilities and entropies: what the GRPO loss is made of.

use burn::tensor::{Int, Tensor};

use crate::cache::KvCache;
use crate::model::CausalLm;

/// `log Σ exp(x)` over the last axis, kept as an axis of size 1: `[.., n]` → `[.., 1]`.
pub fn logsumexp(x: Tensor<3>) -> Tensor<3> {
    let (shifted, max) = shift_by_max(x);
    log_sum_exp_shifted(shifted) + max
}

/// `x − max(x)` over the last axis, and that max `[.., 1]`. The max is detached: the
/// gradient of a log-softmax does not depend on it, and subtracting it keeps `exp` finite and
/// the differences of large logits exact.
fn shift_by_max(x: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
    let max = x.clone().max_dim(2).detach();
    (x - max.clone(), max)
}

fn log_sum_exp_shifted(shifted: Tensor<3>) -> Tensor<3> {
    shifted.exp().sum_dim(2).log()
}

/// `log softmax(logits / T)[target]` as `gather(z) − logsumexp(z)` with `z = logits/T`,
/// without a full log-softmax tensor: `[batch, seq, vocab]`, targets `[batch, seq]` →
/// `[batch, seq]`. Both terms are taken after subtracting the max, so `1000` vs `1000 + ln 2`
/// keeps its precision.
pub fn token_logprobs(logits: Tensor<3>, targets: Tensor<2, Int>, temperature: f32) -> Tensor<2> {
    let (shifted, _) = shift_by_max(logits.div_scalar(temperature));
    let picked = shifted.clone().gather(2, targets.unsqueeze_dim(2)); // [batch, seq, 1]
    (picked - log_sum_exp_shifted(shifted)).squeeze_dim(2)
}

/// Entropy of `softmax(logits / T)` per position: `H = logsumexp(z) − Σ softmax(z)·z`, with
/// `z = logits/T` (shifted by its max, which leaves `H` unchanged). `[batch, seq, vocab]` →
/// `[batch, seq]`.
pub fn entropy(logits: Tensor<3>, temperature: f32) -> Tensor<2> {
    let (z, _) = shift_by_max(logits.div_scalar(temperature));
    let lse = log_sum_exp_shifted(z.clone());
    let p = (z.clone() - lse.clone()).exp();
    (lse - (p * z).sum_dim(2)).squeeze_dim(2)
}

/// Log-probs and entropies of a batch's completion tokens.
#[derive(Debug, Clone)]
pub struct CompletionLogprobs {
    /// `[batch, completion_len]`: log π(token_t | tokens_<t) at temperature T.
    pub logprobs: Tensor<2>,
    /// `[batch, completion_len]`: the entropy of the distribution each token was drawn from.
    pub entropy: Tensor<2>,
}

impl CausalLm {
    /// Log-probs (and entropies) of the completion part of `tokens` `[batch, prompt_len +
    /// completion_len]`, prompts left-padded by `padding[row]`. The LM head runs only at the
    /// `completion_len` positions that predict completion tokens, not over the prompts.
    pub fn completion_logprobs(
        &self,
        tokens: Tensor<2, Int>,
        prompt_len: usize,
        padding: Vec<usize>,
        temperature: f32,
    ) -> CompletionLogprobs {
        let [_, total] = tokens.dims();
        assert!(
            prompt_len >= 1 && prompt_len < total,
            "need a prompt and a completion"
        );
        let completion_len = total - prompt_len;
        let mut cache = KvCache::new(self.config().num_hidden_layers, padding);
        let hidden = self.forward_hidden(tokens.clone(), &mut cache);
        // Position t predicts token t+1: positions prompt_len-1 .. total-2.
        let hidden = hidden.narrow(1, prompt_len - 1, completion_len); // [batch, completion, d]
        let logits = self.logits(hidden); // [batch, completion, vocab]
        let targets = tokens.narrow(1, prompt_len, completion_len);
        CompletionLogprobs {
            logprobs: token_logprobs(logits.clone(), targets, temperature),
            entropy: entropy(logits, temperature).detach(),
        }
    }
}
