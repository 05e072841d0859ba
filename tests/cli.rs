//! The `grpo` binary end to end: `grpo score`, `grpo sample`, `grpo data`.

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

/// `grpo` that must succeed; its stderr is the failure message.
fn grpo_ok(args: &[&str], stdin: &str) -> Output {
    let output = grpo(args, stdin);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
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
    let output = grpo_ok(
        &["score", "--verifiers", config.to_str().unwrap(), "-"],
        &input,
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
    let output = grpo_ok(&args, "");
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

#[test]
fn data_make_writes_a_deterministic_split() {
    let args = [
        "data",
        "make",
        "countdown",
        "--split",
        "ood_length",
        "-n",
        "20",
        "--seed",
        "3",
    ];
    let output = grpo_ok(&args, "");
    let text = String::from_utf8(output.stdout).unwrap();
    let rows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 20);
    assert!(
        rows.iter()
            .all(|r| r["split"] == "ood_length" && r["numbers"].as_array().unwrap().len() == 5)
    );
    assert_eq!(String::from_utf8(grpo(&args, "").stdout).unwrap(), text);

    // Settings from a TOML file; an unknown key is named.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("task.toml");
    std::fs::write(&config, "max_digits = 3\nood_digits = 4\n").unwrap();
    let out = dir.path().join("rows.jsonl");
    grpo_ok(
        &[
            "data",
            "make",
            "arithmetic",
            "--split",
            "ood_length",
            "-n",
            "5",
            "--config",
            config.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        "",
    );
    let written = std::fs::read_to_string(&out).unwrap();
    assert_eq!(written.lines().count(), 5);
    assert!(written.lines().all(|l| {
        let row: Value = serde_json::from_str(l).unwrap();
        row["expression"]
            .as_str()
            .unwrap()
            .split(['+', '-', '*'])
            .any(|n| n.len() == 4)
    }));
    std::fs::write(&config, "max_digit = 3\n").unwrap();
    let output = grpo(
        &[
            "data",
            "make",
            "arithmetic",
            "--config",
            config.to_str().unwrap(),
        ],
        "",
    );
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("task.toml") && error.contains("max_digit"),
        "{error}"
    );
    let output = grpo(&["data", "make", "arithmetic", "--split", "validation"], "");
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown split `validation`"));
}

#[test]
fn data_dedup_keeps_first_occurrences_and_names_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let long = "A farmer has 17 cows and buys 5 more every week for a whole year. How many cows does the farmer have at the end of the year?";
    let rows = [
        serde_json::json!({"prompt": long, "answer": "277"}),
        serde_json::json!({"prompt": "What is 2+2?"}),
        serde_json::json!({"prompt": long.to_uppercase().replace(' ', "  ")}),
        serde_json::json!({"prompt": long.replace("whole", "full")}),
        serde_json::json!({"prompt": "What is 2*2?"}),
        // A conversation is compared by its messages' text: this one asks what row 2 asks.
        serde_json::json!({"prompt": [{"role": "user", "content": "What is  2+2?"}]}),
    ];
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&input, &text).unwrap();
    let (out, removed) = (
        dir.path().join("out.jsonl"),
        dir.path().join("removed.jsonl"),
    );
    let output = grpo(
        &[
            "data",
            "dedup",
            input.to_str().unwrap(),
            out.to_str().unwrap(),
            "--removed",
            removed.to_str().unwrap(),
        ],
        "",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("6 rows: 3 kept, 2 exact duplicates, 1 near duplicates"),
        "{stderr}"
    );
    let kept: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(kept, [rows[0].clone(), rows[1].clone(), rows[4].clone()]);
    let gone: Vec<Value> = std::fs::read_to_string(&removed)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(gone.len(), 3);
    assert_eq!(gone[0]["duplicate_of"], 1);
    assert_eq!(gone[1]["duplicate_of"], 1);
    assert!(gone[1]["similarity"].as_f64().unwrap() >= 0.8);
    assert_eq!(
        (&gone[2]["duplicate_of"], &gone[2]["prompt"]),
        (&2.into(), &rows[5]["prompt"])
    );

    // A malformed line stops the run with its line number, and the output is not written.
    std::fs::write(&input, format!("{text}{{\"prompt\": 1}}\n")).unwrap();
    std::fs::remove_file(&out).unwrap();
    let output = grpo(
        &[
            "data",
            "dedup",
            input.to_str().unwrap(),
            out.to_str().unwrap(),
        ],
        "",
    );
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("in.jsonl:7: field `prompt` must be a string")
    );
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "a temporary file was left behind"
    );
}

const TINY_RUN: &str = r#"
name = "tiny"
seed = 1
sft_control = true
[model]
hidden_size = 16
num_hidden_layers = 1
num_attention_heads = 2
intermediate_size = 32
[task]
kind = "arithmetic"
train_rows = 200
eval_rows = 10
splits = ["test", "ood_length"]
[task.settings]
max_digits = 1
ood_digits = 2
[sft]
batch_size = 8
max_steps = 3
[grpo]
prompts_per_step = 2
num_generations = 2
max_steps = 2
max_completion_length = 3
eval_steps = 1
[[verifiers]]
kind = "arithmetic"
extract = "whole"
"#;

/// Writes `dir/judge.py`, a plugin verifier passing a sample when the Python expression
/// `verdict` (of the request `r`) holds, and `dir/V.toml` naming it.
fn write_judge(dir: &std::path::Path, verdict: &str) {
    let judge = dir.join("judge.py");
    std::fs::write(
        &judge,
        format!(
            "import json, sys\n\
             for line in sys.stdin:\n\
             \x20   r = json.loads(line)\n\
             \x20   ok = bool({verdict})\n\
             \x20   print(json.dumps({{'reward': float(ok), 'correct': ok}}), flush=True)\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("V.toml"),
        format!(
            "[[verifiers]]\nkind = \"external\"\nname = \"judge\"\ncommand = [\"python3\", {:?}]\n",
            judge.display().to_string()
        ),
    )
    .unwrap();
}

/// `grpo data filter` keeps the prompts solved sometimes: with a plugin verifier that passes
/// every completion of an `always` row, none of a `never` row and about half of a `coin` row's
/// (by the parity of its bytes), the kept rows are exactly the coin rows, in order, each with
/// a pass rate strictly between 0 and 1; the dropped ones carry 1 and 0; the draws are seeded.
#[test]
fn data_filter_keeps_the_prompts_solved_sometimes() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    write_judge(
        dir.path(),
        "r['fields']['mode'] == 'always' or (r['fields']['mode'] == 'coin' \
         and sum(r['completion'].encode()) % 2 == 0)",
    );
    let modes = ["coin", "always", "never", "coin", "never", "coin", "always"];
    let rows: String = modes
        .iter()
        .enumerate()
        .map(|(i, m)| format!("{{\"prompt\": \"Problem {i}:\", \"mode\": \"{m}\"}}\n"))
        .collect();
    std::fs::write(path("rows.jsonl"), &rows).unwrap();
    let model = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/policy/tests/fixtures/qwen2-tied"
    );
    let filter = |output: &str| {
        let (input, verifiers, output, removed) = (
            path("rows.jsonl"),
            path("V.toml"),
            path(output),
            path(&format!("removed-{output}")),
        );
        grpo_ok(
            &[
                "data",
                "filter",
                &input,
                &output,
                "--model",
                model,
                "--verifiers",
                &verifiers,
                "-k",
                "16",
                "--max-new-tokens",
                "4",
                "--seed",
                "3",
                "--removed",
                &removed,
            ],
            "",
        );
        let read = |p: &str| -> Vec<Value> {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        };
        (read(&output), read(&removed))
    };
    let (kept, removed) = filter("kept.jsonl");
    let prompts = |rows: &[Value]| -> Vec<String> {
        rows.iter()
            .map(|r| r["prompt"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(prompts(&kept), ["Problem 0:", "Problem 3:", "Problem 5:"]);
    for row in &kept {
        let rate = row["pass_rate"].as_f64().unwrap();
        assert!(
            rate > 0.0 && rate < 1.0 && (rate * 16.0).fract() == 0.0,
            "{row}"
        );
    }
    assert_eq!(
        prompts(&removed),
        ["Problem 1:", "Problem 2:", "Problem 4:", "Problem 6:"]
    );
    for row in &removed {
        let expected = if row["mode"] == "always" { 1.0 } else { 0.0 };
        assert_eq!(row["pass_rate"].as_f64(), Some(expected), "{row}");
    }
    // Seeded: the same command gives the same rates.
    assert_eq!(filter("again.jsonl").0, kept);

    // Bad input: named.
    let bad_band = grpo(
        &[
            "data",
            "filter",
            &path("rows.jsonl"),
            &path("x.jsonl"),
            "--model",
            model,
            "--verifiers",
            &path("V.toml"),
            "--min-pass",
            "0.9",
            "--max-pass",
            "0.1",
        ],
        "",
    );
    let message = String::from_utf8_lossy(&bad_band.stderr);
    assert!(
        !bad_band.status.success() && message.contains("--min-pass"),
        "{message}"
    );
    std::fs::write(
        path("bad.jsonl"),
        "{\"prompt\": \"a\"}\n{\"question\": \"b\"}\n",
    )
    .unwrap();
    let no_prompt = grpo(
        &[
            "data",
            "filter",
            &path("bad.jsonl"),
            &path("x.jsonl"),
            "--model",
            model,
            "--verifiers",
            &path("V.toml"),
        ],
        "",
    );
    let message = String::from_utf8_lossy(&no_prompt.stderr);
    assert!(
        !no_prompt.status.success() && message.contains("bad.jsonl:2: missing field `prompt`"),
        "{message}"
    );
    assert!(!dir.path().join("x.jsonl").exists());
}

/// A conversational row is prompted as the model's chat template renders it, and written back
/// as it was read; a model without a template is an error naming the file and line.
#[test]
fn data_filter_renders_conversations_with_the_model_s_chat_template() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    // The judge passes a completion exactly when the prompt it sees is the rendered one.
    write_judge(
        dir.path(),
        "r['prompt'] == '<|user|>Problem 1:\\n<|assistant|>'",
    );
    let row = r#"{"prompt": [{"role": "user", "content": "Problem 1:"}], "answer": "3"}"#;
    std::fs::write(path("rows.jsonl"), format!("{row}\n")).unwrap();
    // The fixture model with a chat template beside it.
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/policy/tests/fixtures/qwen2-tied"
    );
    let model = dir.path().join("model");
    std::fs::create_dir(&model).unwrap();
    for file in std::fs::read_dir(fixture).unwrap() {
        let file = file.unwrap().path();
        std::fs::copy(&file, model.join(file.file_name().unwrap())).unwrap();
    }
    std::fs::write(
        model.join("tokenizer_config.json"),
        r#"{"chat_template": "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"}"#,
    )
    .unwrap();
    let filter = |model: &str| {
        grpo(
            &[
                "data",
                "filter",
                &path("rows.jsonl"),
                &path("kept.jsonl"),
                "--model",
                model,
                "--verifiers",
                &path("V.toml"),
                "-k",
                "2",
                "--max-new-tokens",
                "2",
                "--max-pass",
                "1",
            ],
            "",
        )
    };
    let output = filter(&model.display().to_string());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let kept: Value =
        serde_json::from_str(std::fs::read_to_string(path("kept.jsonl")).unwrap().trim()).unwrap();
    let mut expected: Value = serde_json::from_str(row).unwrap();
    expected["pass_rate"] = 1.0.into();
    assert_eq!(
        kept, expected,
        "rendered for the model, written back as read"
    );

    let output = filter(fixture);
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success()
            && message.contains("rows.jsonl:1: field `prompt`: a conversation")
            && message.contains("no `chat_template`"),
        "{message}"
    );
}

#[test]
fn train_eval_and_plot_run_a_tiny_recipe() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("run.toml");
    std::fs::write(&config, TINY_RUN).unwrap();
    let out = dir.path().join("run");
    let output = grpo_ok(
        &[
            "train",
            "--config",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        "",
    );
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table.contains("| split | warmup | grpo | sft_control |"),
        "{table}"
    );
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    for arm in ["warmup", "grpo", "sft_control"] {
        for split in ["test", "ood_length"] {
            let accuracy = results["arms"][arm][split].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&accuracy), "{arm} {split} {accuracy}");
        }
    }
    for file in [
        "results.md",
        "reward.png",
        "accuracy.png",
        "grpo/metrics.jsonl",
        "grpo/completions.jsonl",
        "warmup_model/model.bpk",
    ] {
        assert!(out.join(file).exists(), "{file} missing");
    }
    assert_eq!(
        std::fs::read_to_string(out.join("grpo/metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        2
    );

    // Resuming a finished run trains nothing more and gives the same table.
    grpo_ok(
        &[
            "train",
            "--config",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--resume",
        ],
        "",
    );
    assert_eq!(
        std::fs::read_to_string(out.join("grpo/metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        2
    );

    let eval = grpo_ok(
        &[
            "eval",
            "--config",
            config.to_str().unwrap(),
            "--model",
            out.join("warmup_model").to_str().unwrap(),
        ],
        "",
    );
    let accuracy: Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert_eq!(accuracy["test"], results["arms"]["warmup"]["test"]);

    let png = dir.path().join("kl.png");
    grpo_ok(
        &[
            "plot",
            out.join("grpo/metrics.jsonl").to_str().unwrap(),
            "-o",
            png.to_str().unwrap(),
            "--keys",
            "reward,entropy",
        ],
        "",
    );
    assert_eq!(&std::fs::read(&png).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
    let missing = grpo(
        &[
            "plot",
            out.join("grpo/metrics.jsonl").to_str().unwrap(),
            "-o",
            png.to_str().unwrap(),
            "--keys",
            "nope",
        ],
        "",
    );
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no line has both `step` and `nope`")
    );

    // A typo in the run file is named with its line.
    std::fs::write(&config, TINY_RUN.replace("max_steps = 2", "max_stepz = 2")).unwrap();
    let bad = grpo(&["train", "--config", config.to_str().unwrap()], "");
    let error = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && error.contains("run.toml:") && error.contains("max_stepz"),
        "{error}"
    );

    // `--set` changes keys for one run; the run directory keeps the edited file, and a key the
    // section does not have is refused as in the file.
    std::fs::write(&config, TINY_RUN).unwrap();
    let set_out = dir.path().join("set");
    let train_set = |overrides: &[&str]| {
        let mut args = vec![
            "train",
            "--config",
            config.to_str().unwrap(),
            "--out",
            set_out.to_str().unwrap(),
        ];
        for entry in overrides {
            args.extend(["--set", entry]);
        }
        grpo(&args, "")
    };
    let set = train_set(&["grpo.max_steps=1", "sft_control=false"]);
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let saved: toml::Table =
        toml::from_str(&std::fs::read_to_string(set_out.join("run.toml")).unwrap()).unwrap();
    assert_eq!(saved["grpo"]["max_steps"].as_integer(), Some(1));
    let metrics = std::fs::read_to_string(set_out.join("grpo/metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 1);
    assert!(!String::from_utf8_lossy(&set.stdout).contains("sft_control"));
    let bad = train_set(&["grpo.max_stepz=1"]);
    let error = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && error.contains("(with --set)") && error.contains("max_stepz"),
        "{error}"
    );
}

#[test]
fn merge_folds_a_peft_adapter_into_a_plain_model_with_peft_s_logits() {
    use grpo::policy::burn::tensor::{Device, Int, Tensor, TensorData};
    use grpo::policy::{CausalLm, LanguageModel};

    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/policy/tests/fixtures");
    let out = tempfile::tempdir().unwrap();
    let merged = out.path().join("merged");
    grpo_ok(
        &[
            "merge",
            "--base",
            &format!("{fixtures}/qwen2-tied"),
            "--adapter",
            &format!("{fixtures}/qwen2-tied-lora"),
            "-o",
            merged.to_str().unwrap(),
        ],
        "",
    );
    assert!(
        merged.join("tokenizer.json").exists(),
        "the tokenizer travels along"
    );
    assert!(
        !merged.join("adapter_config.json").exists(),
        "a plain model"
    );
    // peft's logits for the adapted model (crates/policy/scripts/make_lora_fixtures.py).
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{fixtures}/qwen2-tied-lora/reference.json")).unwrap(),
    )
    .unwrap();
    let device = Device::flex();
    let model = CausalLm::load(&merged, &device).unwrap();
    for case in reference["cases"].as_array().unwrap() {
        let ids: Vec<i64> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_i64().unwrap())
            .collect();
        let tokens =
            Tensor::<2, Int>::from_data(TensorData::new(ids.clone(), [1, ids.len()]), &device);
        let mut cache = model.new_cache(vec![0]);
        let logits: Vec<f32> = model
            .forward(tokens, &mut cache)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        let expected: Vec<f32> = case["logits"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| {
                row.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
            })
            .collect();
        let diff = logits
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(diff <= 1e-4, "merged vs peft logits: {diff}");
    }

    // A directory that holds no adapter is named.
    let output = grpo(
        &[
            "merge",
            "--base",
            &format!("{fixtures}/qwen2-tied"),
            "--adapter",
            &format!("{fixtures}/qwen2-tied"),
            "-o",
            out.path().join("wrong").to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("qwen2-tied/adapter_config.json"),
        "{stderr}"
    );
}
