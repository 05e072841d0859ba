//! Chat templates rendered here equal what transformers renders (fixtures from
//! `scripts/make_chat_fixtures.py`), and `tokenizer_config.json` is read as Hugging Face writes it.

use grpo_policy::{ChatMessage, ChatTemplate};
use serde_json::Value;

fn fixtures() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/chat_templates.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn every_conversation_renders_as_transformers_renders_it() {
    let fixtures = fixtures();
    let templates = fixtures["templates"].as_array().unwrap();
    assert_eq!(templates.len(), 4);
    for template in templates {
        let name = template["name"].as_str().unwrap();
        let compiled = ChatTemplate::new(
            template["chat_template"].as_str().unwrap(),
            template["bos_token"].as_str().unwrap(),
            template["eos_token"].as_str().unwrap(),
        )
        .unwrap();
        for case in template["cases"].as_array().unwrap() {
            let generation = case["add_generation_prompt"].as_bool().unwrap();
            let expected = case["rendered"].as_str().unwrap();
            let raw = case["messages"].as_array().unwrap();
            if let Some(tools) = case["tools"].as_array() {
                assert_eq!(
                    compiled.render_with_tools(raw, tools, generation).unwrap(),
                    expected,
                    "{name}: {raw:?} with tools"
                );
                continue;
            }
            // As `ChatMessage`s, where the messages have only a role and a content.
            if raw.iter().all(|m| m.as_object().unwrap().len() == 2) {
                let messages: Vec<ChatMessage> =
                    serde_json::from_value(case["messages"].clone()).unwrap();
                assert_eq!(
                    compiled.render(&messages, generation).unwrap(),
                    expected,
                    "{name}: {messages:?}"
                );
            }
            // As a conversational row holds them: JSON objects, every key (`tool_calls`) seen
            // in its order.
            assert_eq!(
                compiled.render(raw, generation).unwrap(),
                expected,
                "{name}: {raw:?}"
            );
        }
    }
}

#[test]
fn a_refused_conversation_is_an_error_with_the_template_message() {
    let fixtures = fixtures();
    let qwen = &fixtures["templates"][0];
    let compiled = ChatTemplate::new(qwen["chat_template"].as_str().unwrap(), "", "").unwrap();
    let error = compiled
        .render(&[ChatMessage::new("tool", "x")], true)
        .unwrap_err()
        .to_string();
    let expected = fixtures["refused"].as_str().unwrap();
    assert!(
        error.contains(expected),
        "{error} (transformers: {expected})"
    );
    // A template that does not compile says so before any conversation.
    let error = ChatTemplate::new("{% for m in messages %}", "", "")
        .err()
        .unwrap();
    assert!(error.to_string().starts_with("chat template:"), "{error}");
}

#[test]
fn tokenizer_config_is_read_as_hugging_face_writes_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tokenizer_config.json");
    let user = [ChatMessage::new("user", "hi")];
    // No file, or no template (a base model): none.
    assert!(ChatTemplate::from_dir(dir.path()).unwrap().is_none());
    std::fs::write(&config, r#"{"bos_token": "<s>"}"#).unwrap();
    assert!(ChatTemplate::from_dir(dir.path()).unwrap().is_none());
    // A string template; special tokens as AddedToken objects.
    std::fs::write(
        &config,
        r#"{"chat_template": "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}",
            "bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>"}"#,
    )
    .unwrap();
    let template = ChatTemplate::from_dir(dir.path()).unwrap().unwrap();
    assert_eq!(template.render(&user, false).unwrap(), "<s>hi</s>");
    // Named templates: the `default` one.
    std::fs::write(
        &config,
        r#"{"chat_template": [{"name": "tool_use", "template": "T"},
                              {"name": "default", "template": "D{{ messages | length }}"}]}"#,
    )
    .unwrap();
    let template = ChatTemplate::from_dir(dir.path()).unwrap().unwrap();
    assert_eq!(template.render(&user, false).unwrap(), "D1");
    // Anything else names the file.
    std::fs::write(&config, r#"{"chat_template": 3}"#).unwrap();
    let error = ChatTemplate::from_dir(dir.path())
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("tokenizer_config.json"), "{error}");
}

/// transformers' `strftime_now` is deliberately absent: a template that would print today's date
/// (Llama 3.2's) takes its fallback, so a prompt never depends on the day it is rendered.
#[test]
fn a_template_never_sees_the_clock() {
    let template = ChatTemplate::new(
        r#"{% if strftime_now is defined %}{{ strftime_now("%d %b %Y") }}{% else %}26 Jul 2024{% endif %}"#,
        "",
        "",
    )
    .unwrap();
    assert_eq!(
        template
            .render(&[ChatMessage::new("user", "hi")], true)
            .unwrap(),
        "26 Jul 2024"
    );
}
