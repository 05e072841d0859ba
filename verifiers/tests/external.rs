//! The external-process plugin: the shipped Python example, and plugins that crash, hang and
//! lie, each contained to the sample it was scoring.

use std::time::Duration;

use grpo_verifiers::external::{ExternalConfig, ExternalVerifier};
use grpo_verifiers::{Member, Sample, Verifier, VerifierSet, VerifyError};
use serde_json::{Map, Value, json};

fn plugin(script: &str, timeout_s: f64) -> ExternalVerifier {
    ExternalVerifier::new(ExternalConfig {
        command: vec!["python3".into(), script.into()],
        timeout_s,
        processes: 1,
    })
    .expect("python3 starts")
}

fn misbehaving(timeout_s: f64) -> ExternalVerifier {
    plugin(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/plugins/misbehaving.py"),
        timeout_s,
    )
}

fn row(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

/// The pid the well-behaved branch of `misbehaving.py` reports.
fn pid_of(outcome: &Result<grpo_verifiers::Score, VerifyError>) -> String {
    outcome.as_ref().expect("scored").details.clone()
}

fn alive(pid: &str) -> bool {
    // A killed process may linger as a zombie until its new parent reaps it.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

#[test]
fn shipped_python_example_scores() {
    let word_limit = plugin(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/plugins/word_limit.py"
        ),
        10.0,
    );
    let fields = row(json!({"max_words": 4}));
    let short = word_limit
        .verify(&Sample::new("p", "one two three", &fields))
        .unwrap();
    assert_eq!((short.reward, short.correct), (1.0, Some(true)));
    let long = word_limit
        .verify(&Sample::new("p", "a b c d e f", &fields))
        .unwrap();
    assert_eq!((long.reward, long.correct), (0.5, Some(false)));
    let bad = row(json!({"max_words": "four"}));
    let refused = word_limit.verify(&Sample::new("p", "x", &bad)).unwrap_err();
    assert!(refused.to_string().contains("max_words"), "{refused}");
}

#[test]
fn crash_mid_batch_restarts_and_only_the_crashing_sample_is_unscorable() {
    let set = VerifierSet::new(vec![(Member::new("plugin", misbehaving(10.0)), 1.0)]).unwrap();
    let fields = Map::new();
    let completions = ["ok", "ok", "crash", "ok", "crash", "ok"];
    let samples: Vec<Sample> = completions
        .iter()
        .map(|c| Sample::new("p", c, &fields))
        .collect();
    let evaluations = set.evaluate_batch(&samples);
    for (completion, evaluation) in completions.iter().zip(&evaluations) {
        match *completion {
            "crash" => {
                let error = evaluation.reward.as_ref().unwrap_err().to_string();
                assert!(error.contains("crashed"), "{error}");
                assert!(
                    error.contains("about to crash on purpose"),
                    "stderr quoted: {error}"
                );
                assert_eq!(evaluation.correct, None);
            }
            _ => assert_eq!(evaluation.reward, Ok(1.0)),
        }
    }
}

#[test]
fn a_hanging_plugin_times_out_and_its_whole_process_group_dies() {
    let verifier = misbehaving(0.5);
    let fields = Map::new();
    let before = pid_of(&verifier.verify(&Sample::new("p", "ok", &fields)));

    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pids");
    let hang_fields = row(json!({"pid_file": pid_file}));
    let outcome = verifier.verify(&Sample::new("p", "hang", &hang_fields));
    assert_eq!(
        outcome,
        Err(VerifyError::Timeout(Duration::from_millis(500)))
    );

    let pids = std::fs::read_to_string(&pid_file).unwrap();
    let (plugin_pid, grandchild_pid) = pids.split_once(' ').unwrap();
    assert_eq!(plugin_pid, before);
    // Killing is synchronous (SIGKILL to the group, then reaped); allow the grandchild's new
    // parent a moment to reap it.
    let gone = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        !alive(plugin_pid) && !alive(grandchild_pid)
    });
    assert!(
        gone,
        "plugin {plugin_pid} or its child {grandchild_pid} survived the timeout"
    );

    let after = pid_of(&verifier.verify(&Sample::new("p", "ok", &fields)));
    assert_ne!(after, before, "a fresh plugin serves the next sample");
}

#[test]
fn malformed_replies_are_unscorable_and_restart_the_plugin() {
    let verifier = misbehaving(10.0);
    let fields = Map::new();
    let before = pid_of(&verifier.verify(&Sample::new("p", "ok", &fields)));
    for lie in ["garbage", "nan"] {
        let error = verifier
            .verify(&Sample::new("p", lie, &fields))
            .unwrap_err()
            .to_string();
        assert!(error.contains("malformed reply"), "{error}");
    }
    let after = pid_of(&verifier.verify(&Sample::new("p", "ok", &fields)));
    assert_ne!(after, before);
}

#[test]
fn an_unscorable_reply_keeps_the_plugin() {
    let verifier = misbehaving(10.0);
    let fields = Map::new();
    let before = pid_of(&verifier.verify(&Sample::new("p", "ok", &fields)));
    let error = verifier
        .verify(&Sample::new("p", "refuse", &fields))
        .unwrap_err()
        .to_string();
    assert!(error.contains("no gold for this one"), "{error}");
    let after = pid_of(&verifier.verify(&Sample::new("p", "ok", &fields)));
    assert_eq!(after, before);
}

#[test]
fn a_command_that_cannot_start_is_a_config_error() {
    let error = ExternalVerifier::new(ExternalConfig {
        command: vec!["/nonexistent/plugin".into()],
        timeout_s: 1.0,
        processes: 1,
    })
    .err()
    .expect("refused");
    assert!(error.to_string().contains("/nonexistent/plugin"), "{error}");
}
