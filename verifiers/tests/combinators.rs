//! Combinators and batch scoring: members' own scores kept, panics and overruns contained.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use grpo_verifiers::combinators::{Gate, Max};
use grpo_verifiers::{Member, Sample, Score, Verifier, VerifierSet, VerifyError};
use serde_json::{Map, json};

/// Returns the completion parsed as a reward; `correct` when it is ≥ 1.
struct Echo;

impl Verifier for Echo {
    fn verify(&self, sample: &Sample<'_>) -> Result<Score, VerifyError> {
        let reward: f32 = sample
            .completion
            .parse()
            .map_err(|_| VerifyError::Other(format!("not a number: {}", sample.completion)))?;
        Ok(Score {
            reward,
            ..Score::binary(reward >= 1.0, "echo")
        })
    }
    fn is_bounded(&self) -> bool {
        true
    }
}

struct Panics;

impl Verifier for Panics {
    fn verify(&self, _: &Sample<'_>) -> Result<Score, VerifyError> {
        panic!("boom");
    }
}

/// Blocks until the test lets it go: an unbounded user verifier.
struct Blocks(Mutex<mpsc::Receiver<()>>);

impl Verifier for Blocks {
    fn verify(&self, _: &Sample<'_>) -> Result<Score, VerifyError> {
        let _ = self.0.lock().unwrap().recv();
        Ok(Score::reward(1.0, "released"))
    }
}

struct Counts(Arc<AtomicUsize>);

impl Verifier for Counts {
    fn verify(&self, _: &Sample<'_>) -> Result<Score, VerifyError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(Score::reward(5.0, "counted"))
    }
}

#[test]
fn weighted_sum_keeps_every_member_and_a_panic_stays_in_its_sample() {
    let set = VerifierSet::new(vec![
        (Member::new("echo", Echo), 2.0),
        (Member::new("panics", Panics), 1.0),
    ])
    .unwrap();
    let fields = Map::new();
    let evaluation = set.evaluate(&Sample::new("", "0.25", &fields));
    assert_eq!(
        evaluation.reward,
        Err(VerifyError::Member {
            member: "panics".into(),
            source: Box::new(VerifyError::Panicked("boom".into())),
        })
    );
    assert_eq!(
        evaluation.correct, None,
        "an unscorable sample has no correctness"
    );
    assert_eq!(evaluation.members[0].outcome.as_ref().unwrap().reward, 0.25);

    let json = evaluation.to_json();
    assert_eq!(json["reward"], json!(null));
    assert_eq!(json["verifiers"]["echo"]["reward"], json!(0.25));
    assert_eq!(
        json["verifiers"]["panics"]["unscorable"],
        json!("verifier panicked: boom")
    );
}

#[test]
fn batch_scoring_keeps_input_order() {
    let set = VerifierSet::new(vec![(Member::new("echo", Echo), 1.0)]).unwrap();
    let fields = Map::new();
    let texts: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    let samples: Vec<Sample> = texts.iter().map(|t| Sample::new("", t, &fields)).collect();
    let rewards: Vec<f32> = set
        .evaluate_batch(&samples)
        .into_iter()
        .map(|e| e.reward.unwrap())
        .collect();
    let expected: Vec<f32> = (0..1000).map(|i| i as f32).collect();
    assert_eq!(rewards, expected);
}

#[test]
fn an_unbounded_verifier_is_abandoned_after_its_budget() {
    let (release, wait) = mpsc::channel();
    let set = VerifierSet::new(vec![
        (Member::new("echo", Echo), 1.0),
        (Member::new("slow", Blocks(Mutex::new(wait))), 1.0),
    ])
    .unwrap()
    .with_time_budget(Some(Duration::from_millis(100)));
    let fields = Map::new();
    let evaluation = set.evaluate(&Sample::new("", "1", &fields));
    assert_eq!(
        evaluation.members[1].outcome,
        Err(VerifyError::Timeout(Duration::from_millis(100)))
    );
    assert_eq!(evaluation.members[0].outcome.as_ref().unwrap().reward, 1.0);
    release.send(()).unwrap();
}

#[test]
fn a_non_finite_reward_is_unscorable() {
    let set = VerifierSet::new(vec![(Member::new("echo", Echo), 1.0)]).unwrap();
    let fields = Map::new();
    for text in ["NaN", "inf"] {
        let error = set
            .evaluate(&Sample::new("", text, &fields))
            .reward
            .unwrap_err();
        assert!(error.to_string().contains("non-finite"), "{error}");
    }
}

#[test]
fn gate_runs_then_only_when_open() {
    let runs = Arc::new(AtomicUsize::new(0));
    let gate = Gate::new(
        Member::new("if", Echo),
        Member::new("then", Counts(Arc::clone(&runs))),
    )
    .unwrap();
    let fields = Map::new();
    let closed = gate.verify(&Sample::new("", "0.5", &fields)).unwrap();
    assert_eq!((closed.reward, closed.correct), (0.0, Some(false)));
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    let open = gate.verify(&Sample::new("", "1", &fields)).unwrap();
    assert_eq!(open.reward, 5.0);
    assert_eq!(open.members.len(), 2);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(
        gate.verify(&Sample::new("", "x", &fields)).is_err(),
        "unscorable condition"
    );
}

#[test]
fn max_takes_the_best_member() {
    let runs = Arc::new(AtomicUsize::new(0));
    let max = Max::new(vec![
        Member::new("echo", Echo),
        Member::new("five", Counts(runs)),
    ])
    .unwrap();
    let fields = Map::new();
    let score = max.verify(&Sample::new("", "7", &fields)).unwrap();
    assert_eq!((score.reward, score.correct), (7.0, Some(true)));
    assert_eq!(
        max.verify(&Sample::new("", "2", &fields)).unwrap().reward,
        5.0
    );
    assert!(Max::new(vec![]).is_err());
}
