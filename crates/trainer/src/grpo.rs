//! The GRPO loop: sample → score → advantages → (dynamic sampling) → μ passes of
//! micro-batched forward/backward → clip → AdamW; metrics, checkpoints and evaluation around it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use grpo_data::{Dataset, Epochs, Row};
use grpo_policy::burn::optim::{GradientsAccumulator, GradientsParams};
use grpo_policy::burn::tensor::{Device, Tensor};
use grpo_policy::{CausalLm, LanguageModel, Tokenizer};
use grpo_sampler::{FinishReason, Sampler, Strategy};
use grpo_verifiers::{Evaluation, Sample, VerifierSet};
use serde_json::json;

use crate::advantages::{advantages, group_stats, groups_with_signal, overlong_penalty};
use crate::checkpoint;
use crate::config::GrpoConfig;
use crate::error::{Result, TrainerError};
use crate::eval::{EvalSettings, evaluate};
use crate::loss::{LossInputs, grpo_loss, row_weights, stat};
use crate::metrics::{JsonlLog, Metrics, mean_std};
use crate::optim::{OptimSettings, Optimizer, number_parameters};
use crate::packing::{PackedGroups, column, pack_groups};
use crate::progress::Progress;
use crate::shards::{in_parallel, shard_model, update_shards};

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
    config: GrpoConfig,
    model: M,
    reference: Option<M>,
    optimizer: Optimizer,
    tokenizer: Arc<dyn Tokenizer>,
    verifiers: VerifierSet,
    data: Dataset,
    epochs: Epochs,
    step: usize,
    run_dir: Option<PathBuf>,
    metrics_log: Option<JsonlLog>,
    completions_log: Option<JsonlLog>,
    eval_sets: Vec<(String, Vec<Row>)>,
    device: Device,
    /// The step each kind of warning was last shown at.
    warned: [Option<usize>; 3],
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
        let device = model.device().inner().autodiff();
        let model = number_parameters(model.fork(&device).train());
        let epochs = Epochs::new(data.len(), config.seed, true)?;
        GrpoTrainer::assemble(
            model,
            Optimizer::new(optim_settings(&config)),
            tokenizer,
            verifiers,
            data,
            epochs,
            0,
            config,
            run_dir,
        )
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
        let dir = checkpoint::newest(&run_dir)?;
        let config = checkpoint::read_state::<checkpoint::State<GrpoConfig>>(&dir)?.config;
        let loaded = checkpoint::load::<M, checkpoint::State<GrpoConfig>>(
            &dir,
            &device.clone().autodiff(),
            Optimizer::new(optim_settings(&config)),
        )?;
        let state = loaded.state;
        let epochs = Epochs::resume(data.len(), state.config.seed, true, state.cursor)?;
        let mut trainer = GrpoTrainer::assemble(
            loaded.model,
            loaded.optimizer,
            tokenizer,
            verifiers,
            data,
            epochs,
            state.step,
            state.config,
            Some(run_dir),
        )?;
        if trainer.reference.is_some() {
            trainer.reference = Some(loaded.reference.ok_or_else(|| TrainerError::Checkpoint {
                path: dir.clone(),
                message: "beta > 0 but the checkpoint holds no reference model".into(),
            })?);
        }
        Ok(trainer)
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        model: M,
        optimizer: Optimizer,
        tokenizer: Arc<dyn Tokenizer>,
        verifiers: VerifierSet,
        data: Dataset,
        epochs: Epochs,
        step: usize,
        config: GrpoConfig,
        run_dir: Option<PathBuf>,
    ) -> Result<GrpoTrainer<M>> {
        crate::keep_freed_memory();
        let verifiers = match &config.reward_weights {
            Some(weights) => verifiers.reweighted(weights)?,
            None => verifiers,
        };
        // β = 0: no reference model at all (not even a copy of the weights).
        let reference = (config.beta > 0.0).then(|| model.valid());
        let (metrics_log, completions_log) = match &run_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| TrainerError::io(dir, e))?;
                let keep = Some(step);
                (
                    Some(JsonlLog::open(&dir.join("metrics.jsonl"), keep)?),
                    Some(JsonlLog::open(&dir.join("completions.jsonl"), keep)?),
                )
            }
            None => (None, None),
        };
        let device = model.device();
        Ok(GrpoTrainer {
            config,
            model,
            reference,
            optimizer,
            tokenizer,
            verifiers,
            data,
            epochs,
            step,
            run_dir,
            metrics_log,
            completions_log,
            eval_sets: Vec::new(),
            device,
            warned: [None; 3],
        })
    }

    /// Adds a named evaluation set, measured every `eval_steps` and at the end.
    pub fn with_eval_set(mut self, name: impl Into<String>, rows: Vec<Row>) -> Self {
        self.eval_sets.push((name.into(), rows));
        self
    }

    pub fn config(&self) -> &GrpoConfig {
        &self.config
    }

    /// Steps done so far.
    pub fn step(&self) -> usize {
        self.step
    }

    /// The policy (on the autodiff device).
    pub fn model(&self) -> &M {
        &self.model
    }

    /// Trains until `max_steps`, with a progress bar, checkpoints and evaluations; returns the
    /// metrics of the steps run (evaluation results included in their step's metrics).
    pub fn train(&mut self) -> Result<Vec<Metrics>> {
        self.train_steps(self.config.max_steps.saturating_sub(self.step))
    }

    /// Runs `steps` more steps (fewer if `max_steps` comes first), as [`GrpoTrainer::train`]
    /// does.
    pub fn train_steps(&mut self, steps: usize) -> Result<Vec<Metrics>> {
        let progress = Progress::new("grpo", self.config.max_steps, self.step);
        let mut all = Vec::new();
        let last = self.config.max_steps.min(self.step + steps);
        while self.step < last {
            let metrics = self.train_step_logged(&progress)?;
            progress.update(self.step, &metrics);
            all.push(metrics);
        }
        progress.finish();
        Ok(all)
    }

    fn train_step_logged(&mut self, progress: &Progress) -> Result<Metrics> {
        let mut metrics = self.train_step()?;
        let last = self.step == self.config.max_steps;
        let due = |every: Option<usize>| every.is_some_and(|n| self.step.is_multiple_of(n)) || last;
        if !self.eval_sets.is_empty() && due(self.config.eval_steps) {
            metrics.extend(self.evaluate()?);
        }
        if let Some(log) = &mut self.metrics_log {
            log.write(&metrics)?;
        }
        // Each warning the first time, then at most every 25 steps while it lasts.
        for (kind, warning) in warnings(&metrics) {
            let last = &mut self.warned[kind];
            if last.is_none_or(|at| self.step >= at + 25) {
                progress.warn(&format!("step {}: {warning}", self.step));
                *last = Some(self.step);
            }
        }
        if self.run_dir.is_some()
            && (self.config.save_steps.is_some() && due(self.config.save_steps) || last)
        {
            self.save_checkpoint()?;
        }
        Ok(metrics)
    }

    /// One GRPO step: a rollout, then the update. Returns the step's metrics.
    pub fn train_step(&mut self) -> Result<Metrics> {
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
        self.step += 1;
        metrics.insert("step".into(), self.step as f64);
        if let Some(log) = &mut self.completions_log {
            for mut entry in logged {
                entry["step"] = json!(self.step);
                log.write(&entry)?;
            }
        }
        Ok(metrics)
    }

    /// Samples, scores and computes advantages for one step's prompts (with dynamic sampling,
    /// several rounds). Returns the batch, its metrics and the completions to log.
    pub fn rollout(&mut self) -> Result<(Batch, Metrics, Vec<serde_json::Value>)> {
        let config = self.config.clone();
        let (b, k) = (config.prompts_per_step, config.num_generations);
        let policy = self.model.valid();
        let mut metrics = Metrics::new();
        let (mut sample_s, mut score_s, mut sampled_tokens) = (0.0, 0.0, 0usize);
        // Kept groups: (row, prompt ids, completions, evaluations, rewards).
        let mut kept: Vec<Group> = Vec::new();
        let mut all_rewards: Vec<Option<f32>> = Vec::new();
        let mut all_evaluations: Vec<(Evaluation, usize, FinishReason)> = Vec::new();
        let mut rounds = 0;
        loop {
            let rows = self.data.get_many(&self.epochs.next_batch(b))?;
            let prompts: Vec<String> = rows.iter().map(|r| r.prompt().to_owned()).collect();
            let seed = step_seed(config.seed, self.step, rounds);
            let t = Instant::now();
            let sampler = Sampler {
                strategy: Strategy {
                    shards: config.sampling_shards,
                    ..Strategy::default()
                },
            };
            let rollouts = sampler.sample(
                &policy,
                self.tokenizer.as_ref(),
                &prompts,
                &config.sampling(seed),
            )?;
            sample_s += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let samples: Vec<Sample> = rollouts
                .completions
                .iter()
                .map(|c| Sample::new(rows[c.group].prompt(), &c.text, rows[c.group].fields()))
                .collect();
            let evaluations = self.verifiers.evaluate_batch(&samples);
            score_s += t.elapsed().as_secs_f64();
            let rewards: Vec<Option<f32>> = rollouts
                .completions
                .iter()
                .zip(&evaluations)
                .map(|(c, e)| {
                    let reward = e.reward.as_ref().ok().copied()?;
                    let penalty = config.overlong_buffer.map_or(0.0, |buffer| {
                        overlong_penalty(
                            c.token_ids.len(),
                            config.max_completion_length,
                            buffer,
                            config.overlong_penalty,
                        )
                    });
                    Some(reward + penalty)
                })
                .collect();
            sampled_tokens += rollouts
                .completions
                .iter()
                .map(|c| c.token_ids.len())
                .sum::<usize>();
            all_rewards.extend(&rewards);
            for (c, e) in rollouts.completions.iter().zip(evaluations.iter()) {
                all_evaluations.push((e.clone(), c.token_ids.len(), c.finish_reason));
            }
            let signal = groups_with_signal(&rewards, k);
            let mut completions = rollouts.completions.into_iter();
            let mut evaluations = evaluations.into_iter();
            for (g, row) in rows.into_iter().enumerate() {
                let group = Group {
                    row,
                    prompt_ids: rollouts.prompt_ids[g].clone(),
                    completions: completions.by_ref().take(k).collect(),
                    evaluations: evaluations.by_ref().take(k).collect(),
                    rewards: rewards[g * k..(g + 1) * k].to_vec(),
                };
                if !config.dynamic_sampling || signal.contains(&g) {
                    kept.push(group);
                }
            }
            rounds += 1;
            if !config.dynamic_sampling || kept.len() >= b || rounds > config.max_resample_rounds {
                break;
            }
        }
        kept.truncate(b);
        if config.dynamic_sampling {
            metrics.insert("dynamic_sampling/rounds".into(), rounds as f64);
            metrics.insert("dynamic_sampling/groups_kept".into(), kept.len() as f64);
        }

        // Statistics of everything sampled this step (TRL logs before filtering too).
        let (reward_std, zero_std) = group_stats(&all_rewards, k);
        let scored: Vec<f64> = all_rewards.iter().flatten().map(|&r| r as f64).collect();
        metrics.insert("reward".into(), mean_std(&scored).0);
        metrics.insert("reward_std".into(), reward_std as f64);
        metrics.insert("frac_reward_zero_std".into(), zero_std as f64);
        metrics.insert(
            "frac_unscorable".into(),
            1.0 - scored.len() as f64 / all_rewards.len().max(1) as f64,
        );
        let judged: Vec<bool> = all_evaluations
            .iter()
            .filter_map(|(e, _, _)| e.correct)
            .collect();
        if !judged.is_empty() {
            metrics.insert(
                "accuracy".into(),
                judged.iter().filter(|&&c| c).count() as f64 / judged.len() as f64,
            );
        }
        for (name, _) in self.verifiers.members() {
            let values: Vec<f64> = all_evaluations
                .iter()
                .filter_map(|(e, _, _)| e.members.iter().find(|m| m.name == name))
                .filter_map(|m| m.outcome.as_ref().ok().map(|s| s.reward as f64))
                .collect();
            let (mean, std) = mean_std(&values);
            metrics.insert(format!("rewards/{name}/mean"), mean);
            metrics.insert(format!("rewards/{name}/std"), std);
        }
        let lengths: Vec<f64> = all_evaluations.iter().map(|(_, l, _)| *l as f64).collect();
        let terminated: Vec<f64> = all_evaluations
            .iter()
            .filter(|(_, _, f)| *f == FinishReason::Stop)
            .map(|(_, l, _)| *l as f64)
            .collect();
        metrics.insert("completions/mean_length".into(), mean_std(&lengths).0);
        metrics.insert(
            "completions/max_length".into(),
            lengths.iter().copied().fold(0.0, f64::max),
        );
        metrics.insert(
            "completions/clipped_ratio".into(),
            1.0 - terminated.len() as f64 / lengths.len().max(1) as f64,
        );
        metrics.insert(
            "completions/mean_terminated_length".into(),
            if terminated.is_empty() {
                0.0
            } else {
                mean_std(&terminated).0
            },
        );
        metrics.insert("time/sample_s".into(), sample_s);
        metrics.insert("time/score_s".into(), score_s);
        metrics.insert(
            "throughput/sample_tokens_per_s".into(),
            sampled_tokens as f64 / sample_s.max(1e-9),
        );

        // Advantages over the kept groups.
        let rewards: Vec<Option<f32>> = kept.iter().flat_map(|g| g.rewards.clone()).collect();
        let advantage = advantages(
            &rewards,
            k,
            config.advantage_estimator,
            config.scale_rewards(),
            config.advantage_epsilon,
        );
        let mut batch = Batch::default();
        let mut logged = Vec::new();
        for (g, group) in kept.iter().enumerate() {
            batch.prompt_ids.push(group.prompt_ids.clone());
            for (i, completion) in group.completions.iter().enumerate() {
                let Some(a) = advantage[g * k + i] else {
                    continue;
                };
                let truncated = completion.finish_reason == FinishReason::Length;
                batch.rows.push(TrainRow {
                    group: g,
                    completion_ids: completion.token_ids.clone(),
                    sampling_logprobs: completion.logprobs.clone(),
                    advantage: a,
                    in_loss: !(config.mask_truncated_completions && truncated),
                });
            }
            for (i, completion) in group.completions.iter().enumerate() {
                if logged.len() >= config.log_completions {
                    break;
                }
                let evaluation = &group.evaluations[i];
                let per_verifier: serde_json::Map<String, serde_json::Value> = evaluation
                    .members
                    .iter()
                    .map(|m| {
                        (
                            m.name.clone(),
                            m.outcome.as_ref().map_or(json!(null), |s| json!(s.reward)),
                        )
                    })
                    .collect();
                logged.push(json!({
                    "prompt": group.row.prompt(),
                    "completion": completion.text,
                    "reward": group.rewards[i],
                    "rewards": per_verifier,
                    "advantage": advantage[g * k + i],
                }));
            }
        }
        Ok((batch, metrics, logged))
    }

    /// μ passes over `batch`, each of micro-batched forward/backward with gradient
    /// accumulation, then one clipped AdamW step. A non-finite loss or gradient skips the
    /// pass's step (weights untouched) and is reported as `step_skipped = 1`.
    pub fn update(&mut self, batch: &Batch) -> Result<Metrics> {
        let config = self.config.clone();
        let mut metrics = Metrics::new();
        let first_lr = self
            .optimizer
            .learning_rate(self.step * config.num_iterations);
        metrics.insert("learning_rate".into(), first_lr);
        if batch.rows.is_empty() {
            metrics.insert("step_skipped".into(), 0.0);
            return Ok(metrics);
        }
        let micro = config.micro_batch_size;
        let lengths: Vec<usize> = batch
            .rows
            .iter()
            .map(|r| if r.in_loss { r.completion_ids.len() } else { 0 })
            .collect();
        let weights = row_weights(
            config.loss_type,
            &lengths,
            micro,
            config.max_completion_length,
        );
        // Micro-batches of `micro` rows, each split at group boundaries into shards that run on
        // their own threads: [chunk][shard] → a row range.
        let shard_count = update_shards(config.update_shards);
        let chunks: Vec<Vec<(usize, usize)>> = (0..batch.rows.len())
            .step_by(micro)
            .map(|s| {
                let e = (s + micro).min(batch.rows.len());
                split_at_groups(&batch.rows, s, e, shard_count)
            })
            .collect();
        let pad = self.tokenizer.pad_id();
        let temperature = logprob_temperature(&config);
        let pack_rows = |(s, e): (usize, usize), device: &Device| -> PackedGroups {
            let rows: Vec<(usize, &[u32], bool)> = batch.rows[s..e]
                .iter()
                .map(|r| (r.group, r.completion_ids.as_slice(), r.in_loss))
                .collect();
            pack_groups(&batch.prompt_ids, &rows, pad, device)
        };
        // Log-probs that do not change during the passes, computed without autodiff and
        // moved onto the training device as plain data: [chunk][shard].
        let inner = self.model.valid();
        let frozen = |model: &M| -> Vec<Vec<Tensor<2>>> {
            chunks
                .iter()
                .map(|shards| {
                    in_parallel(shards, |_, &range| {
                        let p = pack_rows(range, &model.device());
                        let lp = model
                            .grouped_completion_logits(p.batch)
                            .logprobs(temperature);
                        Tensor::from_data(lp.into_data(), &self.device)
                    })
                })
                .collect()
        };
        // μ = 1: the detached current log-probs are π_old exactly, so none are computed.
        let old = (config.num_iterations > 1).then(|| frozen(&inner));
        let reference = self.reference.as_ref().map(frozen);

        let (mut loss_sum, mut stats, mut entropy_sum, mut grad_norm) =
            (0.0f64, [0.0f64; stat::COUNT], 0.0f64, 0.0f32);
        let mut skipped = false;
        // |log π_sampler − log π_trainer| over loss tokens, first pass: the same weights through
        // two code paths, so only float rounding should separate them.
        let (mut gap_sum, mut gap_tokens) = (0.0f64, 0usize);
        for pass in 0..config.num_iterations {
            let lr = self
                .optimizer
                .learning_rate(self.step * config.num_iterations + pass);
            let mut accumulator = GradientsAccumulator::<M>::new();
            let mut finite = true;
            'chunks: for (c, shards) in chunks.iter().enumerate() {
                let results = in_parallel(shards, |i, &(s, e)| -> Result<ShardResult> {
                    let model = shard_model(&self.model, &self.device, shards.len());
                    let p = pack_rows((s, e), &self.device);
                    let out = model.grouped_completion_logits(p.batch);
                    let logprobs = out.logprobs(temperature);
                    let gap = if pass == 0 {
                        let trained = TrainerError::read_back(logprobs.clone(), "log-probs")?;
                        let width = logprobs.dims()[1];
                        let mut gap = (0.0f64, 0usize);
                        for (r, row) in batch.rows[s..e].iter().enumerate() {
                            for (t, sampled) in row.sampling_logprobs.iter().enumerate() {
                                gap.0 += (trained[r * width + t] - sampled).abs() as f64;
                                gap.1 += 1;
                            }
                        }
                        gap
                    } else {
                        (0.0, 0)
                    };
                    let advantages: Vec<f32> =
                        batch.rows[s..e].iter().map(|r| r.advantage).collect();
                    let inputs = LossInputs {
                        old_logprobs: match &old {
                            Some(old) => old[c][i].clone(),
                            None => logprobs.clone().detach(),
                        },
                        logprobs,
                        ref_logprobs: reference.as_ref().map(|r| r[c][i].clone()),
                        advantages: column(&advantages, &self.device),
                        mask: p.mask.clone(),
                        weights: column(&weights[s..e], &self.device),
                    };
                    let loss = grpo_loss(inputs, &config);
                    let value = loss.loss.clone().into_scalar::<f32>();
                    if !value.is_finite() {
                        return Ok(ShardResult {
                            loss: value,
                            stats: Vec::new(),
                            entropy: 0.0,
                            gap,
                            grads: None,
                        });
                    }
                    let stats = TrainerError::read_back(loss.stats, "loss statistics")?;
                    let entropy = (out.entropy(temperature) * p.mask)
                        .sum()
                        .into_scalar::<f32>();
                    let grads = GradientsParams::from_grads(loss.loss.backward(), &model);
                    Ok(ShardResult {
                        loss: value,
                        stats,
                        entropy,
                        gap,
                        grads: Some(grads),
                    })
                });
                // Summed in shard order, so a run is reproducible for a given shard count.
                for result in results {
                    let result = result?;
                    gap_sum += result.gap.0;
                    gap_tokens += result.gap.1;
                    let Some(grads) = result.grads else {
                        finite = false;
                        break 'chunks;
                    };
                    loss_sum += result.loss as f64;
                    for (sum, v) in stats.iter_mut().zip(result.stats) {
                        *sum += v as f64;
                    }
                    entropy_sum += result.entropy as f64;
                    accumulator.accumulate(&self.model, grads);
                }
            }
            if !finite {
                skipped = true;
                break;
            }
            let (model, report) = self
                .optimizer
                .step(self.model.clone(), accumulator.grads(), lr);
            self.model = model;
            grad_norm = report.grad_norm;
            if report.skipped {
                skipped = true;
                break;
            }
        }
        let passes = config.num_iterations as f64;
        let tokens = stats[stat::TOKENS].max(1.0);
        metrics.insert("step_skipped".into(), if skipped { 1.0 } else { 0.0 });
        metrics.insert(
            "sampling_logprob_gap".into(),
            gap_sum / gap_tokens.max(1) as f64,
        );
        metrics.insert("loss".into(), loss_sum / passes);
        metrics.insert("policy_loss".into(), stats[stat::POLICY_LOSS] / passes);
        metrics.insert("grad_norm".into(), grad_norm as f64);
        metrics.insert("entropy".into(), entropy_sum / tokens);
        metrics.insert(
            "kl".into(),
            if config.beta > 0.0 {
                stats[stat::KL] / tokens
            } else {
                0.0
            },
        );
        let (low, high) = (
            stats[stat::LOW_CLIPPED] / tokens,
            stats[stat::HIGH_CLIPPED] / tokens,
        );
        metrics.insert("clip_ratio/low_mean".into(), low);
        metrics.insert("clip_ratio/high_mean".into(), high);
        metrics.insert("clip_ratio/region_mean".into(), low + high);
        Ok(metrics)
    }

    /// Evaluates every named set: greedy pass@1, pass@k when `eval_num_samples > 0`, mean
    /// reward; metrics named `eval/<set>/…`.
    pub fn evaluate(&self) -> Result<Metrics> {
        let settings = EvalSettings {
            max_completion_length: self.config.max_completion_length,
            stop_strings: self.config.stop_strings.clone(),
            num_samples: self.config.eval_num_samples,
            k: self.config.eval_k,
            temperature: self.config.temperature,
            seed: self.config.seed,
        };
        let policy = self.model.valid();
        let mut metrics = Metrics::new();
        for (name, rows) in &self.eval_sets {
            let result = evaluate(
                &policy,
                self.tokenizer.as_ref(),
                &self.verifiers,
                rows,
                &settings,
            )?;
            metrics.insert(format!("eval/{name}/pass@1"), result.pass_at_1);
            metrics.insert(format!("eval/{name}/reward"), result.mean_reward);
            if let Some(pass_k) = result.pass_at_k {
                metrics.insert(format!("eval/{name}/pass@{}", settings.k), pass_k);
            }
        }
        Ok(metrics)
    }

    /// Writes a checkpoint of the current step into the run directory.
    pub fn save_checkpoint(&self) -> Result<PathBuf> {
        let run_dir = self
            .run_dir
            .as_deref()
            .ok_or_else(|| TrainerError::config("run_dir", "a checkpoint needs a run directory"))?;
        let state = checkpoint::State {
            kind: "grpo".into(),
            step: self.step,
            cursor: self.epochs.cursor(),
            config: self.config.clone(),
        };
        checkpoint::save(
            run_dir,
            self.step,
            &self.model,
            self.reference.as_ref(),
            &self.optimizer,
            &state,
            self.config.save_total_limit,
        )
    }

    pub fn run_dir(&self) -> Option<&Path> {
        self.run_dir.as_deref()
    }
}

/// What one shard of a micro-batch gives the update.
struct ShardResult {
    loss: f32,
    stats: Vec<f32>,
    entropy: f32,
    /// Σ |log π_sampler − log π_trainer| and its token count (first pass only).
    gap: (f64, usize),
    /// `None` when the loss was not finite (nothing was back-propagated).
    grads: Option<GradientsParams>,
}

/// Rows `start..end` cut into at most `shards` runs of whole groups (a group's rows are
/// adjacent), as even in groups as the count allows, so that each shard runs its prompts once.
fn split_at_groups(
    rows: &[TrainRow],
    start: usize,
    end: usize,
    shards: usize,
) -> Vec<(usize, usize)> {
    // Row offsets where a new group begins, and the end.
    let mut starts: Vec<usize> = (start..end)
        .filter(|&r| r == start || rows[r].group != rows[r - 1].group)
        .collect();
    let groups = starts.len();
    starts.push(end);
    let shards = shards.clamp(1, groups.max(1));
    (0..shards)
        .map(|i| {
            (
                starts[i * groups / shards],
                starts[(i + 1) * groups / shards],
            )
        })
        .collect()
}

/// One prompt's share of a rollout.
struct Group {
    row: Row,
    prompt_ids: Vec<u32>,
    completions: Vec<grpo_sampler::Completion>,
    evaluations: Vec<Evaluation>,
    rewards: Vec<Option<f32>>,
}

/// The temperature log-probs are taken under: the sampling one (greedy sampling has none, so 1).
fn logprob_temperature(config: &GrpoConfig) -> f32 {
    if config.temperature > 0.0 {
        config.temperature
    } else {
        1.0
    }
}

/// The sampler seed of a step's round: a function of the run seed and the step alone, so a
/// resumed run samples what the uninterrupted one did.
fn step_seed(seed: u64, step: usize, round: usize) -> u64 {
    let mut z = seed
        ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (round as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn optim_settings(config: &GrpoConfig) -> OptimSettings {
    OptimSettings {
        learning_rate: config.learning_rate,
        schedule: config.lr_scheduler_type,
        // μ optimiser steps per training step: both counts are given in training steps.
        warmup_steps: config.warmup_steps * config.num_iterations,
        max_steps: config.max_steps * config.num_iterations,
        max_grad_norm: config.max_grad_norm,
        weight_decay: config.weight_decay,
        beta1: config.adam_beta1,
        beta2: config.adam_beta2,
        epsilon: config.adam_epsilon,
    }
}

/// Signs that a run has stopped learning, each with its kind (an index into
/// `GrpoTrainer::warned`).
fn warnings(metrics: &Metrics) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    if metrics
        .get("completions/clipped_ratio")
        .is_some_and(|&r| r >= 0.95)
    {
        out.push((0, "almost every completion hit max_completion_length (clipped_ratio ≥ 0.95): raise it or teach the model to stop".into()));
    }
    if metrics
        .get("frac_reward_zero_std")
        .is_some_and(|&r| r >= 0.95)
    {
        out.push((1, "almost every group has equal rewards (frac_reward_zero_std ≥ 0.95): no learning signal; the task may be too hard or too easy".into()));
    }
    if metrics.get("step_skipped").is_some_and(|&s| s > 0.0) {
        out.push((
            2,
            "non-finite loss or gradients: the update was skipped, weights unchanged".into(),
        ));
    }
    out
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
        let optimizer = Optimizer::new(optim_settings(&config));
        let lr: Vec<f64> = (0..8).map(|step| optimizer.learning_rate(step)).collect();
        // Warm-up over training steps 0 and 1 (optimiser steps 0..4): 1/4, 2/4, 3/4, 4/4.
        assert_eq!(&lr[..4], &[0.25, 0.5, 0.75, 1.0]);
        // Then linear decay to 0 at training step 4 (optimiser step 8): 4 steps left.
        assert_eq!(&lr[4..], &[1.0, 0.75, 0.5, 0.25]);
    }
}
