//! Supervised warm-up: cross-entropy on the completion tokens only (the prompt is context, not
//! a target), with the same model, optimiser and checkpoints as GRPO. It is what makes a
//! from-scratch model's reward non-zero before RL can start.

use std::path::PathBuf;
use std::sync::Arc;

use grpo_data::{Dataset, Row};
use grpo_environments::Environment;
use grpo_policy::burn::optim::{GradientsAccumulator, GradientsParams};
use grpo_policy::burn::tensor::Device;
use grpo_policy::{CausalLm, LanguageModel, Tokenizer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::Schedule;
use crate::demonstration::play_demonstration;
use crate::error::{Result, TrainerError};
use crate::metrics::Metrics;
use crate::optim::OptimSettings;
use crate::packing::pack;
use crate::run::{RunCore, RunSettings, run_steps};
use crate::shards::{
    check_device_names, in_parallel, replica, shard_model, shards_on, sum_at_home, update_shards,
};

/// Settings of a supervised run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SftConfig {
    /// Rows per step.
    pub batch_size: usize,
    pub max_steps: usize,
    pub learning_rate: f64,
    pub weight_decay: f32,
    pub lr_scheduler_type: Schedule,
    pub warmup_steps: usize,
    pub max_grad_norm: Option<f32>,
    /// The row field holding the target completion (`answer`, `solution`, …).
    pub target_field: String,
    /// Text put before the target (`" "`, `"The answer is "`); part of the target tokens.
    pub target_prefix: String,
    /// Instead of `target_prefix` + `target_field`: a template whose `{field}`s are replaced
    /// by the row's fields (`"<think>{numbers}</think><answer>{solution}</answer>"`).
    pub target_template: Option<String>,
    /// Instead of one template: several, each row taught one of them, drawn by `weight` from
    /// a hash of the row's prompt and `seed` (the same row always gets the same one, so a
    /// resumed run teaches what the first did). How a warm-up shows a tool on a few problems
    /// only: `[{ template = "{steps}", weight = 9 }, { template = "<tool_call>…", weight = 1 }]`.
    pub target_mix: Vec<MixedTarget>,
    /// End each target with the tokenizer's EOS, so the model learns to stop.
    pub append_eos: bool,
    pub seed: u64,
    pub save_steps: Option<usize>,
    pub save_total_limit: Option<usize>,
    /// Parts each batch is split into, each run on its own thread with its own autodiff graph
    /// (0: two per core, as `GrpoConfig::update_shards`). The loss is the same sum in another
    /// order.
    pub shards: usize,
    /// As [`GrpoConfig::gradient_checkpointing`](crate::GrpoConfig::gradient_checkpointing).
    pub gradient_checkpointing: bool,
    /// As [`GrpoConfig::devices`](crate::GrpoConfig::devices): the batch's shards dealt out to
    /// these devices, their gradients summed on the model's.
    pub devices: Vec<String>,
    /// As [`GrpoConfig::device_timeout_s`](crate::GrpoConfig::device_timeout_s).
    pub device_timeout_s: u64,
}

impl Default for SftConfig {
    fn default() -> Self {
        SftConfig {
            batch_size: 16,
            max_steps: 100,
            learning_rate: 1e-3,
            weight_decay: 0.0,
            lr_scheduler_type: Schedule::Constant,
            warmup_steps: 0,
            max_grad_norm: Some(1.0),
            target_field: "answer".into(),
            target_prefix: String::new(),
            target_template: None,
            target_mix: Vec::new(),
            append_eos: true,
            seed: 0,
            save_steps: None,
            save_total_limit: Some(3),
            shards: 0,
            gradient_checkpointing: false,
            devices: Vec::new(),
            device_timeout_s: 1800,
        }
    }
}

impl SftConfig {
    pub fn validate(&self) -> Result<()> {
        for (field, value) in [
            ("batch_size", self.batch_size),
            ("max_steps", self.max_steps),
        ] {
            if value == 0 {
                return Err(TrainerError::config(field, "must be at least 1"));
            }
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(TrainerError::config(
                "learning_rate",
                format!("must be > 0, got {}", self.learning_rate),
            ));
        }
        if self.target_field.is_empty() {
            return Err(TrainerError::config("target_field", "must not be empty"));
        }
        check_device_names(&self.devices)?;
        if !self.target_mix.is_empty() && self.target_template.is_some() {
            return Err(TrainerError::config(
                "target_mix",
                "set either target_mix or target_template, not both",
            ));
        }
        for (i, target) in self.target_mix.iter().enumerate() {
            if !(target.weight.is_finite() && target.weight > 0.0) {
                return Err(TrainerError::config(
                    &format!("target_mix[{i}].weight"),
                    format!("must be > 0, got {}", target.weight),
                ));
            }
            if target.template.is_empty() {
                return Err(TrainerError::config(
                    &format!("target_mix[{i}].template"),
                    "must not be empty",
                ));
            }
        }
        Ok(())
    }

    /// The template `row` is taught with: `target_template`, or its draw from `target_mix`.
    fn template_for(&self, row: &Row) -> Option<&str> {
        if self.target_mix.is_empty() {
            return self.target_template.as_deref();
        }
        let key = grpo_base::stable_hash(row.prompt().as_bytes(), 0);
        let draw = f64::from(grpo_base::SplitMix64::keyed(self.seed, &[key]).uniform_f32());
        let total: f64 = self.target_mix.iter().map(|t| t.weight).sum();
        let mut below = 0.0;
        for target in &self.target_mix {
            below += target.weight / total;
            if draw < below {
                return Some(&target.template);
            }
        }
        self.target_mix.last().map(|t| t.template.as_str())
    }

    /// The completion a row teaches.
    pub fn target(&self, row: &Row) -> Result<String> {
        let text = |value: &Value| match value {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        if let Some(template) = self.template_for(row) {
            let mut out = template.to_owned();
            for (name, value) in row.fields() {
                out = out.replace(&format!("{{{name}}}"), &text(value));
            }
            return Ok(out);
        }
        match row.get(&self.target_field) {
            Some(value @ (Value::String(_) | Value::Number(_))) => {
                Ok(format!("{}{}", self.target_prefix, text(value)))
            }
            _ => Err(TrainerError::config(
                "target_field",
                format!(
                    "a row has no string or number `{}`: {}",
                    self.target_field,
                    row.prompt()
                ),
            )),
        }
    }

    /// The completion tokens `row` teaches, and whether the model writes each: its target,
    /// played through `environment` when there is one, then the EOS with `append_eos`.
    pub fn completion(
        &self,
        row: &Row,
        tokenizer: &dyn Tokenizer,
        environment: Option<&dyn Environment>,
    ) -> Result<(Vec<u32>, Vec<bool>)> {
        let target = self.target(row)?;
        let (mut ids, mut from_model) = match environment {
            Some(environment) => play_demonstration(environment, row, &target, tokenizer)?,
            None => {
                let ids = tokenizer.encode(&target);
                let from_model = vec![true; ids.len()];
                (ids, from_model)
            }
        };
        if self.append_eos
            && let Some(&eos) = tokenizer.eos_ids().first()
        {
            ids.push(eos);
            from_model.push(true);
        }
        Ok((ids, from_model))
    }
}

/// One template of [`SftConfig::target_mix`] and its share of the rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixedTarget {
    /// As [`SftConfig::target_template`].
    pub template: String,
    /// Relative share (the weights need not sum to 1).
    pub weight: f64,
}

/// A supervised run. Building one calls [`keep_freed_memory`](crate::keep_freed_memory).
pub struct SftTrainer<M: LanguageModel = CausalLm> {
    core: RunCore<M, SftConfig>,
    tokenizer: Arc<dyn Tokenizer>,
    data: Dataset,
    environment: Option<Arc<dyn Environment>>,
}

impl<M: LanguageModel> SftTrainer<M> {
    /// A run from `model` (any [`LanguageModel`]), which is moved onto `device`'s autodiff
    /// counterpart.
    pub fn new(
        model: M,
        tokenizer: Arc<dyn Tokenizer>,
        data: Dataset,
        config: SftConfig,
        run_dir: Option<PathBuf>,
    ) -> Result<SftTrainer<M>> {
        config.validate()?;
        Ok(SftTrainer {
            core: RunCore::start(model, config, data.len(), run_dir)?,
            tokenizer,
            data,
            environment: None,
        })
    }

    /// Continues the supervised run in `run_dir` from its newest checkpoint (the model type
    /// is the binding's, as for [`GrpoTrainer::resume`](crate::GrpoTrainer::resume)).
    pub fn resume(
        run_dir: PathBuf,
        tokenizer: Arc<dyn Tokenizer>,
        data: Dataset,
        device: &Device,
    ) -> Result<SftTrainer<M>> {
        let (core, _) = RunCore::resume(run_dir, data.len(), device)?;
        Ok(SftTrainer {
            core,
            tokenizer,
            data,
            environment: None,
        })
    }

    /// Plays each target through `environment`, as a GRPO rollout is: the target's turns
    /// (each ended by one of its turn stops) are answered by a real episode, and what the
    /// episode answers (a tool's result) is context, never a target of the loss.
    pub fn with_environment(mut self, environment: Arc<dyn Environment>) -> Self {
        self.environment = Some(environment);
        self
    }

    /// Spreads each step over `devices` from now on, as
    /// [`GrpoTrainer::with_devices`](crate::GrpoTrainer::with_devices).
    pub fn with_devices(mut self, devices: Vec<String>) -> Self {
        self.core.set_devices(devices);
        self
    }

    /// The model after training, without autodiff: what sampling, evaluation and a following
    /// GRPO run take.
    pub fn into_model(self) -> M {
        self.core.model.valid()
    }

    pub fn step(&self) -> usize {
        self.core.step
    }

    /// Trains to `max_steps` with a progress bar; returns each step's metrics.
    pub fn train(&mut self) -> Result<Vec<Metrics>> {
        let (max_steps, done) = (self.core.config.max_steps, self.core.step);
        run_steps(SftConfig::KIND, max_steps, done, max_steps, |_| {
            self.train_step()
        })
    }

    /// One supervised step: mean cross-entropy over the batch's target tokens.
    pub fn train_step(&mut self) -> Result<Metrics> {
        self.core.arm_watchdog();
        let result = self.watched_step();
        self.core.watchdog = None;
        result
    }

    fn watched_step(&mut self) -> Result<Metrics> {
        let rows = self
            .data
            .get_many(&self.core.epochs.next_batch(self.core.config.batch_size))?;
        // (prompt, completion, whether the model writes each completion token)
        let mut pairs: Vec<(Vec<u32>, Vec<u32>, Vec<bool>)> = Vec::with_capacity(rows.len());
        for row in &rows {
            let prompt = crate::episodes::text_prompt(row)?;
            let (ids, from_model) = self.core.config.completion(
                row,
                self.tokenizer.as_ref(),
                self.environment.as_deref(),
            )?;
            pairs.push((self.tokenizer.encode(prompt), ids, from_model));
        }
        // Shortest first, so that each shard pads its rows to a length close to theirs: a batch
        // mixing 40-token targets with 130-token tool demonstrations ran 3× the positions it
        // needed when every shard was padded to the longest. The loss is the same sum.
        let mut packed_rows: Vec<(&[u32], &[u32], &[bool])> = pairs
            .iter()
            .map(|(p, c, m)| (p.as_slice(), c.as_slice(), m.as_slice()))
            .collect();
        packed_rows.sort_by_key(|(p, c, _)| (c.len(), p.len()));
        let tokens: usize = pairs
            .iter()
            .map(|(_, _, m)| m.iter().filter(|m| **m).count())
            .sum();
        // Contiguous runs of rows, one thread each; every shard divides by the batch's token
        // count, so the shards' losses (and gradients) sum to the batch's.
        let main = self.core.device.clone();
        let devices = self.core.devices()?;
        let count = update_shards(self.core.config.shards)
            .max(devices.len())
            .clamp(1, packed_rows.len().max(1));
        let ranges: Vec<(usize, usize)> = (0..count)
            .map(|i| {
                let at = |i: usize| i * packed_rows.len() / count;
                (at(i), at(i + 1))
            })
            .collect();
        let pad = self.tokenizer.pad_id();
        // Shard i runs on device i % n, through that device's copy of the weights.
        let n = devices.len();
        let replicas: Vec<M> = devices
            .iter()
            .map(|(_, d)| {
                replica(
                    &self.core.model,
                    &main,
                    d,
                    self.core.config.gradient_checkpointing,
                )
            })
            .collect();
        let shards = in_parallel(
            &ranges,
            |i| devices[i % n].0.clone(),
            |i, &(s, e)| {
                let home = &replicas[i % n];
                let on = home.device();
                let model = shard_model(home, &on, shards_on(ranges.len(), n, i));
                let p = pack(&packed_rows[s..e], pad, &on);
                let logprobs = model
                    .completion_logits(p.tokens, p.prompt_len, p.padding)
                    .logprobs(1.0);
                let loss = (logprobs * p.mask)
                    .sum()
                    .neg()
                    .div_scalar(tokens.max(1) as f32);
                let value = loss.clone().into_scalar::<f32>();
                let grads = value
                    .is_finite()
                    .then(|| GradientsParams::from_grads(loss.backward(), &model));
                (value, grads)
            },
        )?;
        let value: f32 = shards.iter().map(|(v, _)| v).sum();
        let lr = self.core.optimizer.learning_rate(self.core.step);
        let mut metrics = Metrics::new();
        let mut skipped = !value.is_finite();
        let mut grad_norm = f32::NAN;
        if !skipped {
            // Each device's shards summed there, then moved home.
            let mut accumulators: Vec<_> =
                (0..n).map(|_| GradientsAccumulator::<M>::new()).collect();
            // A finite sum has finite terms: every shard back-propagated.
            for (i, (_, grads)) in shards.into_iter().enumerate() {
                if let Some(grads) = grads {
                    accumulators[i % n].accumulate(&self.core.model, grads);
                }
            }
            let grads = sum_at_home(accumulators, &self.core.model, &main, &devices);
            let report = self.core.optimizer_step(grads, lr);
            grad_norm = report.grad_norm;
            skipped = report.skipped;
        }
        self.core.step += 1;
        metrics.insert("step".into(), self.core.step as f64);
        metrics.insert("loss".into(), value as f64);
        metrics.insert("learning_rate".into(), lr);
        metrics.insert("grad_norm".into(), grad_norm as f64);
        metrics.insert("tokens".into(), tokens as f64);
        // Token passes (see `crate::compute`): every token of every row, forward and backward.
        let positions: usize = pairs.iter().map(|(p, c, _)| p.len() + c.len()).sum();
        metrics.insert("compute/token_passes".into(), (3 * positions) as f64);
        metrics.insert("step_skipped".into(), if skipped { 1.0 } else { 0.0 });
        self.core.log_and_checkpoint(&metrics, None)?;
        Ok(metrics)
    }

    pub fn save_checkpoint(&self) -> Result<PathBuf> {
        self.core.save_checkpoint(None)
    }
}

impl RunSettings for SftConfig {
    const KIND: &'static str = "sft";

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
            warmup_steps: self.warmup_steps,
            max_steps: self.max_steps,
            max_grad_norm: self.max_grad_norm,
            weight_decay: self.weight_decay,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
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
