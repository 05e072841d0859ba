//! Per-token log-probabilities and entropies: what the GRPO loss is made of.

use burn::tensor::{Int, Tensor};

use crate::cache::{KvCache, row_index};
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

/// `logits / T`, without a pass over the logits at T = 1.
fn at_temperature(logits: Tensor<3>, temperature: f32) -> Tensor<3> {
    if temperature == 1.0 {
        logits
    } else {
        logits.div_scalar(temperature)
    }
}

/// `log softmax(logits / T)[target]` as `gather(z) − logsumexp(z)` with `z = logits/T`,
/// without a full log-softmax tensor: `[batch, seq, vocab]`, targets `[batch, seq]` →
/// `[batch, seq]`. Both terms are taken after subtracting the max, so `1000` vs `1000 + ln 2`
/// keeps its precision.
pub fn token_logprobs(logits: Tensor<3>, targets: Tensor<2, Int>, temperature: f32) -> Tensor<2> {
    let (shifted, _) = shift_by_max(at_temperature(logits, temperature));
    let picked = shifted.clone().gather(2, targets.unsqueeze_dim(2)); // [batch, seq, 1]
    (picked - log_sum_exp_shifted(shifted)).squeeze_dim(2)
}

/// Entropy of `softmax(logits / T)` per position: `H = logsumexp(z) − Σ softmax(z)·z`, with
/// `z = logits/T` (shifted by its max, which leaves `H` unchanged). `[batch, seq, vocab]` →
/// `[batch, seq]`.
pub fn entropy(logits: Tensor<3>, temperature: f32) -> Tensor<2> {
    let (z, _) = shift_by_max(at_temperature(logits, temperature));
    let lse = log_sum_exp_shifted(z.clone());
    let p = (z.clone() - lse.clone()).exp();
    (lse - (p * z).sum_dim(2)).squeeze_dim(2)
}

/// The logits that predict a batch's completion tokens, and those tokens: what the GRPO and
/// SFT losses are made of.
#[derive(Debug, Clone)]
pub struct CompletionLogits {
    /// `[rows, completion_len, vocab]`: position t holds the logits that predict `targets[.., t]`.
    pub logits: Tensor<3>,
    /// `[rows, completion_len]`: the completion tokens.
    pub targets: Tensor<2, Int>,
}

impl CompletionLogits {
    /// `[rows, completion_len]`: log π(token_t | tokens_<t) at temperature T (carries gradients
    /// when the logits do).
    pub fn logprobs(&self, temperature: f32) -> Tensor<2> {
        token_logprobs(self.logits.clone(), self.targets.clone(), temperature)
    }

    /// `[rows, completion_len]`: the entropy of the distribution each token was drawn from,
    /// computed on detached logits (a metric: no gradient, and nothing recorded for one).
    pub fn entropy(&self, temperature: f32) -> Tensor<2> {
        entropy(self.logits.clone().detach(), temperature)
    }
}

/// Completions that continue a few prompts, each prompt shared by several rows: a GRPO
/// micro-batch, where K completions follow every prompt.
#[derive(Debug, Clone)]
pub struct GroupedCompletions {
    /// `[prompts, prompt_len]`, prompt p left-padded by `padding[p]`.
    pub prompts: Tensor<2, Int>,
    pub padding: Vec<usize>,
    /// `[rows, completion_len]`, right-padded (a causal model never lets a real token see the
    /// padding after it).
    pub completions: Tensor<2, Int>,
    /// `group[row]`: the prompt that row continues.
    pub group: Vec<usize>,
}

impl CausalLm {
    /// The completion logits of `tokens` `[batch, prompt_len + completion_len]`, prompts
    /// left-padded by `padding[row]`: one forward over every row's whole sequence. The LM head
    /// runs only at the `completion_len` positions that predict completion tokens.
    pub fn completion_logits(
        &self,
        tokens: Tensor<2, Int>,
        prompt_len: usize,
        padding: Vec<usize>,
    ) -> CompletionLogits {
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
        CompletionLogits {
            logits: self.logits(hidden),
            targets: tokens.narrow(1, prompt_len, completion_len),
        }
    }

    /// The completion logits of a [`GroupedCompletions`] batch, running each prompt once: the
    /// prompts are prefilled as a batch of `prompts` rows, their keys and values are repeated
    /// to the rows that continue them (`select`, differentiable: a prompt's gradient is the sum
    /// over its rows), and only the completions are forwarded after them. The same numbers as
    /// [`CausalLm::completion_logits`] on the concatenated sequences, with the prompt positions
    /// computed once per prompt instead of once per row.
    pub fn grouped_completion_logits(&self, batch: GroupedCompletions) -> CompletionLogits {
        let GroupedCompletions {
            prompts,
            padding,
            completions,
            group,
        } = batch;
        let [prompt_count, prompt_len] = prompts.dims();
        let [rows, completion_len] = completions.dims();
        assert!(
            prompt_len >= 1 && completion_len >= 1,
            "need a prompt and a completion"
        );
        assert_eq!(group.len(), rows, "one group index per completion row");
        assert!(
            group.iter().all(|&g| g < prompt_count),
            "a group index names no prompt"
        );
        let device = prompts.device();
        let mut cache = KvCache::new(self.config().num_hidden_layers, padding);
        let prompt_hidden = self.forward_hidden(prompts, &mut cache); // [prompts, prompt_len, d]
        // The last prompt position predicts the first completion token: [rows, 1, d].
        let first = prompt_hidden
            .narrow(1, prompt_len - 1, 1)
            .select(0, row_index(&group, &device));
        let hidden = if completion_len == 1 {
            first
        } else {
            cache.select_rows(&group, &device);
            // Completion token t predicts token t+1; the last one predicts nothing.
            let inputs = completions.clone().narrow(1, 0, completion_len - 1);
            let rest = self.forward_hidden(inputs, &mut cache); // [rows, completion_len - 1, d]
            Tensor::cat(vec![first, rest], 1) // [rows, completion_len, d]
        };
        CompletionLogits {
            logits: self.logits(hidden),
            targets: completions,
        }
    }
}
