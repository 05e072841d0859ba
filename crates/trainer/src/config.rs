//! `GrpoConfig`: every knob of a GRPO run, with TRL's names (`GRPOConfig`, TRL 0.2x) and TRL's
//! defaults except where a comment says why ours differ.

use std::path::Path;

use grpo_sampler::SamplingConfig;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainerError};

/// How the per-token losses of a batch are averaged into one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossType {
    /// DeepSeekMath eq. 3: mean over each sequence's tokens, then over sequences (long
    /// completions' tokens count less).
    Grpo,
    /// Sum over the micro-batch's tokens / its token count, averaged over micro-batches
    /// (TRL's "local batch" normalisation; equals `dapo` with one micro-batch).
    Bnpo,
    /// DAPO eq. 8: sum over all tokens of the step's batch / its token count.
    Dapo,
    /// Dr. GRPO (Liu et al. 2025, eq. 2): sum over tokens / (sequences × max_completion_length),
    /// a constant, so no length bias.
    DrGrpo,
}

/// Where the importance ratio lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportanceSamplingLevel {
    /// One ratio per token (GRPO, DAPO).
    Token,
    /// One ratio per sequence, the geometric mean of its tokens' (GSPO eq. 5–7).
    Sequence,
}

/// What rewards are divided by after the group mean is subtracted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleRewards {
    /// The group's standard deviation (DeepSeekMath eq. 4's outcome supervision).
    Group,
    /// The standard deviation over the whole batch.
    Batch,
    /// Nothing (Dr. GRPO).
    None,
}

/// The baseline an advantage is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdvantageEstimator {
    /// `r_i − mean(group)`, scaled by `scale_rewards`.
    Grpo,
    /// Leave-one-out: `r_i − mean(group without i)` (Ahmadian et al. 2024), unscaled unless
    /// `scale_rewards` is set.
    Rloo,
    /// REINFORCE++-baseline (Hu et al. 2025): `r_i − mean(group)`, then whitened over the batch
    /// (batch mean and std); `scale_rewards` does not apply.
    ReinforcePpBaseline,
}

/// Estimator of KL(π_θ ‖ π_ref) per token, from log-ratio `x = log π_ref − log π_θ`
/// (Schulman 2020, "Approximating KL divergence").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KlEstimator {
    /// `−x`: unbiased, can be negative.
    K1,
    /// `x² / 2`.
    K2,
    /// `eˣ − x − 1`: unbiased and ≥ 0 (DeepSeekMath eq. 4; TRL's choice).
    K3,
}

/// Learning-rate shape after warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    Constant,
    /// Linear decay to 0 at `max_steps` (TRL's default).
    Linear,
    /// Half a cosine down to 0 at `max_steps`.
    Cosine,
}

/// Every setting of a GRPO run. TOML in ([`GrpoConfig::from_toml_file`]), unknown keys
/// refused; [`GrpoConfig::validate`] names the first bad field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpoConfig {
    // ---- batch ----
    /// B: prompts per step. (TRL derives it from `generation_batch_size / num_generations`.)
    pub prompts_per_step: usize,
    /// K: completions per prompt, the group size.
    pub num_generations: usize,
    /// Completions per forward/backward pass; gradients accumulate over the step's batch.
    /// (TRL: `per_device_train_batch_size`.)
    pub micro_batch_size: usize,
    pub max_steps: usize,

    // ---- optimiser (AdamW) ----
    pub learning_rate: f64,
    pub weight_decay: f32,
    pub adam_beta1: f32,
    pub adam_beta2: f32,
    pub adam_epsilon: f32,
    /// Clip the global gradient norm to this (none: no clipping).
    pub max_grad_norm: Option<f32>,
    pub lr_scheduler_type: Schedule,
    /// Linear warm-up over this many training steps (the unit of `max_steps`; with μ > 1 each
    /// training step is μ optimiser steps, and both are multiplied alike).
    pub warmup_steps: usize,

    // ---- the GRPO objective ----
    /// KL coefficient β; with 0 the reference model is not built (TRL's default since 0.19).
    pub beta: f32,
    pub kl_estimator: KlEstimator,
    /// ε_low of the clipped ratio.
    pub epsilon: f32,
    /// ε_high (DAPO's clip-higher); defaults to `epsilon`.
    pub epsilon_high: Option<f32>,
    /// Dual-clip bound δ on the ratio (upper bound, > 1 + ε_high; TRL's `delta`).
    pub delta: Option<f32>,
    pub loss_type: LossType,
    pub importance_sampling_level: ImportanceSamplingLevel,
    /// Unset: `group` for the `grpo` estimator, `none` for `rloo` (its leave-one-out baseline
    /// is the whole estimator; TRL's and verl's RLOO do not divide by a std either). See
    /// [`GrpoConfig::scale_rewards`].
    pub scale_rewards: Option<ScaleRewards>,
    pub advantage_estimator: AdvantageEstimator,
    /// Added to the standard deviation before dividing (TRL: 1e-4).
    pub advantage_epsilon: f32,
    /// μ: optimisation passes over each batch.
    pub num_iterations: usize,
    /// Completions cut by the length limit take no part in the loss (DAPO's overlong filtering).
    pub mask_truncated_completions: bool,
    /// DAPO eq. 13's soft overlong penalty: completions within this many tokens of
    /// `max_completion_length` lose reward linearly, up to `overlong_penalty`.
    pub overlong_buffer: Option<usize>,
    pub overlong_penalty: f32,
    /// DAPO's dynamic sampling: groups whose rewards are all equal (no signal) are dropped and
    /// more prompts are sampled, up to `max_resample_rounds` extra rounds.
    pub dynamic_sampling: bool,
    pub max_resample_rounds: usize,
    /// Weights of the top-level verifiers, in order, replacing those of the verifier set.
    pub reward_weights: Option<Vec<f32>>,

    // ---- sampling ----
    pub temperature: f32,
    pub top_p: f32,
    pub top_k: usize,
    pub min_p: f32,
    /// The token budget after the prompt: with an environment, the model's and the
    /// observations' tokens together (TRL's `max_completion_length`).
    pub max_completion_length: usize,
    pub stop_strings: Vec<String>,

    // ---- environments (see `GrpoTrainer::with_environment`) ----
    /// Model turns per episode at most (TRL's `max_tool_calling_iterations`, plus the answer).
    pub max_turns: usize,
    /// The weight of the environment's reward, added to the verifiers' weighted sum.
    pub environment_reward_weight: f32,

    // ---- bookkeeping ----
    pub seed: u64,
    /// Checkpoint every this many steps (and at the end).
    pub save_steps: Option<usize>,
    /// Keep only the newest this many checkpoints.
    pub save_total_limit: Option<usize>,
    /// Evaluate every this many steps (and at the end).
    pub eval_steps: Option<usize>,
    /// Evaluation: completions per prompt for pass@k (greedy pass@1 is always measured).
    pub eval_num_samples: usize,
    /// The k of pass@k (≤ `eval_num_samples`).
    pub eval_k: usize,
    /// Completions logged per step to the completions log (0: none).
    pub log_completions: usize,

    // ---- compute ----
    /// Parts each micro-batch of the update is split into, at group boundaries, each run on
    /// its own thread with its own autodiff graph (0: two per core — a shard's matrix products
    /// run on burn's thread pool while the others' single-threaded element-wise operations go
    /// on; measured best on the benchmark workload). The loss and gradients are the same sums
    /// in another order: results agree up to float rounding, and for a given count a run is
    /// reproducible.
    pub update_shards: usize,
    /// Parts the rollout's prompts are split into, each decoded by its own thread (0: one per
    /// core). Completions do not depend on it.
    pub sampling_shards: usize,
    /// Recompute the memory-bound activations (element-wise passes, norms, softmax) during the
    /// backward instead of keeping them (burn's balanced checkpointing strategy): less peak
    /// memory for some extra arithmetic; the gradients are the same numbers.
    pub gradient_checkpointing: bool,
    /// Data parallel: the devices each step is spread over, by name — `flex`, `ndarray`,
    /// `wgpu`, or a worker `ws://HOST:PORT` (`grpo worker`). The rollout's prompts and the
    /// update's shards (whole groups) are dealt out to them in turn (part `i` on device
    /// `i % n`), their gradients summed on the model's device, which takes the one optimizer
    /// step. Empty (the default): the model's device alone. The loss is the same sum over the
    /// same shards, so a run matches its one-device twin up to float rounding (bitwise on one
    /// backend).
    pub devices: Vec<String>,
    /// With workers among `devices`: a step that hears nothing back for this many seconds ends
    /// the process (exit code 3) with an error naming them — a thread blocked on a worker that
    /// is alive but stuck cannot be stopped from outside, and the last checkpoint is whole, so
    /// the run resumes from it. A closed connection fails the step at once, a vanished machine
    /// after burn's 30 s TCP keep-alive. 0: wait forever.
    pub device_timeout_s: u64,
}

impl Default for GrpoConfig {
    fn default() -> Self {
        GrpoConfig {
            prompts_per_step: 8,
            num_generations: 8,
            micro_batch_size: 16,
            max_steps: 100,
            // TRL's default is 1e-6, for fine-tuning pretrained models.
            learning_rate: 1e-6,
            weight_decay: 0.0,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_epsilon: 1e-8,
            max_grad_norm: Some(1.0),
            lr_scheduler_type: Schedule::Linear,
            warmup_steps: 0,
            beta: 0.0,
            kl_estimator: KlEstimator::K3,
            epsilon: 0.2,
            epsilon_high: None,
            delta: None,
            loss_type: LossType::Dapo,
            importance_sampling_level: ImportanceSamplingLevel::Token,
            scale_rewards: None,
            advantage_estimator: AdvantageEstimator::Grpo,
            advantage_epsilon: 1e-4,
            num_iterations: 1,
            mask_truncated_completions: false,
            overlong_buffer: None,
            overlong_penalty: 1.0,
            dynamic_sampling: false,
            max_resample_rounds: 3,
            reward_weights: None,
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            min_p: 0.0,
            // TRL's default is 256; so is ours.
            max_completion_length: 256,
            stop_strings: Vec::new(),
            max_turns: 4,
            environment_reward_weight: 1.0,
            seed: 42,
            save_steps: None,
            save_total_limit: Some(3),
            eval_steps: None,
            eval_num_samples: 0,
            eval_k: 1,
            log_completions: 4,
            update_shards: 0,
            sampling_shards: 0,
            gradient_checkpointing: false,
            devices: Vec::new(),
            device_timeout_s: 1800,
        }
    }
}

impl GrpoConfig {
    /// Reads a TOML file of `GrpoConfig` keys; errors name the file, line and key.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<GrpoConfig> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| TrainerError::io(path, e))?;
        GrpoConfig::from_toml_str(&text).map_err(|message| TrainerError::ConfigFile {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses and validates; `Err` is a message with the line and field.
    pub fn from_toml_str(text: &str) -> Result<GrpoConfig, String> {
        let config: GrpoConfig =
            toml::from_str(text).map_err(|e| match grpo_base::toml_line(text, &e) {
                Some(line) => format!("line {line}: {}", e.message()),
                None => e.message().to_owned(),
            })?;
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    /// What rewards are divided by: `scale_rewards` if set, else the estimator's own default
    /// (`none` for RLOO, `group` otherwise; REINFORCE++-baseline ignores it).
    pub fn scale_rewards(&self) -> ScaleRewards {
        self.scale_rewards
            .unwrap_or(match self.advantage_estimator {
                AdvantageEstimator::Rloo => ScaleRewards::None,
                _ => ScaleRewards::Group,
            })
    }

    /// ε_high, defaulting to ε.
    pub fn epsilon_high(&self) -> f32 {
        self.epsilon_high.unwrap_or(self.epsilon)
    }

    /// The sampler's settings for a training step.
    pub fn sampling(&self, seed: u64) -> SamplingConfig {
        SamplingConfig {
            num_generations: self.num_generations,
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            max_new_tokens: self.max_completion_length,
            stop_token_ids: Vec::new(),
            stop_strings: self.stop_strings.clone(),
            seed,
        }
    }

    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        let fail = |field: &str, message: String| Err(TrainerError::config(field, message));
        for (field, value) in [
            ("prompts_per_step", self.prompts_per_step),
            ("num_generations", self.num_generations),
            ("micro_batch_size", self.micro_batch_size),
            ("max_steps", self.max_steps),
            ("num_iterations", self.num_iterations),
            ("max_completion_length", self.max_completion_length),
            ("max_turns", self.max_turns),
        ] {
            if value == 0 {
                return fail(field, "must be at least 1".into());
            }
        }
        if self.num_generations < 2 {
            return fail(
                "num_generations",
                "must be at least 2: a group of one is its own baseline, so every advantage is 0 and nothing is learned".into(),
            );
        }
        crate::shards::check_device_names(&self.devices)?;
        if self.temperature == 0.0 {
            return fail(
                "temperature",
                "must be > 0 for training: greedy sampling makes a group's completions identical, so every advantage is 0 (evaluation is greedy regardless)".into(),
            );
        }
        let finite_positive = |x: f64| x.is_finite() && x > 0.0;
        if !finite_positive(self.learning_rate) {
            return fail(
                "learning_rate",
                format!("must be > 0, got {}", self.learning_rate),
            );
        }
        for (field, value) in [
            ("weight_decay", self.weight_decay),
            ("beta", self.beta),
            ("overlong_penalty", self.overlong_penalty),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return fail(field, format!("must be a finite number ≥ 0, got {value}"));
            }
        }
        for (field, value) in [
            ("adam_beta1", self.adam_beta1),
            ("adam_beta2", self.adam_beta2),
        ] {
            if !(0.0..1.0).contains(&value) {
                return fail(field, format!("must be in [0, 1), got {value}"));
            }
        }
        for (field, value) in [
            ("adam_epsilon", Some(self.adam_epsilon)),
            ("advantage_epsilon", Some(self.advantage_epsilon)),
            ("max_grad_norm", self.max_grad_norm),
        ] {
            if let Some(value) = value
                && !finite_positive(value as f64)
            {
                return fail(field, format!("must be > 0, got {value}"));
            }
        }
        if !(self.epsilon > 0.0 && self.epsilon < 1.0) {
            return fail(
                "epsilon",
                format!("must be in (0, 1), got {}", self.epsilon),
            );
        }
        if !finite_positive(self.epsilon_high() as f64) {
            return fail(
                "epsilon_high",
                format!("must be > 0, got {}", self.epsilon_high()),
            );
        }
        if let Some(delta) = self.delta
            && !(delta.is_finite() && delta > 1.0 + self.epsilon_high())
        {
            return fail(
                "delta",
                format!(
                    "must be > 1 + epsilon_high = {}, got {delta}",
                    1.0 + self.epsilon_high()
                ),
            );
        }
        if let Some(buffer) = self.overlong_buffer
            && (buffer == 0 || buffer >= self.max_completion_length)
        {
            return fail(
                "overlong_buffer",
                format!(
                    "must be in 1..max_completion_length ({}), got {buffer}",
                    self.max_completion_length
                ),
            );
        }
        if let Some(weights) = &self.reward_weights
            && let Some(bad) = weights.iter().find(|w| !w.is_finite())
        {
            return fail("reward_weights", format!("must be finite, got {bad}"));
        }
        if !self.environment_reward_weight.is_finite() {
            return fail(
                "environment_reward_weight",
                format!("must be finite, got {}", self.environment_reward_weight),
            );
        }
        if self.eval_k == 0 || (self.eval_num_samples > 0 && self.eval_k > self.eval_num_samples) {
            return fail(
                "eval_k",
                format!(
                    "must be in 1..=eval_num_samples ({}), got {}",
                    self.eval_num_samples, self.eval_k
                ),
            );
        }
        for (field, value) in [
            ("save_steps", self.save_steps),
            ("save_total_limit", self.save_total_limit),
            ("eval_steps", self.eval_steps),
        ] {
            if value == Some(0) {
                return fail(
                    field,
                    "must be at least 1 (leave it out to turn it off)".into(),
                );
            }
        }
        self.sampling(0).validate()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_errors_name_line_and_field() {
        let error = GrpoConfig::from_toml_str("beta = 0.04\nepsilonn = 0.3\n").unwrap_err();
        assert!(
            error.starts_with("line 2:") && error.contains("epsilonn"),
            "{error}"
        );
        let error = GrpoConfig::from_toml_str("loss_type = \"ppo\"\n").unwrap_err();
        assert!(error.contains("line 1") && error.contains("ppo"), "{error}");
        let error = GrpoConfig::from_toml_str("epsilon = 0.2\ndelta = 1.1\n").unwrap_err();
        assert!(error.starts_with("invalid delta"), "{error}");
        let error = GrpoConfig::from_toml_str("temperature = -1.0\n").unwrap_err();
        assert!(error.contains("temperature"), "{error}");
        let config = GrpoConfig::from_toml_str(
            "loss_type = \"dr_grpo\"\nimportance_sampling_level = \"sequence\"\nkl_estimator = \"k1\"\nbeta = 0.04\n",
        )
        .unwrap();
        assert_eq!(config.loss_type, LossType::DrGrpo);
        assert_eq!(config.epsilon_high(), 0.2);
    }

    #[test]
    fn settings_that_learn_nothing_are_refused() {
        // A group of one: its own baseline, every advantage 0.
        let error = GrpoConfig::from_toml_str("num_generations = 1\n").unwrap_err();
        assert!(
            error.contains("num_generations") && error.contains("at least 2"),
            "{error}"
        );
        assert!(GrpoConfig::from_toml_str("num_generations = 2\n").is_ok());
        // Greedy sampling: K identical completions.
        let error = GrpoConfig::from_toml_str("temperature = 0.0\n").unwrap_err();
        assert!(
            error.contains("temperature") && error.contains("> 0"),
            "{error}"
        );
    }

    #[test]
    fn rloo_is_unscaled_unless_asked() {
        let rloo = GrpoConfig::from_toml_str("advantage_estimator = \"rloo\"\n").unwrap();
        assert_eq!(rloo.scale_rewards(), ScaleRewards::None);
        let scaled = GrpoConfig::from_toml_str(
            "advantage_estimator = \"rloo\"\nscale_rewards = \"group\"\n",
        )
        .unwrap();
        assert_eq!(scaled.scale_rewards(), ScaleRewards::Group);
        assert_eq!(GrpoConfig::default().scale_rewards(), ScaleRewards::Group);
    }
}
