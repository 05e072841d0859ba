//! Sampling through an environment when there is one: an episode per completion, the
//! environment's turn stops added, and its reward added to the verifiers'.

use grpo_data::Row;
use grpo_environments::{Environment, Episode, Outcome};
use grpo_policy::{LanguageModel, Tokenizer};
use grpo_sampler::{Rollouts, Sampler, SamplingConfig};

use crate::error::{Result, TrainerError};

/// K completions of each row's prompt, spread over `replicas` (one model's copies on the
/// run's devices): plain sampling, or with `environment` (and its `max_turns`) one episode per
/// completion.
pub(crate) fn sample_rows<M: LanguageModel>(
    sampler: &Sampler,
    replicas: &[M],
    tokenizer: &dyn Tokenizer,
    rows: &[Row],
    environment: Option<(&dyn Environment, usize)>,
    config: &SamplingConfig,
) -> Result<Rollouts> {
    let prompts = rows
        .iter()
        .map(|r| text_prompt(r).map(str::to_owned))
        .collect::<Result<Vec<String>>>()?;
    let Some((environment, max_turns)) = environment else {
        return Ok(sampler.sample_on(replicas, tokenizer, &prompts, None, config)?);
    };
    let mut config = config.clone();
    for stop in environment.turn_stops() {
        if !config.stop_strings.contains(&stop) {
            config.stop_strings.push(stop);
        }
    }
    let mut episodes: Vec<Box<dyn Episode>> =
        Vec::with_capacity(rows.len() * config.num_generations);
    for row in rows {
        for _ in 0..config.num_generations {
            episodes.push(
                environment
                    .start(row)
                    .map_err(|source| TrainerError::Environment {
                        prompt: row.prompt().chars().take(60).collect(),
                        source,
                    })?,
            );
        }
    }
    Ok(sampler.sample_on(
        replicas,
        tokenizer,
        &prompts,
        Some((&mut episodes, max_turns)),
        &config,
    )?)
}

/// `row`'s prompt text, or the error saying its conversation was never rendered (its
/// [`Row::prompt`] would be empty: a model sampled from nothing).
pub(crate) fn text_prompt(row: &Row) -> Result<&str> {
    match row.conversation() {
        None => Ok(row.prompt()),
        Some(messages) => Err(TrainerError::UnrenderedConversation {
            messages: messages.len(),
            begins: serde_json::to_string(messages)
                .unwrap_or_default()
                .chars()
                .take(60)
                .collect(),
        }),
    }
}

/// A completion's reward: the verifiers' weighted sum, plus `weight` × the environment's
/// reward when its episode gave one. Unscorable by the verifiers stays unscorable.
pub(crate) fn total_reward(
    verifiers: Option<f32>,
    outcome: Option<&Outcome>,
    weight: f32,
) -> Option<f32> {
    let environment = outcome.and_then(|o| o.reward).map_or(0.0, |r| weight * r);
    verifiers.map(|r| r + environment)
}
