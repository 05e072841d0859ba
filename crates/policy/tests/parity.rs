//! Parity with Hugging Face transformers: tiny Llama and Qwen2 checkpoints written by
//! `scripts/make_parity_fixtures.py`, with logits and greedy continuations computed by
//! transformers. Logits must match to 1e-4 and greedy tokens exactly.

mod common;

use common::{devices, fixtures, floats, int_tensor, max_abs_diff};
use grpo_policy::{CausalLm, HfTokenizer, LanguageModel, Tokenizer};

#[derive(serde::Deserialize)]
struct Reference {
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    text: String,
    ids: Vec<u32>,
    logits: Vec<Vec<f32>>,
    greedy: Vec<u32>,
}

const MODELS: [&str; 3] = ["llama-untied", "llama-tied", "qwen2-tied"];

#[test]
fn logits_tokens_and_greedy_continuations_match_transformers() {
    for model_name in MODELS {
        let dir = fixtures().join(model_name);
        let reference: Reference =
            serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
                .unwrap();
        let tokenizer = HfTokenizer::from_dir(&dir).unwrap();
        for (device_name, device) in devices() {
            let model = CausalLm::load(&dir, &device).unwrap();
            for case in &reference.cases {
                let at = format!("{model_name} on {device_name}, {:?}", case.text);
                assert_eq!(tokenizer.encode(&case.text), case.ids, "{at}: token ids");

                let mut cache = model.new_cache(vec![0]);
                let logits = floats(model.forward(
                    int_tensor(std::slice::from_ref(&case.ids), &device),
                    &mut cache,
                ));
                let expected: Vec<f32> = case.logits.iter().flatten().copied().collect();
                let diff = max_abs_diff(&logits, &expected);
                assert!(diff <= 1e-4, "{at}: logits max abs diff {diff}");

                // Greedy with the KV cache: one token at a time after the prefill.
                let vocab = case.logits[0].len();
                let mut next = argmax(&logits[logits.len() - vocab..]);
                let mut generated = vec![next];
                while generated.len() < case.greedy.len() {
                    let step =
                        floats(model.forward(int_tensor(&[vec![next]], &device), &mut cache));
                    next = argmax(&step);
                    generated.push(next);
                }
                assert_eq!(generated, case.greedy, "{at}: greedy continuation");
            }
        }
    }
}

fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best as u32
}

#[test]
fn special_ids_come_from_the_config_files() {
    let tokenizer = HfTokenizer::from_dir(&fixtures().join("qwen2-tied")).unwrap();
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("qwen2-tied/config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        tokenizer.eos_ids(),
        &[config["eos_token_id"].as_u64().unwrap() as u32]
    );
    assert_eq!(
        tokenizer.pad_id(),
        config["pad_token_id"].as_u64().unwrap() as u32
    );
    assert_eq!(
        tokenizer.decode(&tokenizer.encode("What is 12+7?")),
        "What is 12+7?"
    );
}
