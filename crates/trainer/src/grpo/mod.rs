//! The GRPO loop: sample → score → advantages → (dynamic sampling) → μ passes of
//! micro-batched forward/backward → clip → AdamW; metrics, checkpoints and evaluation around it.
//! The rollout (`rollout.rs`), the update (`update.rs`), what a rollout logs (`metrics.rs`) and
//! the run's warnings (`warnings.rs`) each have their file; this one holds the run.

mod metrics;
mod rollout;
mod update;
mod warnings;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use grpo_data::{Dataset, Row};
use grpo_environments::Environment;
use grpo_policy::burn::tensor::Device;
use grpo_policy::{CausalLm, LanguageModel, Tokenizer};
use grpo_verifiers::VerifierSet;
use serde_json::json;

use crate::checkpoint;
use crate::config::GrpoConfig;
use crate::error::{Result, TrainerError};
use crate::eval::{EvalSettings, evaluate};
use crate::metrics::{JsonlLog, Metrics};
use crate::optim::OptimSettings;
use crate::progress::Progress;
use crate::run::{RunCore, RunSettings, run_steps};
use warnings::Warning;

/// One completion of a batch, ready for the update.
#[derive(Debug, Clone)]
pub struct TrainRow {
    /// Index into [`Batch::prompt_ids`].
    pub group: usize,
    pub completion_ids: Vec<u32>,
    /// The sampler's log-probs of `completion_ids` (π_old as sampled; logged against the
    /// trainer's recomputation).
    pub sampling_logprobs: Vec<f32>,
    pub advantage: f32,
    /// Per token of `completion_ids`: whether the model sampled it. An environment's tokens
    /// (observations, tool results) are context only: masked out of the loss.
    pub from_model: Vec<bool>,
    /// False when the completion takes no part in the loss (truncated under
    /// `mask_truncated_completions`).
    pub in_loss: bool,
}

/// What the update consumes: the prompts' token ids and the scored completions (unscorable
/// ones already left out).
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub prompt_ids: Vec<Vec<u32>>,
    pub rows: Vec<TrainRow>,
}

/// A GRPO run.
///
/// The model lives on an autodiff device; sampling and the reference model use its
/// [`valid`](grpo_policy::burn::module::Module::valid) copy. Randomness is a function of (`seed`, step), and the
/// data order is the [`Epochs`] cursor, so a run resumed from a checkpoint repeats the
/// uninterrupted one exactly. Building a trainer calls [`keep_freed_memory`](crate::keep_freed_memory)
/// (glibc's malloc keeps freed tensor buffers for reuse).
pub struct GrpoTrainer<M: LanguageModel = CausalLm> {
    core: RunCore<M, GrpoConfig>,
    reference: Option<Reference<M>>,
    /// The reference's copy on each of the run's devices, made at the first update.
    reference_replicas: Vec<M>,
    tokenizer: Arc<dyn Tokenizer>,
    verifiers: VerifierSet,
    data: Dataset,
    completions_log: Option<JsonlLog>,
    eval_sets: Vec<(String, Vec<Row>)>,
    /// With an environment, each completion is a multi-turn episode.
    environment: Option<Arc<dyn Environment>>,
    /// The step each kind of warning was last shown at.
    warned: BTreeMap<Warning, usize>,
}

impl<M: LanguageModel> GrpoTrainer<M> {
    /// A run from `model` (any [`LanguageModel`]), which is moved onto `device`'s autodiff
    /// counterpart. With a `run_dir`, metrics, completions and checkpoints are written there.
    pub fn new(
        model: M,
        tokenizer: Arc<dyn Tokenizer>,
        verifiers: VerifierSet,
        data: Dataset,
        config: GrpoConfig,
        run_dir: Option<PathBuf>,
    ) -> Result<GrpoTrainer<M>> {
        config.validate()?;
        let core = RunCore::start(model, config, data.len(), run_dir)?;
        // β = 0: no reference model at all.
        let reference = (core.config.beta > 0.0).then(|| {
            let start = core.model.valid();
            match start.without_adapters() {
                Some(base) => Reference::Base(base),
                None => Reference::Copy(start),
            }
        });
        GrpoTrainer::assemble(core, reference, tokenizer, verifiers, data)
    }

    /// Continues the run in `run_dir` from its newest checkpoint, on `device`. The model type
    /// is the binding's (`let run: GrpoTrainer<MyModel> = GrpoTrainer::resume(..)?`;
    /// `GrpoTrainer` alone means [`CausalLm`]): its [`LanguageModel::load`] reads the weights.
    pub fn resume(
        run_dir: PathBuf,
        tokenizer: Arc<dyn Tokenizer>,
        verifiers: VerifierSet,
        data: Dataset,
        device: &Device,
    ) -> Result<GrpoTrainer<M>> {
        let (core, saved) = RunCore::<M, GrpoConfig>::resume(run_dir, data.len(), device)?;
        let reference = match core.config.beta > 0.0 {
            false => None,
            true => match (core.model.valid().without_adapters(), saved) {
                (Some(base), _) => Some(Reference::Base(base)),
                (None, Some(copy)) => Some(Reference::Copy(copy)),
                (None, None) => {
                    return Err(TrainerError::Checkpoint {
                        path: checkpoint::newest(core.run_dir.as_deref().expect("resumed"))?,
                        message: "beta > 0 but the checkpoint holds no reference model".into(),
                    });
                }
            },
        };
        GrpoTrainer::assemble(core, reference, tokenizer, verifiers, data)
    }

    fn assemble(
        core: RunCore<M, GrpoConfig>,
        reference: Option<Reference<M>>,
        tokenizer: Arc<dyn Tokenizer>,
        verifiers: VerifierSet,
        data: Dataset,
    ) -> Result<GrpoTrainer<M>> {
        let verifiers = match &core.config.reward_weights {
            Some(weights) => verifiers.reweighted(weights)?,
            None => verifiers,
        };
        let completions_log = match &core.run_dir {
            Some(dir) => Some(JsonlLog::open(
                &dir.join("completions.jsonl"),
                Some(core.step),
            )?),
            None => None,
        };
        Ok(GrpoTrainer {
            core,
            reference,
            reference_replicas: Vec::new(),
            tokenizer,
            verifiers,
            data,
            completions_log,
            eval_sets: Vec::new(),
            environment: None,
            warned: BTreeMap::new(),
        })
    }

    /// Adds a named evaluation set, measured every `eval_steps` and at the end.
    pub fn with_eval_set(mut self, name: impl Into<String>, rows: Vec<Row>) -> Self {
        self.eval_sets.push((name.into(), rows));
        self
    }

    /// Rolls out through `environment`: each completion is an episode of up to `max_turns`
    /// model turns, whose observations are context the loss never trains on, and whose reward
    /// (if it gives one) is added to the verifiers' with `environment_reward_weight`.
    /// Evaluation runs episodes too. A resumed run needs it given again.
    pub fn with_environment(mut self, environment: Arc<dyn Environment>) -> Self {
        self.environment = Some(environment);
        self
    }

    /// Spreads each step over `devices` from now on (by name, as [`GrpoConfig::devices`])
    /// instead of the ones the config named: how a run resumed after a worker died goes on
    /// on fewer devices. They are connected at the next step; checkpoints record them.
    pub fn with_devices(mut self, devices: Vec<String>) -> Self {
        self.core.set_devices(devices);
        self.reference_replicas.clear();
        self
    }

    pub fn config(&self) -> &GrpoConfig {
        &self.core.config
    }

    /// Steps done so far.
    pub fn step(&self) -> usize {
        self.core.step
    }

    /// The policy (on the autodiff device).
    pub fn model(&self) -> &M {
        &self.core.model
    }

    /// Trains until `max_steps`, with a progress bar, checkpoints and evaluations; returns the
    /// metrics of the steps run (evaluation results included in their step's metrics).
    pub fn train(&mut self) -> Result<Vec<Metrics>> {
        self.train_steps(self.core.config.max_steps.saturating_sub(self.core.step))
    }

    /// Runs `steps` more steps (fewer if `max_steps` comes first), as [`GrpoTrainer::train`]
    /// does.
    pub fn train_steps(&mut self, steps: usize) -> Result<Vec<Metrics>> {
        let (max_steps, done) = (self.core.config.max_steps, self.core.step);
        run_steps(
            GrpoConfig::KIND,
            max_steps,
            done,
            done + steps,
            |progress| self.train_step_logged(progress),
        )
    }

    fn train_step_logged(&mut self, progress: &Progress) -> Result<Metrics> {
        let mut metrics = self.train_step()?;
        let step = self.core.step;
        let eval_due = self
            .core
            .config
            .eval_steps
            .is_some_and(|n| step.is_multiple_of(n));
        if !self.eval_sets.is_empty() && (eval_due || self.core.is_last_step()) {
            metrics.extend(self.evaluate()?);
        }
        // Each warning the first time, then at most every 25 steps while it lasts.
        for warning in Warning::in_metrics(&metrics) {
            let last = self.warned.get(&warning);
            if last.is_none_or(|&at| step >= at + 25) {
                progress.warn(&format!("step {step}: {}", warning.message()));
                self.warned.insert(warning, step);
            }
        }
        let reference = self.reference.as_ref().and_then(Reference::to_save);
        self.core.log_and_checkpoint(&metrics, reference)?;
        Ok(metrics)
    }

    /// One GRPO step: a rollout, then the update. Returns the step's metrics.
    pub fn train_step(&mut self) -> Result<Metrics> {
        self.core.arm_watchdog();
        let result = self.watched_step();
        self.core.watchdog = None;
        result
    }

    fn watched_step(&mut self) -> Result<Metrics> {
        let started = Instant::now();
        let (batch, mut metrics, logged) = self.rollout()?;
        let update_started = Instant::now();
        let update = self.update(&batch)?;
        metrics.extend(update);
        metrics.insert(
            "time/update_s".into(),
            update_started.elapsed().as_secs_f64(),
        );
        metrics.insert("time/step_s".into(), started.elapsed().as_secs_f64());
        let passes =
            metrics["compute/sample_token_passes"] + metrics["compute/update_token_passes"];
        metrics.insert("compute/token_passes".into(), passes);
        self.core.step += 1;
        metrics.insert("step".into(), self.core.step as f64);
        if let Some(log) = &mut self.completions_log {
            for mut entry in logged {
                entry["step"] = json!(self.core.step);
                log.write(&entry)?;
            }
        }
        Ok(metrics)
    }

    /// Evaluates every named set: greedy pass@1, pass@k when `eval_num_samples > 0`, mean
    /// reward; metrics named `eval/<set>/…`.
    pub fn evaluate(&self) -> Result<Metrics> {
        let settings = EvalSettings {
            max_completion_length: self.core.config.max_completion_length,
            stop_strings: self.core.config.stop_strings.clone(),
            num_samples: self.core.config.eval_num_samples,
            k: self.core.config.eval_k,
            temperature: self.core.config.temperature,
            seed: self.core.config.seed,
            environment_reward_weight: self.core.config.environment_reward_weight,
        };
        let policy = self.core.model.valid();
        let mut metrics = Metrics::new();
        for (name, rows) in &self.eval_sets {
            let result = evaluate(
                &policy,
                self.tokenizer.as_ref(),
                &self.verifiers,
                self.environment(),
                rows,
                &settings,
            )?;
            metrics.insert(format!("eval/{name}/pass@1"), result.pass_at_1);
            metrics.insert(format!("eval/{name}/reward"), result.mean_reward);
            if let Some(calls) = result.tool_calls_per_episode {
                metrics.insert(format!("eval/{name}/tool_calls"), calls);
            }
            if let Some(pass_k) = result.pass_at_k {
                metrics.insert(format!("eval/{name}/pass@{}", settings.k), pass_k);
            }
        }
        Ok(metrics)
    }

    /// Writes a checkpoint of the current step into the run directory.
    pub fn save_checkpoint(&self) -> Result<PathBuf> {
        self.core
            .save_checkpoint(self.reference.as_ref().and_then(Reference::to_save))
    }

    pub fn run_dir(&self) -> Option<&Path> {
        self.core.run_dir.as_deref()
    }

    /// The environment and its turn limit, as sampling takes them.
    fn environment(&self) -> Option<(&dyn Environment, usize)> {
        self.environment
            .as_deref()
            .map(|e| (e, self.core.config.max_turns))
    }
}

/// The reference policy of a β > 0 run.
enum Reference<M> {
    /// A copy of the initial model, which checkpoints carry: the run no longer holds it.
    Copy(M),
    /// The policy's frozen base with its adapters off ([`LanguageModel::without_adapters`]),
    /// sharing its weights: the policy's checkpoint already holds it.
    Base(M),
}

impl<M> Reference<M> {
    fn model(&self) -> &M {
        match self {
            Reference::Copy(model) | Reference::Base(model) => model,
        }
    }

    /// What a checkpoint must save of it.
    fn to_save(&self) -> Option<&M> {
        match self {
            Reference::Copy(model) => Some(model),
            Reference::Base(_) => None,
        }
    }
}

impl RunSettings for GrpoConfig {
    const KIND: &'static str = "grpo";

    fn gradient_checkpointing(&self) -> bool {
        self.gradient_checkpointing
    }
    fn devices(&self) -> &[String] {
        &self.devices
    }
    fn device_timeout_s(&self) -> u64 {
        self.device_timeout_s
    }
    fn set_devices(&mut self, devices: Vec<String>) {
        self.devices = devices;
    }

    fn optim(&self) -> OptimSettings {
        OptimSettings {
            learning_rate: self.learning_rate,
            schedule: self.lr_scheduler_type,
            // μ optimiser steps per training step: both counts are given in training steps.
            warmup_steps: self.warmup_steps * self.num_iterations,
            max_steps: self.max_steps * self.num_iterations,
            max_grad_norm: self.max_grad_norm,
            weight_decay: self.weight_decay,
            beta1: self.adam_beta1,
            beta2: self.adam_beta2,
            epsilon: self.adam_epsilon,
        }
    }

    fn seed(&self) -> u64 {
        self.seed
    }

    fn max_steps(&self) -> usize {
        self.max_steps
    }

    fn save_steps(&self) -> Option<usize> {
        self.save_steps
    }

    fn save_total_limit(&self) -> Option<usize> {
        self.save_total_limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_up_and_decay_count_training_steps_alike() {
        // μ = 2: training step s runs optimiser steps 2s and 2s + 1.
        let config = GrpoConfig {
            num_iterations: 2,
            warmup_steps: 2,
            max_steps: 4,
            learning_rate: 1.0,
            lr_scheduler_type: crate::Schedule::Linear,
            ..GrpoConfig::default()
        };
        let optimizer = crate::optim::Optimizer::new(config.optim());
        let lr: Vec<f64> = (0..8).map(|step| optimizer.learning_rate(step)).collect();
        // Warm-up over training steps 0 and 1 (optimiser steps 0..4): 1/4, 2/4, 3/4, 4/4.
        assert_eq!(&lr[..4], &[0.25, 0.5, 0.75, 1.0]);
        // Then linear decay to 0 at training step 4 (optimiser step 8): 4 steps left.
        assert_eq!(&lr[4..], &[1.0, 0.75, 0.5, 0.25]);
    }
}
