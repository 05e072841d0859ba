//! What a run spends, in **token passes**: a forward pass of the model over one token costs 1
//! (about 2 × parameters FLOPs), its backward 2 — so a trained position costs 3. Counted by the
//! trainers from what they really run (real tokens; padding is not counted), logged per step:
//!
//! - `compute/sample_token_passes` (GRPO): each prompt prefilled once for its K completions,
//!   then each sampled token but a completion's last (every round of dynamic sampling counts);
//! - `compute/update_token_passes` (GRPO): the grouped forward's positions (each distinct
//!   prompt of a micro-batch shard once, each completion but its last token) × (3 per pass
//!   that ran + 1 for π_old when μ > 1 + 1 for the reference when β > 0);
//! - `compute/token_passes`: the step's total (GRPO: the two above; SFT: 3 × every token of
//!   the batch).
//!
//! A compute-matched comparison — the SFT control arm of a recipe — sums the GRPO run's
//! `compute/token_passes` and spends as many on SFT steps: [`matched_sft_steps`]. Sampling
//! outside the steps that serves GRPO (a pass-rate filter's, [`crate::PassRates`]) is counted
//! the same way and added.

use crate::metrics::Metrics;

/// SFT steps whose token passes add up to the GRPO run's (`grpo` is its per-step metrics),
/// given an SFT step's expected tokens (batch size × mean prompt-plus-target tokens).
pub fn matched_sft_steps(grpo: &[Metrics], sft_tokens_per_step: f64) -> usize {
    let spent: f64 = grpo
        .iter()
        .filter_map(|m| m.get("compute/token_passes"))
        .sum();
    (spent / (3.0 * sft_tokens_per_step).max(1.0)).round() as usize
}

/// The token passes of one sampler call: each prompt prefilled once (the K completions share
/// it), then each sampled token but a completion's last forwarded to draw the next.
pub(crate) fn sampling_passes(rollouts: &grpo_sampler::Rollouts) -> usize {
    let prefill: usize = rollouts.prompt_ids.iter().map(Vec::len).sum();
    let decode: usize = rollouts
        .completions
        .iter()
        .map(|c| c.token_ids.len().saturating_sub(1))
        .sum();
    prefill + decode
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_control_arm_spends_what_grpo_spent() {
        let step =
            |passes: f64| -> Metrics { [("compute/token_passes".to_owned(), passes)].into() };
        // 900 + 2 100 token passes; an SFT step of 40 tokens costs 120: 25 steps.
        assert_eq!(matched_sft_steps(&[step(900.0), step(2100.0)], 40.0), 25);
        assert_eq!(matched_sft_steps(&[], 40.0), 0);
    }
}
