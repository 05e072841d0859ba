//! The `grpo` binary end to end: `grpo score`.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn grpo(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_grpo"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

const VERIFIERS: &str = r#"
[[verifiers]]
kind = "arithmetic"
name = "accuracy"

[[verifiers]]
kind = "regex"
name = "format"
weight = 0.5
preset = "r1_format"
"#;

#[test]
fn score_writes_one_object_per_input_line_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("V.toml");
    std::fs::write(&config, VERIFIERS).unwrap();
    let input = [
        r#"{"prompt": "2+2?", "completion": "<think>easy</think><answer>4</answer>", "answer": "4"}"#,
        r#"{"completion": "\\boxed{5}", "answer": 4}"#,
        "{not json",
        r#"{"completion": "\\boxed{5}", "answer": "abc"}"#,
        r#"{"prompt": "no completion"}"#,
    ]
    .join("\n");
    let output = grpo(
        &["score", "--verifiers", config.to_str().unwrap(), "-"],
        &input,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["reward"], 1.5);
    assert_eq!(lines[0]["correct"], true);
    assert_eq!(lines[0]["verifiers"]["format"]["reward"], 1.0);
    assert_eq!(lines[1]["reward"], 0.0);
    assert_eq!(lines[1]["correct"], false);
    assert_eq!(lines[2]["reward"], Value::Null);
    assert!(
        lines[2]["unscorable"]
            .as_str()
            .unwrap()
            .contains("-:3: invalid JSON"),
        "{}",
        lines[2]
    );
    assert_eq!(lines[3]["reward"], Value::Null);
    assert!(
        lines[3]["unscorable"]
            .as_str()
            .unwrap()
            .contains("invalid gold answer"),
        "{}",
        lines[3]
    );
    assert_eq!(
        lines[3]["verifiers"]["format"]["reward"], 0.0,
        "members keep their own scores"
    );
    assert!(
        lines[4]["unscorable"]
            .as_str()
            .unwrap()
            .contains("-:5: missing field `completion`")
    );

    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("skipped -:3: invalid JSON"), "{stderr}");
    assert!(stderr.contains("scored 3 samples"), "{stderr}");
    assert!(stderr.contains("mean reward 0.7500"), "{stderr}");
    assert!(
        stderr.contains("accuracy 0.5000 (1 of 2), unscorable 1"),
        "{stderr}"
    );
    assert!(
        stderr.contains("skipped 2 malformed input lines"),
        "{stderr}"
    );
}

#[test]
fn a_bad_config_is_an_error_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("V.toml");
    std::fs::write(
        &config,
        "[[verifiers]]\nkind = \"arithmetic\"\n\n[[verifiers]]\nkind = \"regex\"\npatern = 'x'\n",
    )
    .unwrap();
    let output = grpo(&["score", "--verifiers", config.to_str().unwrap(), "-"], "");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("V.toml:4: verifiers[1]"), "{stderr}");
    assert!(stderr.contains("unknown field `patern`"), "{stderr}");
}

#[test]
fn sample_prints_the_greedy_continuation_as_json() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/policy/tests/fixtures/qwen2-tied"
    );
    let reference: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/reference.json")).unwrap())
            .unwrap();
    let case = &reference["cases"][0];
    let args = [
        "sample",
        "--model",
        dir,
        "--prompt",
        case["text"].as_str().unwrap(),
        "--temperature",
        "0",
        "--max-new-tokens",
        "8",
        "--num-generations",
        "2",
        "--json",
    ];
    let output = grpo(&args, "");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let completions = printed["completions"].as_array().unwrap();
    assert_eq!(completions.len(), 2);
    for completion in completions {
        let ids = completion["token_ids"].as_array().unwrap();
        assert_eq!(ids[..], case["greedy"].as_array().unwrap()[..ids.len()]);
        assert!(completion["text"].is_string());
        assert!(matches!(
            completion["finish_reason"].as_str(),
            Some("stop" | "length")
        ));
    }
}

#[test]
fn sample_names_a_model_directory_that_cannot_load() {
    let output = grpo(
        &["sample", "--model", "/nonexistent/model", "--prompt", "x"],
        "",
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("/nonexistent/model"), "{stderr}");
}
