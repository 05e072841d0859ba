//! The run file: its task kinds, defaults, and errors that name the file, line and key.

use grpo_data::tasks::Split;
use grpo_recipe::{Run, TaskConfig};

const HEAD: &str = "name = \"t\"\n\n[[verifiers]]\nkind = \"arithmetic\"\n\n";

fn error(text: &str) -> String {
    match Run::from_str(text, "run.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn each_kind_takes_its_own_keys() {
    let run = Run::from_str(
        &format!(
            "{HEAD}[task]\nkind = \"countdown\"\nsplits = [\"test\", \"ood_length\"]\n\
             [task.settings]\nmax_numbers = 4\n"
        ),
        "run.toml",
    )
    .unwrap();
    let TaskConfig::Countdown(task) = &run.config.task else {
        panic!("{:?}", run.config.task)
    };
    assert_eq!(task.splits, [Split::Test, Split::OodLength]);
    assert_eq!(task.settings.max_numbers, 4);
    // Defaults: 10 000 training rows, 200 per split.
    assert_eq!((task.train_rows, task.eval_rows), (10_000, 200));

    let run = Run::from_str(
        &format!("{HEAD}[task]\nkind = \"jsonl\"\ntrain_file = \"rows.jsonl\"\n"),
        "run.toml",
    )
    .unwrap();
    assert!(matches!(&run.config.task, TaskConfig::Jsonl(f) if f.test_file.is_none()));
}

#[test]
fn an_unknown_kind_lists_the_known_ones() {
    let message = error(&format!("{HEAD}[task]\nkind = \"arithmatic\"\n"));
    assert!(message.starts_with("run.toml:"), "{message}");
    for kind in ["arithmetic", "countdown", "functions", "gsm8k", "jsonl"] {
        assert!(message.contains(kind), "{message}");
    }
}

#[test]
fn a_key_of_another_kind_is_refused() {
    // Splits are the procedural tasks'; a file task evaluates its `test_file`.
    let message = error(&format!(
        "{HEAD}[task]\nkind = \"gsm8k\"\ntrain_file = \"a.jsonl\"\nsplits = [\"ood_length\"]\n"
    ));
    assert!(message.contains("unknown field `splits`"), "{message}");
    let message = error(&format!(
        "{HEAD}[task]\nkind = \"arithmetic\"\n[task.settings]\nmax_numbers = 3\n"
    ));
    assert!(message.contains("unknown field `max_numbers`"), "{message}");
    let message = error(&format!("{HEAD}[task]\nkind = \"gsm8k\"\n"));
    assert!(message.contains("missing field `train_file`"), "{message}");
    let message = error(&format!(
        "{HEAD}[task]\nkind = \"arithmetic\"\nsplits = [\"heldout\"]\n"
    ));
    assert!(message.contains("unknown variant `heldout`"), "{message}");
}

#[test]
fn an_invalid_setting_names_its_section_line_and_field() {
    let text = format!("{HEAD}[task]\nkind = \"arithmetic\"\n\n[grpo]\nnum_generations = 1\n");
    let message = error(&text);
    assert!(
        message.starts_with("run.toml:9: [grpo]") && message.contains("num_generations"),
        "{message}"
    );
    let text = format!("{HEAD}[task]\nkind = \"arithmetic\"\n[sft]\nbatch_size = 0\n");
    let message = error(&text);
    assert!(
        message.starts_with("run.toml:8: [sft]") && message.contains("batch_size"),
        "{message}"
    );
    // A type error inside a section: toml's own position.
    let text = format!("{HEAD}[task]\nkind = \"arithmetic\"\n[grpo]\nbeta = \"high\"\n");
    let message = error(&text);
    assert!(message.starts_with("run.toml:9:"), "{message}");
    // A verifier entry: its line.
    let text = "name = \"t\"\n[task]\nkind = \"arithmetic\"\n[[verifiers]]\nkind = \"nope\"\n";
    let message = error(text);
    assert!(
        message.starts_with("run.toml:4:") && message.contains("nope"),
        "{message}"
    );
}

#[test]
fn the_train_split_is_not_an_evaluation_split() {
    let run = Run::from_str(
        &format!("{HEAD}[task]\nkind = \"arithmetic\"\nsplits = [\"train\"]\n"),
        "run.toml",
    )
    .unwrap();
    let message = run.data().unwrap_err().to_string();
    assert!(
        message.contains("splits") && message.contains("train"),
        "{message}"
    );
}

#[test]
fn prompts_are_wrapped_and_evaluation_rows_are_not_training_rows() {
    let run = Run::from_str(
        &format!(
            "{HEAD}[task]\nkind = \"arithmetic\"\ntrain_rows = 50\neval_rows = 20\n\
             prompt_prefix = \"Q: \"\nprompt_suffix = \"\\nA:\"\n"
        ),
        "run.toml",
    )
    .unwrap();
    let (train, sets) = run.data().unwrap();
    assert_eq!(train.len(), 50);
    assert_eq!(sets.len(), 1);
    let (name, test) = &sets[0];
    assert_eq!((name.as_str(), test.len()), ("test", 20));
    for row in train.iter().chain(test) {
        assert!(row.prompt().starts_with("Q: ") && row.prompt().ends_with("\nA:"));
    }
    let seen: std::collections::HashSet<&str> = train.iter().map(|r| r.prompt()).collect();
    assert!(test.iter().all(|r| !seen.contains(r.prompt())));
}

#[test]
fn prompts_take_the_models_chat_template() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tokenizer_config.json"),
        r#"{"chat_template": "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"}"#,
    )
    .unwrap();
    let text = format!(
        "{HEAD}[model]\ndir = {:?}\nchat_template = true\nsystem_prompt = \"Be brief.\"\n\
         [task]\nkind = \"arithmetic\"\ntrain_rows = 3\neval_rows = 2\nprompt_suffix = \"!\"\n",
        dir.path()
    );
    let run = Run::from_str(&text, "run.toml").unwrap();
    let (train, sets) = run.data().unwrap();
    for row in train.iter().chain(&sets[0].1) {
        let prompt = row.prompt();
        assert!(
            prompt.starts_with("<|system|>Be brief.\n<|user|>")
                && prompt.ends_with("!\n<|assistant|>"),
            "{prompt:?}"
        );
    }
    // A model without a template is an error naming the setting, not a silent plain prompt.
    std::fs::write(dir.path().join("tokenizer_config.json"), "{}").unwrap();
    let message = run.data().unwrap_err().to_string();
    assert!(
        message.contains("[model] chat_template") && message.contains("no `chat_template`"),
        "{message}"
    );
}

/// The chat-template fixtures rendered by transformers (the policy crate's).
fn chat_fixtures() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../policy/tests/fixtures/chat_templates.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Makes `dir` a model directory as far as chat templates go: a `tokenizer_config.json`
/// holding `template`.
fn write_chat_template(dir: &std::path::Path, template: &serde_json::Value) {
    let config = serde_json::json!({ "chat_template": template });
    std::fs::write(dir.join("tokenizer_config.json"), config.to_string()).unwrap();
}

/// Rows whose prompt is a conversation (TRL's conversational format) are rendered with the
/// model's template, as transformers renders them (the policy crate's fixtures); text rows stay
/// text unless `chat_template = true`; what cannot work is an error naming the file and row.
#[test]
fn conversational_rows_take_the_models_chat_template() {
    let fixtures = chat_fixtures();
    let qwen = &fixtures["templates"][0];
    assert_eq!(qwen["name"], "qwen2_style");
    let case = &qwen["cases"][1]; // a system turn and a user turn, with the generation prompt
    assert_eq!(case["add_generation_prompt"], true);

    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir(&model).unwrap();
    write_chat_template(&model, &qwen["chat_template"]);
    let conversation = serde_json::json!({"prompt": case["messages"], "answer": "5.5"});
    let train = dir.path().join("train.jsonl");
    std::fs::write(
        &train,
        format!("{conversation}\n{{\"prompt\": \"2+2=\", \"answer\": \"4\"}}\n"),
    )
    .unwrap();
    let test = dir.path().join("test.jsonl");
    std::fs::write(&test, format!("{conversation}\n")).unwrap();
    let run_file = |model_section: &str, task_extra: &str| {
        format!(
            "{HEAD}{model_section}[task]\nkind = \"jsonl\"\ntrain_file = {train:?}\n\
             test_file = {test:?}\n{task_extra}"
        )
    };
    let with_model = format!("[model]\ndir = {model:?}\n");
    let run = Run::from_str(&run_file(&with_model, ""), "run.toml").unwrap();
    let (rows, sets) = run.data().unwrap();
    let rendered = case["rendered"].as_str().unwrap();
    assert_eq!(rows[0].prompt(), rendered, "as transformers renders it");
    assert_eq!(
        rows[0].get("answer").unwrap(),
        "5.5",
        "the other fields ride along"
    );
    assert_eq!(rows[1].prompt(), "2+2=", "a text prompt stays text");
    assert_eq!(sets[0].1[0].prompt(), rendered);

    // Without a template, a prefix, or a template that refuses the conversation: named errors.
    let no_model = Run::from_str(&run_file("", ""), "run.toml").unwrap();
    let message = no_model.data().unwrap_err().to_string();
    assert!(
        message.starts_with(&format!(
            "{}: row 1: the prompt is a conversation",
            train.display()
        )) && message.contains("chat template"),
        "{message}"
    );
    let prefixed = Run::from_str(
        &run_file(&with_model, "prompt_prefix = \"Q: \"\n"),
        "run.toml",
    )
    .unwrap();
    let message = prefixed.data().unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("{}: row 1:", test.display()))
            && message.contains("prompt_prefix"),
        "{message}"
    );
    std::fs::write(
        &test,
        "{\"prompt\": [{\"role\": \"tool\", \"content\": \"x\"}]}\n",
    )
    .unwrap();
    let message = run.data().unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("{}: row 1:", test.display()))
            && message.contains(fixtures["refused"].as_str().unwrap()),
        "{message}"
    );
}

/// With a tool environment, the template lists its tools as transformers lists a
/// `GRPOTrainer`'s: the calculator's spec, rendered into a Qwen2.5-style tool block, gives the
/// text transformers gave for the same spec (the fixture), for a conversation and for a text
/// prompt alike.
#[test]
fn the_environment_s_tools_are_listed_to_the_chat_template() {
    let fixtures = chat_fixtures();
    let tools_style = &fixtures["templates"][3];
    assert_eq!(tools_style["name"], "tools_style");
    let case = &tools_style["cases"][0]; // one user turn, the calculator listed
    let dir = tempfile::tempdir().unwrap();
    write_chat_template(dir.path(), &tools_style["chat_template"]);
    let rows = dir.path().join("rows.jsonl");
    let question = case["messages"][0]["content"].as_str().unwrap();
    std::fs::write(
        &rows,
        format!(
            "{}\n{}\n",
            serde_json::json!({"prompt": case["messages"]}),
            serde_json::json!({"prompt": question})
        ),
    )
    .unwrap();
    let text = format!(
        "{HEAD}[model]\ndir = {:?}\nchat_template = true\n\
         [task]\nkind = \"jsonl\"\ntrain_file = {rows:?}\n\
         [environment]\nkind = \"tool_calling\"\ntools = [\"calculator\"]\n",
        dir.path()
    );
    let (train, _) = Run::from_str(&text, "run.toml").unwrap().data().unwrap();
    for row in &train {
        assert_eq!(row.prompt(), case["rendered"].as_str().unwrap());
    }
}

#[test]
fn a_lora_section_takes_peft_s_names_and_its_errors_name_the_line() {
    let run = Run::from_str(
        &format!(
            "{HEAD}[task]\nkind = \"arithmetic\"\n[lora]\nr = 16\nlora_alpha = 32\n\
             target_modules = [\"q_proj\", \"mlp.down_proj\"]\n"
        ),
        "run.toml",
    )
    .unwrap();
    let lora = run.config.lora.expect("a [lora] section");
    assert_eq!((lora.r, lora.scale()), (16, 2.0));
    assert!(lora.targets_module("model.layers.0.mlp.down_proj"));
    assert!(!lora.targets_module("model.layers.0.self_attn.k_proj"));
    // PEFT's defaults: r 8, alpha 8, q_proj and v_proj.
    let run = Run::from_str(
        &format!("{HEAD}[task]\nkind = \"arithmetic\"\n[lora]\n"),
        "run.toml",
    )
    .unwrap();
    assert_eq!(run.config.lora, Some(grpo_policy::LoraConfig::default()));
    assert!(
        Run::from_str(
            &format!("{HEAD}[task]\nkind = \"arithmetic\"\n"),
            "run.toml"
        )
        .unwrap()
        .config
        .lora
        .is_none()
    );

    let message = error(&format!(
        "{HEAD}[task]\nkind = \"arithmetic\"\n[lora]\nr = 0\n"
    ));
    assert!(
        message.starts_with("run.toml:8: [lora]") && message.contains("`r`"),
        "{message}"
    );
    let message = error(&format!(
        "{HEAD}[task]\nkind = \"arithmetic\"\n[lora]\ntarget_modules = [\"lm_head\"]\n"
    ));
    assert!(
        message.contains("[lora]") && message.contains("lm_head"),
        "{message}"
    );
    let message = error(&format!(
        "{HEAD}[task]\nkind = \"arithmetic\"\n[lora]\nrank = 4\n"
    ));
    assert!(
        message.starts_with("run.toml:9:") && message.contains("rank"),
        "{message}"
    );
}

#[test]
fn a_bf16_base_is_read_with_lora_and_refused_without_it_by_line() {
    let run = Run::from_str(
        &format!(
            "{HEAD}[model]\nbase_dtype = \"bf16\"\n[task]\nkind = \"arithmetic\"\n[lora]\nr = 4\n"
        ),
        "run.toml",
    )
    .unwrap();
    assert_eq!(run.config.model.base_dtype, grpo_recipe::BaseDtype::Bf16);
    let message = error(&format!(
        "{HEAD}[model]\nbase_dtype = \"bf16\"\n[task]\nkind = \"arithmetic\"\n"
    ));
    assert!(
        message.starts_with("run.toml:6: [model] base_dtype") && message.contains("[lora]"),
        "{message}"
    );
    let message = error(&format!(
        "{HEAD}[model]\nbase_dtype = \"fp8\"\n[task]\nkind = \"arithmetic\"\n"
    ));
    assert!(
        message.contains("run.toml:7") && message.contains("fp8"),
        "{message}"
    );
}

#[test]
fn devices_are_read_checked_by_line_and_set_from_the_command_line() {
    let text = format!(
        "{HEAD}[task]\nkind = \"arithmetic\"\n\n[grpo]\ndevices = [\"flex\", \"ws://10.0.0.2:4001\"]\n"
    );
    let mut run = Run::from_str(&text, "run.toml").unwrap();
    assert_eq!(run.config.grpo.devices, ["flex", "ws://10.0.0.2:4001"]);
    run.set_devices(vec!["ndarray".into()]);
    assert_eq!(run.config.grpo.devices, ["ndarray"]);

    let text =
        format!("{HEAD}[task]\nkind = \"arithmetic\"\n\n[grpo]\ndevices = [\"flex\", \"tpu0\"]\n");
    let message = error(&text);
    assert!(
        message.starts_with("run.toml:9: [grpo]")
            && message.contains("devices")
            && message.contains("`tpu0`"),
        "{message}"
    );
    let text =
        format!("{HEAD}[task]\nkind = \"arithmetic\"\n[sft]\ndevices = [\"ws://host:1/x\"]\n");
    let message = error(&text);
    assert!(
        message.starts_with("run.toml:8: [sft]") && message.contains("ws://HOST:PORT"),
        "{message}"
    );
}
