//! The rollout: sample K completions per prompt, score them, compute advantages, and (DAPO's
//! dynamic sampling) sample again for groups without signal.

use std::time::Instant;

use grpo_data::Row;
use grpo_environments::Outcome;
use grpo_policy::{LanguageModel, Tokenizer};
use grpo_sampler::{Completion, FinishReason, Sampler, Strategy};
use grpo_verifiers::{Evaluation, Sample};
use serde_json::json;

use super::metrics::sampling_metrics;
use super::{Batch, GrpoTrainer, TrainRow};
use crate::advantages::{advantages, groups_with_signal, overlong_penalty};
use crate::episodes::{sample_rows, total_reward};
use crate::error::Result;
use crate::metrics::Metrics;
use crate::shards::{frozen_replica, on_device};

impl<M: LanguageModel> GrpoTrainer<M> {
    /// Samples, scores and computes advantages for one step's prompts (with dynamic sampling,
    /// several rounds). Returns the batch, its metrics and the completions to log.
    pub fn rollout(&mut self) -> Result<(Batch, Metrics, Vec<serde_json::Value>)> {
        let config = self.core.config.clone();
        let (b, k) = (config.prompts_per_step, config.num_generations);
        // The weights out to each device, once per step; the sampler deals the prompts out.
        let policy = self.core.model.valid();
        let devices = self.core.devices()?;
        let replicas: Vec<M> = devices
            .iter()
            .map(|(_, d)| frozen_replica(&policy, d))
            .collect();
        let mut metrics = Metrics::new();
        let (mut sample_s, mut score_s, mut sampled_tokens) = (0.0, 0.0, 0usize);
        let mut passes = 0usize;
        // Kept groups: (row, prompt ids, completions, evaluations, rewards).
        let mut kept: Vec<Group> = Vec::new();
        let mut all_rewards: Vec<Option<f32>> = Vec::new();
        let mut all_evaluations: Vec<(Evaluation, usize, FinishReason)> = Vec::new();
        // With an environment: each episode's (turns, ending, outcome).
        let mut episodes: Vec<(usize, FinishReason, Outcome)> = Vec::new();
        let mut rounds = 0;
        loop {
            let rows = self.data.get_many(&self.core.epochs.next_batch(b))?;
            let seed = step_seed(config.seed, self.core.step, rounds);
            let t = Instant::now();
            let sampler = Sampler {
                strategy: Strategy {
                    shards: config.sampling_shards,
                    ..Strategy::default()
                },
            };
            let rollouts = sample_rows(
                &sampler,
                &replicas,
                self.tokenizer.as_ref(),
                &rows,
                self.environment(),
                &config.sampling(seed),
            )
            .map_err(|e| on_device(e, &devices))?;
            self.core.heard();
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
                    let reward = total_reward(
                        e.reward.as_ref().ok().copied(),
                        c.outcome.as_ref(),
                        config.environment_reward_weight,
                    )?;
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
            passes += crate::compute::sampling_passes(&rollouts);
            all_rewards.extend(&rewards);
            for (c, e) in rollouts.completions.iter().zip(evaluations.iter()) {
                all_evaluations.push((e.clone(), c.token_ids.len(), c.finish_reason));
            }
            if self.environment.is_some() {
                episodes.extend(rollouts.completions.iter().map(|c| {
                    (
                        c.turns,
                        c.finish_reason,
                        c.outcome.clone().unwrap_or_default(),
                    )
                }));
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
        metrics.extend(sampling_metrics(
            &all_rewards,
            &all_evaluations,
            k,
            &self.verifiers,
        ));
        if self.environment.is_some() {
            metrics.extend(episode_metrics(&episodes));
        }
        metrics.insert("time/sample_s".into(), sample_s);
        metrics.insert("time/score_s".into(), score_s);
        metrics.insert(
            "throughput/sample_tokens_per_s".into(),
            sampled_tokens as f64 / sample_s.max(1e-9),
        );
        metrics.insert("compute/sample_token_passes".into(), passes as f64);

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
                let truncated = completion.finish_reason != FinishReason::Stop;
                batch.rows.push(TrainRow {
                    group: g,
                    completion_ids: completion.token_ids.clone(),
                    from_model: completion.from_model.clone(),
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
                let mut entry = json!({
                    "prompt": group.row.prompt(),
                    "completion": completion.text,
                    "reward": group.rewards[i],
                    "rewards": per_verifier,
                    "advantage": advantage[g * k + i],
                });
                if let Some(outcome) = &completion.outcome {
                    entry["transcript"] = transcript(completion, self.tokenizer.as_ref());
                    entry["environment"] = json!({
                        "reward": outcome.reward,
                        "details": outcome.details,
                        "turns": completion.turns,
                        "finish_reason": completion.finish_reason,
                    });
                }
                logged.push(entry);
            }
        }
        Ok((batch, metrics, logged))
    }
}

/// One prompt's share of a rollout.
struct Group {
    row: Row,
    prompt_ids: Vec<u32>,
    completions: Vec<grpo_sampler::Completion>,
    evaluations: Vec<Evaluation>,
    rewards: Vec<Option<f32>>,
}

/// The sampler seed of a step's round: a function of the run seed and the step alone, so a
/// resumed run samples what the uninterrupted one did.
fn step_seed(seed: u64, step: usize, round: usize) -> u64 {
    grpo_base::SplitMix64::keyed(seed, &[step as u64, round as u64]).next_u64()
}

/// What the episodes of a step did: TRL's `tools/call_frequency` (calls per episode) and
/// `tools/failure_frequency` (failed calls per call), the model's turns per episode, the share
/// cut by `max_turns` (`completions/clipped_ratio` counts those and the ones cut by the token
/// budget), and the environment's mean reward where it gave one.
fn episode_metrics(episodes: &[(usize, FinishReason, Outcome)]) -> Metrics {
    let n = episodes.len().max(1) as f64;
    let calls: usize = episodes.iter().map(|e| e.2.tool_calls).sum();
    let failures: usize = episodes.iter().map(|e| e.2.tool_failures).sum();
    let turns: usize = episodes.iter().map(|e| e.0).sum();
    let cut = |reason: FinishReason| episodes.iter().filter(|e| e.1 == reason).count() as f64 / n;
    let rewards: Vec<f32> = episodes.iter().filter_map(|e| e.2.reward).collect();
    let mut metrics = Metrics::new();
    metrics.insert("tools/call_frequency".into(), calls as f64 / n);
    metrics.insert(
        "tools/failure_frequency".into(),
        if calls == 0 {
            0.0
        } else {
            failures as f64 / calls as f64
        },
    );
    metrics.insert("episodes/mean_turns".into(), turns as f64 / n);
    metrics.insert(
        "episodes/max_turns_ratio".into(),
        cut(FinishReason::MaxTurns),
    );
    if !rewards.is_empty() {
        metrics.insert(
            "rewards/environment/mean".into(),
            rewards.iter().map(|&r| r as f64).sum::<f64>() / rewards.len() as f64,
        );
    }
    metrics
}

/// A completion as the turns of its transcript: the model's (`assistant`) and the
/// environment's, as the token mask divides them.
fn transcript(completion: &Completion, tokenizer: &dyn Tokenizer) -> serde_json::Value {
    let mut turns = Vec::new();
    let mut start = 0;
    let ids = &completion.token_ids;
    while start < ids.len() {
        let mine = completion.from_model[start];
        let mut end = start;
        while end < ids.len() && completion.from_model[end] == mine {
            end += 1;
        }
        turns.push(json!({
            "role": if mine { "assistant" } else { "environment" },
            "content": tokenizer.decode(&ids[start..end]),
        }));
        start = end;
    }
    serde_json::Value::Array(turns)
}
