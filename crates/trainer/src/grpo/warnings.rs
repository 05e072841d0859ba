//! Signs in a step's metrics that a run has stopped learning, shown while a run goes on.

use crate::metrics::Metrics;

/// A sign that a run has stopped learning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Warning {
    /// Almost every completion hit `max_completion_length`.
    Truncated,
    /// Almost every group's rewards are equal: no advantage, no gradient.
    NoSignal,
    /// The loss or the gradients were not finite; the update was skipped.
    Skipped,
}

impl Warning {
    /// The warnings `metrics` show, in a fixed order.
    pub(super) fn in_metrics(metrics: &Metrics) -> Vec<Warning> {
        let at_least = |key: &str, bound: f64| metrics.get(key).is_some_and(|&v| v >= bound);
        let mut found = Vec::new();
        if at_least("completions/clipped_ratio", 0.95) {
            found.push(Warning::Truncated);
        }
        if at_least("frac_reward_zero_std", 0.95) {
            found.push(Warning::NoSignal);
        }
        if metrics.get("step_skipped").is_some_and(|&s| s > 0.0) {
            found.push(Warning::Skipped);
        }
        found
    }

    pub(super) fn message(self) -> &'static str {
        match self {
            Warning::Truncated => {
                "almost every completion hit max_completion_length (clipped_ratio ≥ 0.95): raise it or teach the model to stop"
            }
            Warning::NoSignal => {
                "almost every group has equal rewards (frac_reward_zero_std ≥ 0.95): no learning signal; the task may be too hard or too easy"
            }
            Warning::Skipped => {
                "non-finite loss or gradients: the update was skipped, weights unchanged"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_warning_has_its_threshold() {
        let metrics = |pairs: &[(&str, f64)]| -> Metrics {
            pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
        };
        assert!(Warning::in_metrics(&metrics(&[("completions/clipped_ratio", 0.9)])).is_empty());
        assert_eq!(
            Warning::in_metrics(&metrics(&[
                ("completions/clipped_ratio", 0.95),
                ("frac_reward_zero_std", 1.0),
                ("step_skipped", 1.0),
            ])),
            vec![Warning::Truncated, Warning::NoSignal, Warning::Skipped]
        );
    }
}
