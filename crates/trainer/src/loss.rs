//! The clipped policy-gradient loss family, written as the papers write it.
//!
//! For completion i, token t, with `A_i` its advantage:
//!
//! ```text
//! w_it   = exp(clamp(log π_θ − log π_old, ±20))                token level (DeepSeekMath eq. 3)
//!        | exp(mean_t clamp(log π_θ − log π_old, ±20))         sequence level (GSPO eq. 5–7)
//! L_it   = −min(w·A, clip(w, 1−ε_low, 1+ε_high)·A) + β·KL_it   (DAPO eq. 8 for ε_high ≠ ε_low)
//!          with w first capped at δ when dual-clip is on
//! KL_it  = k1 | k2 | k3 of x = log π_ref − log π_θ             (k3 = eˣ − x − 1, DeepSeekMath eq. 4)
//! loss   = Σ_i Σ_t c_i · mask_it · L_it
//! ```
//!
//! Every `loss_type` is one choice of the per-completion weights `c_i` ([`row_weights`]), which
//! is also what makes micro-batching exact: the step's loss is the sum of its micro-batches'.

use grpo_policy::burn::tensor::Tensor;

use crate::config::{GrpoConfig, ImportanceSamplingLevel, KlEstimator, LossType};

/// Log-ratios are clamped to ±this before `exp`, so one wild token cannot overflow.
const MAX_LOG_RATIO: f32 = 20.0;

/// One micro-batch's inputs; every tensor is `[rows, completion_len]` unless noted.
pub struct LossInputs {
    /// log π_θ of the sampled tokens (carries gradients).
    pub logprobs: Tensor<2>,
    /// log π_old (detached): the sampling policy's.
    pub old_logprobs: Tensor<2>,
    /// log π_ref, when β > 0.
    pub ref_logprobs: Option<Tensor<2>>,
    /// `[rows, 1]`.
    pub advantages: Tensor<2>,
    /// 1 for tokens in the loss, 0 for padding and masked completions.
    pub mask: Tensor<2>,
    /// `[rows, 1]`: the `loss_type`'s weight of each completion ([`row_weights`]).
    pub weights: Tensor<2>,
}

/// The loss and token counts for the metrics (sums over the micro-batch's masked tokens).
pub struct LossOutput {
    /// Scalar, `[1]`.
    pub loss: Tensor<1>,
    pub stats: Tensor<1>,
}

/// Indices into [`LossOutput::stats`]: sums over masked tokens.
pub mod stat {
    pub const TOKENS: usize = 0;
    pub const KL: usize = 1;
    pub const LOW_CLIPPED: usize = 2;
    pub const HIGH_CLIPPED: usize = 3;
    pub const POLICY_LOSS: usize = 4;
    pub const COUNT: usize = 5;
}

/// The loss of one micro-batch.
pub fn grpo_loss(inputs: LossInputs, config: &GrpoConfig) -> LossOutput {
    let LossInputs {
        logprobs,
        old_logprobs,
        ref_logprobs,
        advantages,
        mask,
        weights,
    } = inputs;
    let (eps_low, eps_high) = (config.epsilon, config.epsilon_high());
    let log_ratio = (logprobs.clone() - old_logprobs).clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO);
    let log_w = match config.importance_sampling_level {
        ImportanceSamplingLevel::Token => log_ratio, // [rows, len]
        ImportanceSamplingLevel::Sequence => {
            // GSPO eq. 7: the length-normalised sequence log-ratio, [rows, 1].
            let lengths = mask.clone().sum_dim(1).clamp_min(1.0);
            (log_ratio * mask.clone()).sum_dim(1) / lengths
        }
    };
    let mut w = log_w.exp();
    if let Some(delta) = config.delta {
        w = w.clamp_max(delta);
    }
    let clipped = w.clone().clamp(1.0 - eps_low, 1.0 + eps_high);
    let unclipped_term = w.clone() * advantages.clone();
    let clipped_term = clipped * advantages.clone();
    let policy = unclipped_term.min_pair(clipped_term).neg(); // [rows, len] or [rows, 1]
    let [rows, len] = mask.dims();
    let policy = policy.expand([rows, len]);

    let kl = ref_logprobs.map(|reference| {
        let x = (reference - logprobs).clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO);
        match config.kl_estimator {
            KlEstimator::K1 => x.neg(),
            KlEstimator::K2 => x.powi_scalar(2).div_scalar(2.0),
            KlEstimator::K3 => x.clone().exp() - x - 1.0,
        }
    });
    let per_token = match &kl {
        Some(kl) => policy.clone() + kl.clone().mul_scalar(config.beta),
        None => policy.clone(),
    };
    let weighted_mask = mask.clone() * weights.clone(); // [rows, len]
    let loss = (per_token * weighted_mask.clone()).sum();

    // Metrics (no gradients): TRL's clip ratios count tokens whose ratio left the trust region
    // on the side where clipping binds.
    let w = w.detach().expand([rows, len]);
    let advantages = advantages.detach().expand([rows, len]);
    let low =
        w.clone().lower_elem(1.0 - eps_low).float() * advantages.clone().lower_elem(0.0).float();
    let high = w.greater_elem(1.0 + eps_high).float() * advantages.greater_elem(0.0).float();
    let sum = |t: Tensor<2>| (t * mask.clone()).sum();
    let kl_sum = match kl {
        Some(kl) => sum(kl.detach()),
        None => mask.clone().sum().mul_scalar(0.0),
    };
    let stats = Tensor::cat(
        vec![
            mask.clone().sum(),
            kl_sum,
            sum(low),
            sum(high),
            (policy.detach() * weighted_mask.detach()).sum(),
        ],
        0,
    );
    LossOutput { loss, stats }
}

/// The weight `c_i` of each completion, given how many loss tokens each has (`lengths`, for
/// the whole step's batch, in order) and which micro-batch each is in:
///
/// - `grpo`: `1 / (N · |o_i|)` — each sequence's mean, then the mean over sequences;
/// - `bnpo`: `1 / (T_micro · M)` — each micro-batch's token mean, averaged over the M
///   micro-batches;
/// - `dapo`: `1 / T` — one mean over every token of the batch (DAPO eq. 8);
/// - `dr_grpo`: `1 / (N · L_max)` — a constant (Dr. GRPO).
///
/// `N` counts every completion of the batch (masked ones too, as TRL does); token counts are
/// clamped to at least 1 so an all-masked batch gives 0, not NaN.
pub fn row_weights(
    loss_type: LossType,
    lengths: &[usize],
    micro_batch_size: usize,
    max_completion_length: usize,
) -> Vec<f32> {
    let n = lengths.len() as f64;
    let total: usize = lengths.iter().sum();
    let micro_batches = lengths.len().div_ceil(micro_batch_size) as f64;
    lengths
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            let weight = match loss_type {
                LossType::Grpo => 1.0 / (n * len.max(1) as f64),
                LossType::Dapo => 1.0 / total.max(1) as f64,
                LossType::DrGrpo => 1.0 / (n * max_completion_length as f64),
                LossType::Bnpo => {
                    let start = i / micro_batch_size * micro_batch_size;
                    let end = (start + micro_batch_size).min(lengths.len());
                    let tokens: usize = lengths[start..end].iter().sum();
                    1.0 / (tokens.max(1) as f64 * micro_batches)
                }
            };
            weight as f32
        })
        .collect()
}
