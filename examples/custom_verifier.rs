//! A verifier of your own: one type, one trait — and, to name it in a config, one registry
//! call. No change anywhere else.
//!
//! Run: `cargo run --release --features ndarray,wgpu --example custom_verifier`
//!
//! `StepCount` rewards solutions that show their work: at least `min_steps` lines that contain
//! an `=`. It plugs into a `VerifierSet` beside the built-in arithmetic checker in code, and,
//! registered as `kind = "step_count"`, into a `V.toml` or a run file (what `grpo train`
//! reads), where the trainer uses it exactly as it uses the built-ins.

use grpo::recipe::Run;
use grpo::verifiers::arithmetic::ArithmeticChecker;
use grpo::verifiers::{
    ConfigError, Member, Registry, Sample, Score, Verifier, VerifierSet, VerifyError,
};

pub struct StepCount {
    min_steps: usize,
}

impl Verifier for StepCount {
    fn verify(&self, sample: &Sample<'_>) -> Result<Score, VerifyError> {
        let steps = sample
            .completion
            .lines()
            .filter(|line| line.contains('='))
            .count();
        let enough = steps >= self.min_steps;
        Ok(Score {
            // Partial credit up to the minimum.
            reward: (steps.min(self.min_steps) as f32) / self.min_steps as f32,
            correct: Some(enough),
            details: format!("{steps} worked steps (want {})", self.min_steps),
            members: Vec::new(),
        })
    }

    // Counting lines is linear in the completion: no watchdog thread needed.
    fn is_bounded(&self) -> bool {
        true
    }
}

/// The TOML keys of `kind = "step_count"`; a typo is an error naming the key.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepCountSettings {
    min_steps: usize,
}

impl StepCount {
    pub fn new(settings: StepCountSettings) -> Result<StepCount, ConfigError> {
        if settings.min_steps == 0 {
            return Err(ConfigError::invalid("min_steps", "must be at least 1"));
        }
        Ok(StepCount {
            min_steps: settings.min_steps,
        })
    }
}

/// The built-in kinds plus `step_count`.
pub fn registry() -> Registry {
    let mut registry = Registry::default();
    registry
        .register("step_count", StepCount::new)
        .expect("a new kind");
    registry
}

/// The same verifiers as a `V.toml` (or the `[[verifiers]]` of a run file) would write them.
pub const VERIFIERS_TOML: &str = r#"
[[verifiers]]
kind = "arithmetic"
name = "accuracy"

[[verifiers]]
kind = "step_count"
name = "steps"
weight = 0.2
min_steps = 2
"#;

/// The same set, built in code.
pub fn in_code() -> Result<VerifierSet, ConfigError> {
    VerifierSet::new(vec![
        (
            Member::new("accuracy", ArithmeticChecker::new(Default::default())?),
            1.0,
        ),
        (Member::new("steps", StepCount { min_steps: 2 }), 0.2),
    ])
}

pub const COMPLETIONS: [&str; 3] = [
    "16 - 3 - 4 = 9 eggs\n9 * 2 = 18 dollars\n#### 18",
    "#### 18",
    "16 - 3 - 4 = 9\n#### 9",
];

pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let from_config = registry().verifiers_from_str(VERIFIERS_TOML, "V.toml")?;
    // A run file names the kind the same way; `Run::from_file_with(path, &registry)` reads one.
    let run = Run::from_str_with(
        &format!("name = \"demo\"\n[task]\nkind = \"arithmetic\"\n{VERIFIERS_TOML}"),
        "run.toml",
        &registry(),
    )?;
    let row = serde_json::json!({"answer": "18"});
    let row = row.as_object().expect("an object");
    for completion in COMPLETIONS {
        let sample = Sample::new("How much?", completion, row);
        let evaluation = from_config.evaluate(&sample);
        assert_eq!(evaluation.reward, in_code()?.evaluate(&sample).reward);
        assert_eq!(evaluation.reward, run.verifiers.evaluate(&sample).reward);
        println!(
            "{:>5}  {}",
            format!("{:.2}", evaluation.reward?),
            completion.replace('\n', " | ")
        );
        for member in &evaluation.members {
            let score = member.outcome.as_ref().map_err(Clone::clone)?;
            println!(
                "         {:<9} {:.2}  {}",
                member.name, score.reward, score.details
            );
        }
    }
    Ok(())
}
