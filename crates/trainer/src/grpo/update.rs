//! The update: μ passes of micro-batched, sharded forward/backward over a batch, each ended by
//! one clipped AdamW step.

use grpo_policy::LanguageModel;
use grpo_policy::burn::optim::{GradientsAccumulator, GradientsParams};
use grpo_policy::burn::tensor::{Device, Tensor};

use super::{Batch, GrpoTrainer, TrainRow};
use crate::config::GrpoConfig;
use crate::error::{Result, TrainerError};
use crate::loss::{LossInputs, grpo_loss, row_weights, stat};
use crate::metrics::Metrics;
use crate::packing::{PackedGroups, column, pack_groups};
use crate::shards::{
    autodiff_on, frozen_replica, in_parallel, replica, shard_model, shards_on, sum_at_home,
    update_shards,
};

impl<M: LanguageModel> GrpoTrainer<M> {
    /// μ passes over `batch`, each of micro-batched forward/backward with gradient
    /// accumulation, then one clipped AdamW step. A non-finite loss or gradient skips the
    /// pass's step (weights untouched) and is reported as `step_skipped = 1`.
    pub fn update(&mut self, batch: &Batch) -> Result<Metrics> {
        let config = self.core.config.clone();
        let mut metrics = Metrics::new();
        let first_lr = self
            .core
            .optimizer
            .learning_rate(self.core.step * config.num_iterations);
        metrics.insert("learning_rate".into(), first_lr);
        if batch.rows.is_empty() {
            metrics.insert("step_skipped".into(), 0.0);
            metrics.insert("compute/update_token_passes".into(), 0.0);
            return Ok(metrics);
        }
        let micro = config.micro_batch_size;
        let lengths: Vec<usize> = batch
            .rows
            .iter()
            .map(|r| {
                if r.in_loss {
                    r.from_model.iter().filter(|&&m| m).count()
                } else {
                    0
                }
            })
            .collect();
        let weights = row_weights(
            config.loss_type,
            &lengths,
            micro,
            config.max_completion_length,
        );
        // Micro-batches of `micro` rows, each split at group boundaries into shards that run on
        // their own threads, shard i on device i % n: [chunk][shard] → a row range.
        let main = self.core.device.clone();
        let devices = self.core.devices()?;
        let n = devices.len();
        let name_of = |i: usize| devices[i % n].0.clone();
        let checkpointing = config.gradient_checkpointing;
        let train_on: Vec<_> = devices
            .iter()
            .map(|(_, d)| autodiff_on(&main, d, checkpointing))
            .collect();
        let shard_count = update_shards(config.update_shards).max(n);
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
            let rows: Vec<(usize, &[u32], &[bool], bool)> = batch.rows[s..e]
                .iter()
                .map(|r| {
                    (
                        r.group,
                        r.completion_ids.as_slice(),
                        r.from_model.as_slice(),
                        r.in_loss,
                    )
                })
                .collect();
            pack_groups(&batch.prompt_ids, &rows, pad, device)
        };
        // Log-probs that do not change during the passes, computed without autodiff by the
        // model's copy on each shard's device and moved onto the shard's training device as
        // plain data: [chunk][shard].
        let frozen = |replicas: &[M]| -> Result<Vec<Vec<Tensor<2>>>> {
            chunks
                .iter()
                .map(|shards| {
                    in_parallel(shards, name_of, |i, &range| {
                        let model = &replicas[i % n];
                        let p = pack_rows(range, &model.device());
                        let lp = model
                            .grouped_completion_logits(p.batch)
                            .logprobs(temperature);
                        Tensor::from_data(lp.into_data(), &train_on[i % n])
                    })
                })
                .collect()
        };
        // μ = 1: the detached current log-probs are π_old exactly, so none are computed.
        let old = match config.num_iterations > 1 {
            true => {
                let inner = self.core.model.valid();
                let replicas: Vec<M> = devices
                    .iter()
                    .map(|(_, d)| frozen_replica(&inner, d))
                    .collect();
                Some(frozen(&replicas)?)
            }
            false => None,
        };
        let reference = match &self.reference {
            Some(r) => {
                // The reference never changes: its copies on the devices are made once.
                if self.reference_replicas.len() != n {
                    self.reference_replicas = devices
                        .iter()
                        .map(|(_, d)| frozen_replica(r.model(), d))
                        .collect();
                }
                Some(frozen(&self.reference_replicas)?)
            }
            None => None,
        };
        self.core.heard();

        let (mut loss_sum, mut stats, mut entropy_sum, mut grad_norm) =
            (0.0f64, [0.0f64; stat::COUNT], 0.0f64, 0.0f32);
        let mut skipped = false;
        // |log π_sampler − log π_trainer| over loss tokens, first pass: the same weights through
        // two code paths, so only float rounding should separate them.
        let (mut gap_sum, mut gap_tokens) = (0.0f64, 0usize);
        let mut passes_run = 0usize;
        for pass in 0..config.num_iterations {
            passes_run += 1;
            let lr = self
                .core
                .optimizer
                .learning_rate(self.core.step * config.num_iterations + pass);
            // Each device's shards summed there, then moved home once per pass.
            let mut accumulators: Vec<_> =
                (0..n).map(|_| GradientsAccumulator::<M>::new()).collect();
            let mut finite = true;
            // The weights out to each device, once per pass.
            let replicas: Vec<M> = devices
                .iter()
                .map(|(_, d)| replica(&self.core.model, &main, d, checkpointing))
                .collect();
            'chunks: for (c, shards) in chunks.iter().enumerate() {
                let results = in_parallel(shards, name_of, |i, &(s, e)| -> Result<ShardResult> {
                    let on = &train_on[i % n];
                    let model = shard_model(&replicas[i % n], on, shards_on(shards.len(), n, i));
                    let p = pack_rows((s, e), on);
                    let out = model.grouped_completion_logits(p.batch);
                    let logprobs = out.logprobs(temperature);
                    let gap = if pass == 0 {
                        let trained = TrainerError::read_back(logprobs.clone(), "log-probs")?;
                        let width = logprobs.dims()[1];
                        let mut gap = (0.0f64, 0usize);
                        for (r, row) in batch.rows[s..e].iter().enumerate() {
                            for (t, sampled) in row.sampling_logprobs.iter().enumerate() {
                                if row.from_model[t] {
                                    gap.0 += (trained[r * width + t] - sampled).abs() as f64;
                                    gap.1 += 1;
                                }
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
                        advantages: column(&advantages, on),
                        mask: p.mask.clone(),
                        weights: column(&weights[s..e], on),
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
                self.core.heard();
                // Summed in shard order, so a run is reproducible for a given shard count.
                for (i, result) in results?.into_iter().enumerate() {
                    // A value that could not be read back from a worker: say which one.
                    let result = result.map_err(|e| match n {
                        1 => e,
                        _ => TrainerError::Device {
                            device: name_of(i),
                            message: e.to_string(),
                        },
                    })?;
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
                    accumulators[i % n].accumulate(&self.core.model, grads);
                }
            }
            if !finite {
                skipped = true;
                break;
            }
            let grads = sum_at_home(accumulators, &self.core.model, &main, &devices);
            let report = self.core.optimizer_step(grads, lr);
            grad_norm = report.grad_norm;
            if report.skipped {
                skipped = true;
                break;
            }
        }
        // Token passes (see `crate::compute`): π_old and the reference forward once, each
        // pass that ran forward and backward (3).
        let forwarded: usize = chunks
            .iter()
            .flatten()
            .map(|&(s, e)| forwarded_positions(batch, s, e))
            .sum();
        let per_position =
            3 * passes_run + usize::from(old.is_some()) + usize::from(reference.is_some());
        metrics.insert(
            "compute/update_token_passes".into(),
            (forwarded * per_position) as f64,
        );
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
    let mut starts = group_starts(rows, start, end);
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

/// The temperature log-probs are taken under: the sampling one (greedy sampling has none, so 1).
fn logprob_temperature(config: &GrpoConfig) -> f32 {
    if config.temperature > 0.0 {
        config.temperature
    } else {
        1.0
    }
}

/// The positions the grouped forward of rows `start..end` runs: each distinct prompt once, and
/// each completion but its last token (which predicts nothing). Real tokens only: padding is
/// not counted.
fn forwarded_positions(batch: &Batch, start: usize, end: usize) -> usize {
    let prompts: usize = group_starts(&batch.rows, start, end)
        .into_iter()
        .map(|r| batch.prompt_ids[batch.rows[r].group].len())
        .sum();
    let completions: usize = batch.rows[start..end]
        .iter()
        .map(|row| row.completion_ids.len().saturating_sub(1))
        .sum();
    prompts + completions
}

/// The rows of `start..end` where a new group begins (a group's rows are adjacent).
fn group_starts(rows: &[TrainRow], start: usize, end: usize) -> Vec<usize> {
    (start..end)
        .filter(|&r| r == start || rows[r].group != rows[r - 1].group)
        .collect()
}
