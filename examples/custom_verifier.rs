//! A verifier of your own: one type, one trait, no change anywhere else.
//!
//! Run: `cargo run --release --example custom_verifier`
//!
//! `StepCount` rewards solutions that show their work: at least `min_steps` lines that contain
//! an `=`. It plugs into a `VerifierSet` beside the built-in arithmetic checker, and the
//! trainer would use the set exactly as it uses the built-ins.

use grpo::verifiers::arithmetic::ArithmeticChecker;
use grpo::verifiers::{Member, Sample, Score, Verifier, VerifierSet, VerifyError};

struct StepCount {
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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let set = VerifierSet::new(vec![
        (
            Member::new("accuracy", ArithmeticChecker::new(Default::default())?),
            1.0,
        ),
        (Member::new("steps", StepCount { min_steps: 2 }), 0.2),
    ])?;

    let row = serde_json::json!({"answer": "18"});
    let row = row.as_object().expect("an object");
    let completions = [
        "16 - 3 - 4 = 9 eggs\n9 * 2 = 18 dollars\n#### 18",
        "#### 18",
        "16 - 3 - 4 = 9\n#### 9",
    ];
    for completion in completions {
        let evaluation = set.evaluate(&Sample::new("How much?", completion, row));
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
