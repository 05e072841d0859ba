//! Evaluation: greedy pass@1, pass@k with the unbiased estimator, and mean reward.

use grpo_data::Row;
use grpo_environments::Environment;
use grpo_policy::{LanguageModel, Tokenizer};
use grpo_sampler::{Sampler, SamplingConfig};
use grpo_verifiers::{Sample, VerifierSet};

use crate::episodes::{sample_rows, total_reward};
use crate::error::Result;

/// How to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalSettings {
    pub max_completion_length: usize,
    pub stop_strings: Vec<String>,
    /// n: completions per prompt for pass@k (0: greedy pass@1 only).
    pub num_samples: usize,
    pub k: usize,
    /// Sampling temperature of the pass@k completions.
    pub temperature: f32,
    pub seed: u64,
    /// The weight of an environment's reward in the mean reward (GRPO's
    /// `environment_reward_weight`).
    pub environment_reward_weight: f32,
}

/// The numbers for one set. A completion passes when the verifiers judge it correct
/// (`Evaluation::correct == Some(true)`); unscorable completions count as failures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalResult {
    pub pass_at_1: f64,
    pub pass_at_k: Option<f64>,
    /// Mean reward of the greedy completions that could be scored.
    pub mean_reward: f64,
    /// With an environment: the greedy episodes' mean tool calls (`tools/call_frequency`).
    pub tool_calls_per_episode: Option<f64>,
}

/// Prompts per sampler call: bounds memory on large sets.
const CHUNK: usize = 64;

/// Evaluates `model` (a plain, non-autodiff one) on `rows`; with an environment (and its
/// `max_turns`), each completion is an episode and the verifiers score its transcript.
pub fn evaluate<M: LanguageModel>(
    model: &M,
    tokenizer: &dyn Tokenizer,
    verifiers: &VerifierSet,
    environment: Option<(&dyn Environment, usize)>,
    rows: &[Row],
    settings: &EvalSettings,
) -> Result<EvalResult> {
    let greedy = SamplingConfig {
        num_generations: 1,
        temperature: 0.0,
        max_new_tokens: settings.max_completion_length,
        stop_strings: settings.stop_strings.clone(),
        seed: settings.seed,
        ..Default::default()
    };
    let (mut passed, mut reward_sum, mut scored) = (0usize, 0.0f64, 0usize);
    let mut tool_calls = 0usize;
    let mut pass_k_sum = 0.0f64;
    for (chunk_index, chunk) in rows.chunks(CHUNK).enumerate() {
        let (outcomes, _) = score(
            model,
            tokenizer,
            verifiers,
            environment,
            chunk,
            &greedy,
            settings,
        )?;
        for (correct, reward, calls) in outcomes {
            passed += correct as usize;
            tool_calls += calls;
            if let Some(r) = reward {
                reward_sum += r as f64;
                scored += 1;
            }
        }
        if settings.num_samples > 0 {
            let (correct, _) = sampled_correct(
                model,
                tokenizer,
                verifiers,
                environment,
                chunk,
                chunk_index,
                settings,
            )?;
            for correct in correct {
                pass_k_sum += pass_at_k(settings.num_samples, correct, settings.k);
            }
        }
    }
    let n = rows.len().max(1) as f64;
    Ok(EvalResult {
        pass_at_1: passed as f64 / n,
        pass_at_k: (settings.num_samples > 0).then(|| pass_k_sum / n),
        mean_reward: if scored == 0 {
            f64::NAN
        } else {
            reward_sum / scored as f64
        },
        tool_calls_per_episode: environment.map(|_| tool_calls as f64 / n),
    })
}

/// Each row's pass rate under a model ([`pass_rates`]), and what estimating them cost.
#[derive(Debug, Clone, PartialEq)]
pub struct PassRates {
    /// Per row, in the rows' order: the share of its completions judged correct.
    pub rates: Vec<f64>,
    /// The sampling's token passes, counted as a GRPO step's sampling is
    /// ([`crate::compute`]): what a compute-matched control must be given for it.
    pub token_passes: usize,
}

/// Each row's pass rate under `model`: the share of `settings.num_samples` completions
/// sampled at `settings.temperature` that the verifiers judge correct (the same draws as
/// [`evaluate`]'s pass@k). What a difficulty filter keeps or drops a prompt by: a prompt
/// solved always or never gives GRPO a group of equal rewards. `progress` is told how many rows
/// each chunk finished.
pub fn pass_rates<M: LanguageModel>(
    model: &M,
    tokenizer: &dyn Tokenizer,
    verifiers: &VerifierSet,
    environment: Option<(&dyn Environment, usize)>,
    rows: &[Row],
    settings: &EvalSettings,
    progress: &mut dyn FnMut(usize),
) -> Result<PassRates> {
    if settings.num_samples == 0 {
        return Err(crate::TrainerError::config(
            "num_samples",
            "a pass rate needs at least one sample per row",
        ));
    }
    let mut rates = Vec::with_capacity(rows.len());
    let mut token_passes = 0;
    for (chunk_index, chunk) in rows.chunks(CHUNK).enumerate() {
        let (correct, passes) = sampled_correct(
            model,
            tokenizer,
            verifiers,
            environment,
            chunk,
            chunk_index,
            settings,
        )?;
        rates.extend(
            correct
                .into_iter()
                .map(|c| c as f64 / settings.num_samples as f64),
        );
        token_passes += passes;
        progress(chunk.len());
    }
    Ok(PassRates {
        rates,
        token_passes,
    })
}

/// Why `min_pass ..= max_pass` is not a band of pass rates (both within 0..=1, in order), if
/// it is not.
pub fn check_pass_band(min_pass: f64, max_pass: f64) -> std::result::Result<(), String> {
    let rate = |p: f64| (0.0..=1.0).contains(&p);
    if rate(min_pass) && rate(max_pass) && min_pass <= max_pass {
        Ok(())
    } else {
        Err(format!(
            "min_pass and max_pass must satisfy 0 <= min_pass <= max_pass <= 1, got \
             {min_pass} and {max_pass}"
        ))
    }
}

/// For each row of chunk `chunk_index`, how many of its `settings.num_samples` completions,
/// sampled at `settings.temperature` from a stream seeded by the chunk, are correct; and the
/// sampling's token passes.
fn sampled_correct<M: LanguageModel>(
    model: &M,
    tokenizer: &dyn Tokenizer,
    verifiers: &VerifierSet,
    environment: Option<(&dyn Environment, usize)>,
    chunk: &[Row],
    chunk_index: usize,
    settings: &EvalSettings,
) -> Result<(Vec<usize>, usize)> {
    let config = SamplingConfig {
        num_generations: settings.num_samples,
        temperature: settings.temperature,
        max_new_tokens: settings.max_completion_length,
        stop_strings: settings.stop_strings.clone(),
        seed: grpo_base::SplitMix64::keyed(settings.seed, &[chunk_index as u64]).next_u64(),
        ..Default::default()
    };
    let (outcomes, passes) = score(
        model,
        tokenizer,
        verifiers,
        environment,
        chunk,
        &config,
        settings,
    )?;
    let correct = outcomes
        .chunks(settings.num_samples)
        .map(|group| group.iter().filter(|(c, _, _)| *c).count())
        .collect();
    Ok((correct, passes))
}

/// (correct, reward, tool calls) of every completion, grouped by prompt.
type Outcomes = Vec<(bool, Option<f32>, usize)>;

/// Every completion's [`Outcomes`], and the sampling's token passes.
fn score<M: LanguageModel>(
    model: &M,
    tokenizer: &dyn Tokenizer,
    verifiers: &VerifierSet,
    environment: Option<(&dyn Environment, usize)>,
    rows: &[Row],
    config: &SamplingConfig,
    settings: &EvalSettings,
) -> Result<(Outcomes, usize)> {
    let rollouts = sample_rows(
        &Sampler::default(),
        std::slice::from_ref(model),
        tokenizer,
        rows,
        environment,
        config,
    )?;
    let samples: Vec<Sample> = rollouts
        .completions
        .iter()
        .map(|c| Sample::new(rows[c.group].prompt(), &c.text, rows[c.group].fields()))
        .collect();
    let outcomes = verifiers
        .evaluate_batch(&samples)
        .into_iter()
        .zip(&rollouts.completions)
        .map(|(e, c)| {
            let reward = total_reward(
                e.reward.ok(),
                c.outcome.as_ref(),
                settings.environment_reward_weight,
            );
            let calls = c.outcome.as_ref().map_or(0, |o| o.tool_calls);
            (e.correct == Some(true), reward, calls)
        })
        .collect();
    Ok((outcomes, crate::compute::sampling_passes(&rollouts)))
}

/// The unbiased pass@k estimator of Chen et al. 2021 (Codex, eq. 1): `1 − C(n−c, k) / C(n, k)`,
/// computed as a product so large n does not overflow.
pub fn pass_at_k(n: usize, c: usize, k: usize) -> f64 {
    if n - c < k {
        return 1.0;
    }
    1.0 - ((n - c + 1)..=n)
        .map(|i| 1.0 - k as f64 / i as f64)
        .product::<f64>()
}

#[cfg(test)]
mod tests {
    use super::pass_at_k;

    #[test]
    fn pass_at_k_matches_the_binomial_form() {
        // n = 5, c = 2, k = 2: 1 − C(3,2)/C(5,2) = 1 − 3/10.
        assert!((pass_at_k(5, 2, 2) - 0.7).abs() < 1e-12);
        // k = 1 is the plain success rate.
        assert!((pass_at_k(10, 3, 1) - 0.3).abs() < 1e-12);
        assert_eq!(pass_at_k(4, 0, 2), 0.0);
        assert_eq!(pass_at_k(4, 3, 2), 1.0);
    }
}
