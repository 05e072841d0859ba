//! What a rollout logs about what it sampled, under TRL's metric names.

use grpo_sampler::FinishReason;
use grpo_verifiers::{Evaluation, VerifierSet};

use crate::advantages::group_stats;
use crate::metrics::{Metrics, mean_std};

/// Rewards, accuracy, per-verifier rewards and completion lengths of every completion sampled
/// in a step (dynamic sampling's dropped groups included): `rewards` in groups of `k`, and
/// per completion its evaluation, token count and why it ended.
pub(super) fn sampling_metrics(
    all_rewards: &[Option<f32>],
    all_evaluations: &[(Evaluation, usize, FinishReason)],
    k: usize,
    verifiers: &VerifierSet,
) -> Metrics {
    let mut metrics = Metrics::new();
    let (reward_std, zero_std) = group_stats(all_rewards, k);
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
    for (name, _) in verifiers.members() {
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
    metrics
}
