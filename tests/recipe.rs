//! The facade end to end: a miniature of the math-RL pipeline (`grpo::recipe`, the code behind
//! `grpo train` and the examples) in which GRPO visibly raises the reward within seconds.

#[path = "support/real_data.rs"]
mod support;

use grpo::policy::burn::tensor::Device;
use grpo::recipe::{Run, TaskConfig};
use grpo::trainer::read_metrics;

/// From scratch, no warm-up: the reward is "the answer is a digit" (the format half of a math
/// reward), which a fresh byte-level model meets by chance one time in 26.
const MINIATURE: &str = r#"
name = "miniature"
seed = 3
[model]
hidden_size = 32
num_hidden_layers = 1
num_attention_heads = 2
intermediate_size = 64
[task]
kind = "arithmetic"
train_rows = 500
eval_rows = 20
splits = ["test", "ood_length"]
[grpo]
prompts_per_step = 4
num_generations = 8
micro_batch_size = 32
max_steps = 40
learning_rate = 2e-2
lr_scheduler_type = "constant"
max_completion_length = 1
eval_steps = 20
[[verifiers]]
kind = "regex"
name = "digit"
pattern = '[0-9]'
mode = "full"
"#;

#[test]
fn a_miniature_math_rl_run_raises_its_reward() {
    let dir = tempfile::tempdir().unwrap();
    let run = Run::from_str(MINIATURE, "miniature.toml").unwrap();
    let results = run.execute(dir.path(), &Device::flex(), false).unwrap();
    let metrics = read_metrics(&dir.path().join("grpo/metrics.jsonl")).unwrap();
    assert_eq!(metrics.len(), 40);
    let mean = |steps: &[grpo::trainer::Metrics]| {
        steps.iter().map(|m| m["reward"]).sum::<f64>() / steps.len() as f64
    };
    let (first, last) = (mean(&metrics[..5]), mean(&metrics[35..]));
    eprintln!("reward {first:.2} → {last:.2}; {:.1} s", results.wall_s);
    assert!(
        first < 0.25,
        "the fresh model should be near chance (1/26), got {first}"
    );
    assert!(
        last >= 0.8,
        "GRPO should have taught the format, got {last}"
    );
    // Evaluated at steps 20 and 40, and every arm on every split.
    assert!(
        metrics[19].contains_key("eval/test/pass@1")
            && metrics[39].contains_key("eval/ood_length/pass@1")
    );
    assert_eq!(results.arms["grpo"].len(), 2);
    for file in [
        "results.json",
        "results.md",
        "reward.png",
        "accuracy.png",
        "grpo/completions.jsonl",
    ] {
        assert!(dir.path().join(file).exists(), "{file}");
    }
}

/// A run file's `[environment]`: the warm-up plays its targets through it, GRPO and every arm's
/// evaluation run episodes through it, and its metrics reach `metrics.jsonl` and the charts;
/// `no_environment_control` runs the same recipe without it. A tool that does not exist, a
/// control with nothing to do without, are errors naming the line.
#[test]
fn a_run_file_environment_drives_the_rollouts() {
    let call = r#"<tool_call>{\"name\": \"calculator\", \"arguments\": {\"expression\": \"{expression}\"}}</tool_call>"#;
    let text = MINIATURE
        .replace("seed = 3\n", "seed = 3\nno_environment_control = true\n")
        .replace("max_steps = 40", "max_steps = 2")
        .replace("max_completion_length = 1", "max_completion_length = 6")
        + "[environment]\nkind = \"tool_calling\"\ntools = [\"calculator\"]\n"
        + &format!(
            "[sft]\nbatch_size = 4\nmax_steps = 2\ntarget_mix = [\n  \
             {{ template = \"{{answer}}\", weight = 1 }},\n  \
             {{ template = \"{call}{{answer}}\", weight = 1 }},\n]\n"
        );
    let dir = tempfile::tempdir().unwrap();
    let run = Run::from_str(&text, "tools.toml").unwrap();
    assert!(run.environment.is_some());
    let results = run.execute(dir.path(), &Device::flex(), false).unwrap();
    let metrics = read_metrics(&dir.path().join("grpo/metrics.jsonl")).unwrap();
    assert_eq!(metrics.len(), 2);
    for key in [
        "tools/call_frequency",
        "tools/failure_frequency",
        "episodes/mean_turns",
    ] {
        assert!(metrics[1].contains_key(key), "{key}");
    }
    // The control: the same steps without the tool, its own directory, no tool metrics.
    let control = read_metrics(&dir.path().join("no_env/grpo/metrics.jsonl")).unwrap();
    assert_eq!(control.len(), 2);
    assert!(!control[1].contains_key("tools/call_frequency"));
    let arms: Vec<&str> = results.arms.keys().map(|k| k.as_str()).collect();
    assert_eq!(arms, ["grpo", "no_env_grpo", "no_env_warmup", "warmup"]);
    let with_calls: Vec<&str> = results.tool_calls.keys().map(|k| k.as_str()).collect();
    assert_eq!(with_calls, ["grpo", "warmup"]);
    assert_eq!(results.tool_calls["grpo"].len(), 2);
    assert!(results.markdown().contains("Tool calls per episode"));
    for file in [
        "tools.png",
        "tool_calls.png",
        "accuracy.png",
        "no_env/accuracy.png",
        "no_env/warmup_model/model.bpk",
    ] {
        assert!(dir.path().join(file).exists(), "{file}");
    }
    assert!(!dir.path().join("no_env/tools.png").exists());

    let line = |key: &str| text.lines().position(|l| l.starts_with(key)).unwrap() + 1;
    let error = |text: &str| Run::from_str(text, "tools.toml").err().unwrap().to_string();
    let shell = error(&text.replace("\"calculator\"]", "\"shell\"]"));
    assert!(
        shell.starts_with(&format!(
            "tools.toml:{}: [environment]",
            line("[environment]")
        )) && shell.contains("`shell`, which is not a built-in tool (calculator, python)"),
        "{shell}"
    );
    let at = format!(
        "tools.toml:{}: no_environment_control",
        line("no_environment_control")
    );
    let alone = error(text.split("[environment]").next().unwrap());
    assert!(
        alone.starts_with(&at) && alone.contains("needs an [environment]"),
        "{alone}"
    );
    let all_call = error(&text.replace(
        "template = \"{answer}\"",
        "template = \"<tool_call></tool_call>{answer}\"",
    ));
    assert!(
        all_call.starts_with(&at)
            && all_call.contains("every warm-up target calls the environment"),
        "{all_call}"
    );
}

/// The GSM8K example's recipe, end to end for two steps on the tiny Hugging Face fixture model
/// (a plumbing check: real data, a `tokenizer.json` tokenizer, the chat template, LoRA with the
/// base as the KL reference, checkpoints, the final adapter).
#[test]
fn the_gsm8k_recipe_runs_end_to_end_on_a_tiny_hf_model() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let (Some(train), Some(test)) = (
        support::real_data("gsm8k/train.jsonl"),
        support::real_data("gsm8k/test.jsonl"),
    ) else {
        return;
    };
    let mut run = Run::from_str(
        include_str!("../examples/configs/gsm8k.toml"),
        "examples/configs/gsm8k.toml",
    )
    .unwrap();
    // The fixture is a base model without a chat template; the recipe's instruct model has
    // one, so the copy gets the Qwen2-style template of the chat-template fixtures.
    let model_dir = tempfile::tempdir().unwrap();
    let fixture = root.join("crates/policy/tests/fixtures/llama-tied");
    for file in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(fixture.join(file), model_dir.path().join(file)).unwrap();
    }
    let templates: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("crates/policy/tests/fixtures/chat_templates.json"))
            .unwrap(),
    )
    .unwrap();
    let qwen = &templates["templates"][0];
    let tokenizer_config = serde_json::json!({
        "chat_template": qwen["chat_template"],
        "bos_token": qwen["bos_token"],
        "eos_token": qwen["eos_token"],
    });
    std::fs::write(
        model_dir.path().join("tokenizer_config.json"),
        tokenizer_config.to_string(),
    )
    .unwrap();
    run.config.model.dir = Some(model_dir.path().to_owned());
    assert!(run.config.model.chat_template && run.config.lora.is_some());
    let TaskConfig::Gsm8k(files) = &mut run.config.task else {
        panic!("the GSM8K recipe reads GSM8K: {:?}", run.config.task)
    };
    files.train_file = train;
    files.test_file = Some(test);
    files.train_rows = 32;
    files.eval_rows = 4;
    run.config.grpo.max_steps = 2;
    run.config.grpo.prompts_per_step = 2;
    run.config.grpo.num_generations = 2;
    run.config.grpo.max_completion_length = 8;
    run.config.grpo.save_steps = Some(1);
    let dir = tempfile::tempdir().unwrap();
    let results = run.execute(dir.path(), &Device::flex(), false).unwrap();
    let metrics = read_metrics(&dir.path().join("grpo/metrics.jsonl")).unwrap();
    assert_eq!(metrics.len(), 2);
    assert!(
        metrics
            .iter()
            .all(|m| m["kl"].is_finite() && m["step_skipped"] == 0.0)
    );
    // The recipe's final evaluation of the GRPO arm is the trainer's last one, of the same
    // model on the same rows.
    assert_eq!(
        results.arms["grpo"]["test"], metrics[1]["eval/test/pass@1"],
        "{:?}",
        results.arms
    );
    // The rendered prompt went to the model.
    let completions = std::fs::read_to_string(dir.path().join("grpo/completions.jsonl")).unwrap();
    assert!(completions.contains("<|im_start|>user"), "{completions}");
    // LoRA: the checkpoint holds the adapter and no reference copy; the run ends with the
    // adapter alone, which loads back onto the model it adapts.
    let checkpoint = dir.path().join("grpo/checkpoint-000002");
    assert!(checkpoint.join("adapter_model.safetensors").exists());
    assert!(!checkpoint.join("reference").exists());
    let device = Device::flex();
    let adapted = grpo::policy::CausalLm::load(model_dir.path(), &device)
        .unwrap()
        .load_adapter(&dir.path().join("grpo_adapter"))
        .unwrap();
    assert_eq!(
        adapted.adapters().len(),
        2 * 7,
        "all-linear over both layers"
    );
}

/// Each example recipe teaches in its warm-up exactly what its verifiers reward: the SFT target
/// of a row, scored as a completion, is correct — on the training rows and on every evaluated
/// split. A warm-up in one format and a verifier reading another (worked steps scored with
/// `extract = "whole"`) would leave GRPO nothing to reinforce, silently.
#[test]
fn every_example_warm_up_writes_what_its_verifiers_reward() {
    let recipes = [
        (
            include_str!("../examples/configs/math_rl.toml"),
            "math_rl.toml",
        ),
        (
            include_str!("../examples/configs/countdown.toml"),
            "countdown.toml",
        ),
        (
            include_str!("../examples/configs/tool_math.toml"),
            "tool_math.toml",
        ),
        (
            include_str!("../examples/configs/code_rl.toml"),
            "code_rl.toml",
        ),
    ];
    for (text, origin) in recipes {
        let mut run = Run::from_str(text, origin).unwrap();
        match &mut run.config.task {
            TaskConfig::Arithmetic(g) => (g.train_rows, g.eval_rows) = (20, 10),
            TaskConfig::Countdown(g) => (g.train_rows, g.eval_rows) = (20, 10),
            TaskConfig::Functions(g) => (g.train_rows, g.eval_rows) = (20, 10),
            other => panic!("{origin}: not a procedural task: {other:?}"),
        }
        let (train, sets) = run.data().unwrap();
        let sft = run.config.sft.clone().unwrap();
        let rows = train.iter().chain(sets.iter().flat_map(|(_, rows)| rows));
        for row in rows {
            let target = sft.target(row).unwrap();
            let sample = grpo::verifiers::Sample::new(row.prompt(), &target, row.fields());
            let evaluation = run.verifiers.evaluate(&sample);
            assert_eq!(
                evaluation.correct,
                Some(true),
                "{origin}: {target:?} for {row:?}: {:?}",
                evaluation.members
            );
        }
    }
}

/// Two seeds of the miniature: each seed a whole run in its own directory, one summary over
/// them, and a resumed sweep reads finished seeds back instead of running them again.
#[test]
fn a_seed_sweep_runs_each_seed_and_summarizes_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = Run::from_str(MINIATURE, "miniature.toml").unwrap();
    run.config.grpo.max_steps = 3;
    run.config.grpo.eval_steps = None;
    let summary = run
        .execute_seeds(dir.path(), &Device::flex(), 2, false)
        .unwrap();
    assert_eq!(summary.seeds, [3, 4]);
    assert_eq!(summary.runs.len(), 2);
    for k in 0..2 {
        let seed_dir = dir.path().join(format!("seed-{k}"));
        assert!(seed_dir.join("results.json").exists());
        let saved = std::fs::read_to_string(seed_dir.join("run.toml")).unwrap();
        assert_eq!(
            saved.contains("replicate 1 of a seed sweep"),
            k == 1,
            "{saved}"
        );
    }
    // Each arm × split is the mean of the two seeds' figures.
    let grpo = &summary.arms["grpo"]["test"];
    assert_eq!(grpo.n, 2);
    let values: Vec<f64> = summary
        .runs
        .iter()
        .map(|r| r.arms["grpo"]["test"])
        .collect();
    assert!((grpo.mean - (values[0] + values[1]) / 2.0).abs() < 1e-12);
    let table = std::fs::read_to_string(dir.path().join("results.md")).unwrap();
    assert!(table.contains("over 2 seeds (3, 4)"), "{table}");
    // Resumed: finished seeds are read back, not run again (a marked wall time comes back).
    let saved = dir.path().join("seed-1/results.json");
    let mut marked: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    marked["wall_s"] = serde_json::json!(12345.0);
    std::fs::write(&saved, marked.to_string()).unwrap();
    let again = run
        .execute_seeds(dir.path(), &Device::flex(), 2, true)
        .unwrap();
    assert_eq!(again.runs[1].wall_s, 12345.0);
    assert_eq!(again.runs[1].arms, summary.runs[1].arms);
}

/// `labelled_rows`: the warm-up and the SFT control learn from the labelled rows alone — the
/// rows past them carry no worked target, which SFT refuses — while GRPO's prompts are every
/// row, since it needs only the verifier.
#[test]
fn sft_learns_the_labelled_rows_and_grpo_prompts_are_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let rows = dir.path().join("rows.jsonl");
    let mut lines = Vec::new();
    for (i, (a, b)) in [
        (1, 1),
        (2, 3),
        (4, 4),
        (5, 2),
        (3, 6),
        (7, 1),
        (2, 2),
        (6, 3),
    ]
    .iter()
    .enumerate()
    {
        let mut row =
            serde_json::json!({"prompt": format!("{a}+{b}="), "answer": (a + b).to_string()});
        if i < 2 {
            row["steps"] = format!("{a}+{b}={}", a + b).into();
        }
        lines.push(row.to_string());
    }
    std::fs::write(&rows, lines.join("\n")).unwrap();
    let text = |labelled: &str| {
        format!(
            "name = \"labels\"\nseed = 3\nsft_control = true\n\
             [model]\nhidden_size = 16\nnum_hidden_layers = 1\nnum_attention_heads = 2\n\
             intermediate_size = 32\n\
             [task]\nkind = \"jsonl\"\ntrain_file = {rows:?}\n{labelled}\n\
             [sft]\nbatch_size = 2\nmax_steps = 2\ntarget_field = \"steps\"\n\
             [grpo]\nprompts_per_step = 4\nnum_generations = 2\nmicro_batch_size = 8\n\
             max_steps = 2\nmax_completion_length = 2\nlog_completions = 8\n\
             [[verifiers]]\nkind = \"arithmetic\"\n"
        )
    };
    // Every row labelled (the default): SFT meets a row without `steps` and says so.
    let all = Run::from_str(&text(""), "labels.toml").unwrap();
    let error = all
        .execute(&dir.path().join("all"), &Device::flex(), false)
        .unwrap_err()
        .to_string();
    assert!(error.contains("steps"), "{error}");

    let run = Run::from_str(&text("labelled_rows = 2"), "labels.toml").unwrap();
    let out = dir.path().join("two");
    let results = run.execute(&out, &Device::flex(), false).unwrap();
    assert!(results.arms.contains_key("sft_control"));
    // No evaluation split (no `test_file`): no accuracy chart, the other charts drawn.
    assert!(!out.join("accuracy.png").exists() && out.join("reward.png").exists());
    let logged = std::fs::read_to_string(out.join("grpo/completions.jsonl")).unwrap();
    let prompts: std::collections::HashSet<String> = logged
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["prompt"].to_string())
        .collect();
    // Two steps of four prompts: one epoch of the eight rows, six of them unlabelled.
    assert_eq!(prompts.len(), 8, "{prompts:?}");

    let zero = text("labelled_rows = 0");
    let message = Run::from_str(&zero, "labels.toml")
        .err()
        .unwrap()
        .to_string();
    assert!(
        message.contains("labels.toml:") && message.contains("nonzero"),
        "{message}"
    );
}

/// A verifier whose verdict the prompt decides: `easy …` always passes, `hard …` never, and
/// `both …` passes when the completion's first byte is even — a fresh model's coin toss. So
/// each prompt's pass rate band is known before anything is sampled.
struct ByPrompt;

impl grpo::verifiers::Verifier for ByPrompt {
    fn verify(
        &self,
        sample: &grpo::verifiers::Sample<'_>,
    ) -> Result<grpo::verifiers::Score, grpo::verifiers::VerifyError> {
        let even = sample.completion.bytes().next().is_some_and(|b| b % 2 == 0);
        let correct = match sample.prompt.split(' ').next() {
            Some("easy") => true,
            Some("both") => even,
            _ => false,
        };
        Ok(grpo::verifiers::Score {
            reward: f32::from(u8::from(correct)),
            correct: Some(correct),
            details: String::new(),
            members: Vec::new(),
        })
    }

    fn is_bounded(&self) -> bool {
        true
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoSettings {}

/// `[pass_rate_filter]`: GRPO draws only the prompts the warm-up solves sometimes; what it kept
/// is in `results.json`; its sampling's token passes (each prompt prefilled once, one-token
/// completions need no decoding pass) join the control arm's budget. A band that keeps nothing,
/// or is not a band, is an error naming the section.
#[test]
fn the_pass_rate_filter_keeps_the_band_and_charges_the_control() {
    use grpo::policy::{ByteTokenizer, Tokenizer};

    let dir = tempfile::tempdir().unwrap();
    let write_rows = |name: &str, kinds: &[&str]| {
        let path = dir.path().join(name);
        let lines: Vec<String> = kinds
            .iter()
            .flat_map(|kind| (1..=4).map(move |i| format!("{kind} {i}")))
            .map(|prompt| serde_json::json!({"prompt": prompt, "answer": "1"}).to_string())
            .collect();
        std::fs::write(&path, lines.join("\n")).unwrap();
        path
    };
    let rows = write_rows("rows.jsonl", &["easy", "hard", "both"]);
    let text = |rows: &std::path::Path, band: &str| {
        format!(
            "name = \"band\"\nseed = 3\nsft_control = true\n\
             [model]\nhidden_size = 16\nnum_hidden_layers = 1\nnum_attention_heads = 2\n\
             intermediate_size = 32\n\
             [task]\nkind = \"jsonl\"\ntrain_file = {rows:?}\n\
             [sft]\nbatch_size = 2\nmax_steps = 1\ntarget_field = \"answer\"\n\
             [pass_rate_filter]\nk = 16\n{band}\n\
             [grpo]\nprompts_per_step = 2\nnum_generations = 4\nmicro_batch_size = 8\n\
             max_steps = 4\nmax_completion_length = 1\nlog_completions = 8\n\
             [[verifiers]]\nkind = \"by_prompt\"\n"
        )
    };
    let mut registry = grpo::verifiers::Registry::default();
    registry
        .register("by_prompt", |_: NoSettings| {
            Ok::<_, std::convert::Infallible>(ByPrompt)
        })
        .unwrap();
    let run = Run::from_str_with(&text(&rows, ""), "band.toml", &registry).unwrap();
    let out = dir.path().join("run");
    let results = run.execute(&out, &Device::flex(), false).unwrap();

    let found = &results.pass_rate_filter["grpo"];
    assert_eq!(
        (
            found.estimated,
            found.kept,
            found.never_solved,
            found.always_solved
        ),
        (12, 4, 4, 4),
        "{found:?}"
    );
    let logged = std::fs::read_to_string(out.join("grpo/completions.jsonl")).unwrap();
    let prompts: Vec<String> = logged
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["prompt"].to_string())
        .collect();
    assert!(
        !prompts.is_empty() && prompts.iter().all(|p| p.starts_with("\"both ")),
        "{prompts:?}"
    );
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(saved["pass_rate_filter"]["grpo"]["kept"], 4);

    let tokens = |text: &str| ByteTokenizer.encode(text).len();
    let prompt_tokens: usize = (1..=4)
        .flat_map(|i| ["easy", "hard", "both"].map(|kind| tokens(&format!("{kind} {i}"))))
        .sum();
    assert_eq!(found.token_passes, prompt_tokens);
    // The control: (GRPO's token passes + the filter's) / (3 per trained token × an SFT step's
    // tokens: 2 rows of prompt, target and EOS).
    let grpo_passes: f64 = read_metrics(&out.join("grpo/metrics.jsonl"))
        .unwrap()
        .iter()
        .map(|m| m["compute/token_passes"])
        .sum();
    let sft_step = 3.0 * 2.0 * (tokens("easy 1") + tokens("1") + 1) as f64;
    let control_steps = read_metrics(&out.join("sft_control/metrics.jsonl"))
        .unwrap()
        .len();
    let with_filter = ((grpo_passes + prompt_tokens as f64) / sft_step).round() as usize;
    assert_eq!(control_steps, with_filter);
    assert_ne!(with_filter, (grpo_passes / sft_step).round() as usize);

    let no_band = write_rows("edges.jsonl", &["easy", "hard"]);
    let run = Run::from_str_with(&text(&no_band, ""), "band.toml", &registry).unwrap();
    let error = run
        .execute(&dir.path().join("edges"), &Device::flex(), false)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("[pass_rate_filter]") && error.contains("never solved 4, always solved 4"),
        "{error}"
    );
    let reversed = text(&rows, "min_pass = 0.9\nmax_pass = 0.1");
    let error = Run::from_str_with(&reversed, "band.toml", &registry)
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.starts_with("band.toml:16: [pass_rate_filter]") && error.contains("min_pass"),
        "{error}"
    );
}

/// `sft_control_learning_rate`: the control arm trains at its own rate (the warm-up keeps its
/// own); without a control arm the key is an error naming its line.
#[test]
fn the_control_arm_trains_at_its_own_learning_rate() {
    let dir = tempfile::tempdir().unwrap();
    let rows = dir.path().join("rows.jsonl");
    let lines: Vec<String> = (1..=8)
        .map(|i| {
            serde_json::json!({"prompt": format!("{i}+1="), "answer": (i + 1).to_string()})
                .to_string()
        })
        .collect();
    std::fs::write(&rows, lines.join("\n")).unwrap();
    let text = |control: &str| {
        format!(
            "name = \"rate\"\nseed = 3\n{control}\n\
             [model]\nhidden_size = 16\nnum_hidden_layers = 1\nnum_attention_heads = 2\n\
             intermediate_size = 32\n\
             [task]\nkind = \"jsonl\"\ntrain_file = {rows:?}\n\
             [sft]\nbatch_size = 2\nmax_steps = 2\nlearning_rate = 0.01\ntarget_field = \"answer\"\n\
             [grpo]\nprompts_per_step = 2\nnum_generations = 2\nmicro_batch_size = 4\n\
             max_steps = 2\nmax_completion_length = 2\n\
             [[verifiers]]\nkind = \"arithmetic\"\n"
        )
    };
    let run = Run::from_str(
        &text("sft_control = true\nsft_control_learning_rate = 0.000123"),
        "rate.toml",
    )
    .unwrap();
    let out = dir.path().join("run");
    run.execute(&out, &Device::flex(), false).unwrap();
    let rates = |arm: &str| -> Vec<f64> {
        read_metrics(&out.join(arm).join("metrics.jsonl"))
            .unwrap()
            .iter()
            .map(|m| m["learning_rate"])
            .collect()
    };
    assert_eq!(rates("sft"), [0.01, 0.01]);
    let control = rates("sft_control");
    assert!(
        !control.is_empty() && control.iter().all(|r| (r - 0.000123).abs() < 1e-12),
        "{control:?}"
    );
    let error = Run::from_str(&text("sft_control_learning_rate = 0.0001"), "rate.toml")
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.starts_with("rate.toml:3: sft_control_learning_rate")
            && error.contains("sft_control = true"),
        "{error}"
    );
}
