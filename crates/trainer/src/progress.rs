//! The progress bar of a training run: step, reward, accuracy, KL and ETA, on stderr when it
//! is a terminal (hidden otherwise, so logs and tests stay clean).

use indicatif::{ProgressBar, ProgressStyle};

use crate::metrics::Metrics;

pub struct Progress(ProgressBar);

impl Progress {
    pub fn new(name: &str, total: usize, done: usize) -> Progress {
        let bar = ProgressBar::new(total as u64).with_style(
            ProgressStyle::with_template(&format!(
                "{name} {{bar:30}} step {{pos}}/{{len}} {{msg}} ({{eta}} left)"
            ))
            .expect("valid template"),
        );
        bar.set_position(done as u64);
        Progress(bar)
    }

    pub fn update(&self, step: usize, metrics: &Metrics) {
        let show = |name: &str, label: &str| {
            metrics
                .get(name)
                .filter(|v| v.is_finite())
                .map(|v| format!("{label} {v:.3}"))
        };
        let message: Vec<String> = [
            show("reward", "reward"),
            show("accuracy", "acc"),
            show("kl", "kl"),
            show("loss", "loss"),
        ]
        .into_iter()
        .flatten()
        .collect();
        self.0.set_message(message.join(" "));
        self.0.set_position(step as u64);
    }

    pub fn warn(&self, message: &str) {
        self.0.suspend(|| eprintln!("warning: {message}"));
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}
