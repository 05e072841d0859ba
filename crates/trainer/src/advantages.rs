//! Advantages: how much better each completion did than its group. Pure functions over
//! rewards, so every estimator is checked against numbers worked out independently.
//!
//! Rewards come in groups of `k` consecutive completions (one prompt's). `None` is an
//! unscorable completion: it is left out of its group's statistics and gets no advantage (it
//! takes no part in the loss), so a crashed verifier never teaches the model anything.

use crate::config::{AdvantageEstimator, ScaleRewards};

/// Advantages for `rewards` in groups of `k`.
///
/// - `Grpo`: `A_i = (r_i − mean(r)) / (std(r) + eps)` with the std of the group, of the batch,
///   or 1 (`scale`) — DeepSeekMath eq. 4 (outcome supervision); `ScaleRewards::None` is
///   Dr. GRPO's unscaled form.
/// - `Rloo`: `A_i = r_i − mean(r_j, j ≠ i)` = `n/(n−1) · (r_i − mean(r))`, then scaled alike.
/// - `ReinforcePpBaseline`: `r_i − mean(group)`, whitened over the batch: `(a − mean(a)) /
///   (std(a) + eps)`.
///
/// Standard deviations are Bessel-corrected (`torch.std`, as TRL and verl use); a group with
/// one scorable completion, or whose rewards are all equal, gets zero advantages — never NaN.
pub fn advantages(
    rewards: &[Option<f32>],
    k: usize,
    estimator: AdvantageEstimator,
    scale: ScaleRewards,
    eps: f32,
) -> Vec<Option<f32>> {
    assert!(
        k > 0 && rewards.len().is_multiple_of(k),
        "rewards come in whole groups"
    );
    let eps = eps as f64;
    let scored =
        |group: &[Option<f32>]| -> Vec<f64> { group.iter().flatten().map(|&r| r as f64).collect() };
    let batch_std = std(&scored(rewards));
    let mut out: Vec<Option<f64>> = Vec::with_capacity(rewards.len());
    for group in rewards.chunks(k) {
        let values = scored(group);
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n.max(1.0);
        let divisor = match (estimator, scale) {
            (AdvantageEstimator::ReinforcePpBaseline, _) | (_, ScaleRewards::None) => 1.0,
            (_, ScaleRewards::Group) => std(&values) + eps,
            (_, ScaleRewards::Batch) => batch_std + eps,
        };
        for reward in group {
            out.push(reward.map(|r| {
                let centred = r as f64 - mean;
                let centred = match estimator {
                    // Leave-one-out baseline; with one scorable sample there is no baseline.
                    AdvantageEstimator::Rloo if n < 2.0 => 0.0,
                    AdvantageEstimator::Rloo => centred * n / (n - 1.0),
                    _ => centred,
                };
                centred / divisor
            }));
        }
    }
    if estimator == AdvantageEstimator::ReinforcePpBaseline {
        let centred: Vec<f64> = out.iter().flatten().copied().collect();
        let mean = centred.iter().sum::<f64>() / (centred.len() as f64).max(1.0);
        let divisor = std(&centred) + eps;
        for a in out.iter_mut().flatten() {
            *a = (*a - mean) / divisor;
        }
    }
    out.into_iter().map(|a| a.map(|a| a as f32)).collect()
}

/// Bessel-corrected standard deviation; 0 for fewer than two values.
fn std(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mean = values.iter().sum::<f64>() / n;
    (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
}

/// Per-group statistics for the metrics: the mean over groups of the reward std
/// (`reward_std`), and the share of groups whose rewards are all equal
/// (`frac_reward_zero_std`). Groups with no scorable completion count as zero-std.
pub fn group_stats(rewards: &[Option<f32>], k: usize) -> (f32, f32) {
    let groups = rewards.len() / k;
    let mut std_sum = 0.0;
    let mut zero = 0;
    for group in rewards.chunks(k) {
        let values: Vec<f64> = group.iter().flatten().map(|&r| r as f64).collect();
        let s = std(&values);
        std_sum += s;
        if s < 1e-8 {
            zero += 1;
        }
    }
    let groups = groups.max(1) as f64;
    ((std_sum / groups) as f32, (zero as f64 / groups) as f32)
}

/// Groups (indices) with a non-zero reward spread: what DAPO's dynamic sampling keeps.
pub fn groups_with_signal(rewards: &[Option<f32>], k: usize) -> Vec<usize> {
    rewards
        .chunks(k)
        .enumerate()
        .filter(|(_, group)| {
            let values: Vec<f64> = group.iter().flatten().map(|&r| r as f64).collect();
            std(&values) >= 1e-8
        })
        .map(|(g, _)| g)
        .collect()
}

/// DAPO eq. 13, the soft overlong punishment: 0 up to `max_len − buffer` tokens, then falling
/// linearly to `−penalty` at `max_len`, `−penalty` beyond.
pub fn overlong_penalty(length: usize, max_len: usize, buffer: usize, penalty: f32) -> f32 {
    let free = max_len - buffer;
    if length <= free {
        0.0
    } else if length <= max_len {
        -penalty * (length - free) as f32 / buffer as f32
    } else {
        -penalty
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overlong_penalty_is_dapo_eq_13() {
        // max 10, buffer 4: free up to 6 tokens, then −(L − 6)/4 · penalty, −penalty at 10.
        let p = |length| overlong_penalty(length, 10, 4, 2.0);
        assert_eq!([p(0), p(6)], [0.0, 0.0]);
        assert_eq!([p(7), p(8), p(10)], [-0.5, -1.0, -2.0]);
        assert_eq!(p(11), -2.0);
    }

    #[test]
    fn only_groups_whose_rewards_differ_carry_signal() {
        let rewards = [
            Some(1.0),
            Some(1.0), // flat
            Some(0.0),
            Some(1.0), // signal
            None,
            Some(0.5), // one scorable sample: flat
            Some(0.2),
            None, // flat
        ];
        assert_eq!(groups_with_signal(&rewards, 2), vec![1]);
    }
}
