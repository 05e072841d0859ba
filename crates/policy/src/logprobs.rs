//! Per-token log-probabilities and entropies: what the GRPO loss is made of.

use burn::tensor::{Int, Tensor};

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
/// micro-batch, where K completions follow every prompt (see
/// [`LanguageModel::grouped_completion_logits`](crate::LanguageModel::grouped_completion_logits)).
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
