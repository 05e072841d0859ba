//! The sampler against references: greedy = argmax of full recomputation (and transformers'
//! greedy continuations), sampled frequencies = the filtered softmax, determinism, batch
//! independence, stop tokens and stop strings.

use std::path::PathBuf;

use grpo_policy::burn::tensor::{Device, Tensor, TensorData};
use grpo_policy::{ByteTokenizer, CausalLm, HfTokenizer, LanguageModel, LmConfig, Tokenizer};
use grpo_sampler::{FinishReason, Sampler, SamplingConfig, Strategy, choose};

fn device() -> Device {
    Device::flex()
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../policy/tests/fixtures"
    ))
    .join(name)
}

#[derive(serde::Deserialize)]
struct Reference {
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    text: String,
    greedy: Vec<u32>,
}

fn greedy(max_new_tokens: usize, k: usize) -> SamplingConfig {
    SamplingConfig {
        num_generations: k,
        temperature: 0.0,
        max_new_tokens,
        ..Default::default()
    }
}

#[test]
fn greedy_reproduces_the_transformers_continuations_in_one_padded_batch() {
    for name in ["llama-untied", "llama-tied", "qwen2-tied"] {
        let dir = fixture(name);
        let reference: Reference =
            serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
                .unwrap();
        let model = CausalLm::load(&dir, &device()).unwrap();
        let tokenizer = HfTokenizer::from_dir(&dir).unwrap();
        let prompts: Vec<String> = reference.cases.iter().map(|c| c.text.clone()).collect();
        // All prompts together (left-padded to the longest), two samples each.
        let rollouts = Sampler::default()
            .sample(&model, &tokenizer, &prompts, &greedy(8, 2))
            .unwrap();
        for completion in &rollouts.completions {
            let expected = &reference.cases[completion.group].greedy;
            // The reference ran without stopping; ours stops at EOS, which it then includes.
            let n = completion.token_ids.len();
            assert_eq!(
                completion.token_ids,
                expected[..n],
                "{name} prompt {}",
                completion.group
            );
            if n < expected.len() {
                assert!(tokenizer.eos_ids().contains(&completion.token_ids[n - 1]));
            }
        }
    }
}

#[test]
fn greedy_equals_argmax_over_full_recomputation() {
    let device = device();
    device.seed(21);
    let model = CausalLm::new(
        &LmConfig::small(ByteTokenizer::VOCAB_SIZE, 32, 2, 4, 64),
        &device,
    )
    .unwrap();
    let prompts = vec!["12+7=".to_owned(), "What is 3?".to_owned()];
    let rollouts = Sampler::default()
        .sample(&model, &ByteTokenizer, &prompts, &greedy(12, 1))
        .unwrap();
    for completion in &rollouts.completions {
        let mut sequence = ByteTokenizer.encode(&prompts[completion.group]);
        for &token in &completion.token_ids {
            let mut cache = model.new_cache(vec![0]);
            let ids: Vec<i64> = sequence.iter().map(|&t| i64::from(t)).collect();
            let tokens = Tensor::from_data(TensorData::new(ids, [1, sequence.len()]), &device);
            let logits = model.forward(tokens, &mut cache);
            let [_, seq, vocab] = logits.dims();
            let last: Vec<f32> = logits
                .narrow(1, seq - 1, 1)
                .reshape([vocab])
                .into_data()
                .try_to_vec()
                .unwrap();
            let argmax = (0..vocab).fold(0, |best, i| if last[i] > last[best] { i } else { best });
            assert_eq!(token, argmax as u32);
            sequence.push(token);
        }
    }
}

/// Pearson's chi-square statistic of observed counts against expected probabilities (cells
/// with zero expected probability must have zero counts).
fn chi_square(counts: &[usize], expected: &[f64]) -> f64 {
    let n: usize = counts.iter().sum();
    counts
        .iter()
        .zip(expected)
        .map(|(&c, &p)| {
            if p == 0.0 {
                assert_eq!(c, 0, "a filtered-out token was sampled");
                0.0
            } else {
                let e = p * n as f64;
                (c as f64 - e).powi(2) / e
            }
        })
        .sum()
}

#[test]
fn sampled_frequencies_follow_the_filtered_softmax() {
    let logits = [2.0f32, 1.5, 1.0, 0.2, -0.5, -3.0];
    let rows = 40_000;
    let device = device();
    let tensor = Tensor::<2>::from_data(
        TensorData::new(logits.repeat(rows), [rows, logits.len()]),
        &device,
    );
    let mut stream_state = 0x1234_5678u64;
    let mut uniform = || {
        stream_state = stream_state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (stream_state >> 40) as f32 / (1u64 << 24) as f32
    };
    let uniforms: Vec<f32> = (0..rows).map(|_| uniform()).collect();
    let softmax = |t: f64| {
        let z: Vec<f64> = logits.iter().map(|&l| (f64::from(l) / t).exp()).collect();
        let sum: f64 = z.iter().sum();
        z.into_iter().map(|x| x / sum).collect::<Vec<_>>()
    };
    let renormalised = |keep: &dyn Fn(usize, f64) -> bool, p: &[f64]| {
        let kept: Vec<f64> = p
            .iter()
            .enumerate()
            .map(|(i, &x)| if keep(i, x) { x } else { 0.0 })
            .collect();
        let sum: f64 = kept.iter().sum();
        kept.into_iter().map(|x| x / sum).collect::<Vec<_>>()
    };
    let p07 = softmax(0.7);
    // Tokens are already in descending order of probability, so rank = index.
    let cumulative_before = |i: usize| p07[..i].iter().sum::<f64>();
    let cases: Vec<(&str, SamplingConfig, Vec<f64>)> = vec![
        (
            "plain",
            SamplingConfig {
                temperature: 0.7,
                ..Default::default()
            },
            p07.clone(),
        ),
        (
            "top_k = 3",
            SamplingConfig {
                temperature: 0.7,
                top_k: 3,
                ..Default::default()
            },
            renormalised(&|i, _| i < 3, &p07),
        ),
        (
            "top_p = 0.8",
            SamplingConfig {
                temperature: 0.7,
                top_p: 0.8,
                ..Default::default()
            },
            renormalised(&|i, _| cumulative_before(i) < 0.8, &p07),
        ),
        (
            "min_p = 0.2",
            SamplingConfig {
                temperature: 0.7,
                min_p: 0.2,
                ..Default::default()
            },
            renormalised(&|_, x| x >= 0.2 * p07[0], &p07),
        ),
    ];
    for (name, config, expected) in cases {
        let (ids, logprobs) = choose(tensor.clone(), &uniforms, &config);
        let mut counts = vec![0usize; logits.len()];
        for (&id, &lp) in ids.iter().zip(&logprobs) {
            counts[id as usize] += 1;
            // Log-probs are those of the temperature softmax, before truncation.
            assert!(
                (f64::from(lp) - p07[id as usize].ln()).abs() < 1e-5,
                "{name}: logprob of {id}"
            );
        }
        let statistic = chi_square(&counts, &expected);
        // df ≤ 5; the 0.1% critical value is 20.5.
        assert!(
            statistic < 20.5,
            "{name}: chi-square {statistic:.1}, counts {counts:?}, expected {expected:?}"
        );
    }
}

/// Sampling at temperature 4: a random tied-embedding model is peaked, and a high temperature
/// makes the samples differ.
fn hot(num_generations: usize, max_new_tokens: usize, seed: u64) -> SamplingConfig {
    SamplingConfig {
        num_generations,
        temperature: 4.0,
        max_new_tokens,
        seed,
        ..Default::default()
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn small_model(seed: u64) -> CausalLm {
    let device = device();
    device.seed(seed);
    CausalLm::new(
        &LmConfig::small(ByteTokenizer::VOCAB_SIZE, 32, 2, 4, 64),
        &device,
    )
    .unwrap()
}

#[test]
fn seeded_sampling_is_reproducible_and_independent_of_batch_mates() {
    let model = small_model(5);
    let config = hot(4, 16, 42);
    let sampler = Sampler::default();
    let both = vec!["12+7=".to_owned(), "a much longer second prompt".to_owned()];
    let first = sampler
        .sample(&model, &ByteTokenizer, &both, &config)
        .unwrap();
    let again = sampler
        .sample(&model, &ByteTokenizer, &both, &config)
        .unwrap();
    assert_eq!(first, again, "same seed, same completions");

    let alone = sampler
        .sample(&model, &ByteTokenizer, &both[..1], &config)
        .unwrap();
    for (a, b) in alone.completions.iter().zip(&first.completions[..4]) {
        assert_eq!(
            a.token_ids, b.token_ids,
            "sample {} depends on its batch mates",
            a.sample
        );
        let diff = max_abs_diff(&a.logprobs, &b.logprobs);
        assert!(diff < 1e-4, "logprobs differ by {diff}");
    }
    let samples: std::collections::BTreeSet<_> = first.completions[..4]
        .iter()
        .map(|c| c.token_ids.clone())
        .collect();
    assert!(samples.len() > 1, "K samples of one prompt differ");

    let other_seed = SamplingConfig { seed: 43, ..config };
    assert_ne!(
        sampler
            .sample(&model, &ByteTokenizer, &both, &other_seed)
            .unwrap(),
        first
    );
}

/// The prompts split over threads (one, two, three shards of five prompts, one per core) give
/// the completions of one batch: each completion has its own random stream, and no operation
/// mixes rows.
#[test]
fn shards_give_the_completions_of_one_batch() {
    let model = small_model(6);
    let config = hot(3, 12, 9);
    let prompts: Vec<String> = ["1+1=", "a longer prompt", "x", "two words", "5*5="]
        .iter()
        .map(|p| p.to_string())
        .collect();
    let run = |shards: usize| {
        Sampler {
            strategy: Strategy {
                shards,
                ..Strategy::default()
            },
        }
        .sample(&model, &ByteTokenizer, &prompts, &config)
        .unwrap()
    };
    let one = run(1);
    assert_eq!(one.completions.len(), 15);
    for shards in [2, 3, 0] {
        let split = run(shards);
        assert_eq!(split.prompt_ids, one.prompt_ids);
        for (a, b) in one.completions.iter().zip(&split.completions) {
            assert_eq!(
                (a.group, a.sample),
                (b.group, b.sample),
                "{shards} shards: order"
            );
            assert_eq!(
                a.token_ids, b.token_ids,
                "{shards} shards: group {} sample {}",
                a.group, a.sample
            );
            let diff = max_abs_diff(&a.logprobs, &b.logprobs);
            assert!(diff < 1e-4, "{shards} shards: logprobs differ by {diff}");
        }
    }
}

#[test]
fn stop_tokens_and_stop_strings_across_token_boundaries() {
    let dir = fixture("qwen2-tied");
    let model = CausalLm::load(&dir, &device()).unwrap();
    let tokenizer = HfTokenizer::from_dir(&dir).unwrap();
    let prompt = vec!["Janet sells 16 eggs a day.".to_owned()];
    let sampler = Sampler::default();
    let free = sampler
        .sample(&model, &tokenizer, &prompt, &greedy(8, 1))
        .unwrap()
        .completions
        .remove(0);
    let tokens = free.token_ids.clone();
    assert_eq!(free.finish_reason, FinishReason::Length);

    // A stop token ends the row, and is kept.
    let config = SamplingConfig {
        stop_token_ids: vec![tokens[3]],
        ..greedy(8, 1)
    };
    let stopped = sampler
        .sample(&model, &tokenizer, &prompt, &config)
        .unwrap()
        .completions
        .remove(0);
    let first_stop = tokens.iter().position(|&t| t == tokens[3]).unwrap();
    assert_eq!(stopped.token_ids, tokens[..=first_stop]);
    assert_eq!(stopped.finish_reason, FinishReason::Stop);

    // A stop string made of the end of token 2 and the start of token 3.
    let text_until = |n: usize| tokenizer.decode(&tokens[..n]);
    let (before, through) = (text_until(2), text_until(4));
    let start = before.len() - before.chars().last().unwrap().len_utf8();
    let stop = through[start..].chars().take(2).collect::<String>();
    assert!(
        stop.chars().count() == 2 && !text_until(8)[..start].contains(&stop),
        "fixture gives a usable stop string"
    );
    let config = SamplingConfig {
        stop_strings: vec![stop.clone()],
        ..greedy(8, 1)
    };
    let cut = sampler
        .sample(&model, &tokenizer, &prompt, &config)
        .unwrap()
        .completions
        .remove(0);
    assert_eq!(cut.finish_reason, FinishReason::Stop);
    assert_eq!(cut.stop_string.as_deref(), Some(stop.as_str()));
    assert_eq!(cut.text, before[..start]);
    assert!(cut.token_ids.len() <= 4 && tokens.starts_with(&cut.token_ids));
}

#[test]
fn bad_configs_name_the_field() {
    let model = small_model(1);
    for (config, field) in [
        (
            SamplingConfig {
                num_generations: 0,
                ..Default::default()
            },
            "num_generations",
        ),
        (
            SamplingConfig {
                top_p: 0.0,
                ..Default::default()
            },
            "top_p",
        ),
        (
            SamplingConfig {
                temperature: -1.0,
                ..Default::default()
            },
            "temperature",
        ),
        (
            SamplingConfig {
                min_p: 2.0,
                ..Default::default()
            },
            "min_p",
        ),
        (
            SamplingConfig {
                stop_strings: vec![String::new()],
                ..Default::default()
            },
            "stop_strings",
        ),
    ] {
        let error = Sampler::default()
            .sample(&model, &ByteTokenizer, &["x".into()], &config)
            .unwrap_err();
        assert!(error.to_string().contains(field), "{error}");
    }
    let error = Sampler::default()
        .sample(
            &model,
            &ByteTokenizer,
            &[String::new()],
            &SamplingConfig::default(),
        )
        .unwrap_err();
    assert!(error.to_string().contains("prompt 0"), "{error}");
}

/// A tokenizer whose EOS is a token the fixture model's greedy path produces.
struct EosAt(HfTokenizer, [u32; 1]);

impl Tokenizer for EosAt {
    fn encode(&self, text: &str) -> Vec<u32> {
        self.0.encode(text)
    }
    fn decode(&self, ids: &[u32]) -> String {
        self.0.decode(ids)
    }
    fn vocab_size(&self) -> usize {
        self.0.vocab_size()
    }
    fn bos_id(&self) -> Option<u32> {
        None
    }
    fn eos_ids(&self) -> &[u32] {
        &self.1
    }
    fn pad_id(&self) -> u32 {
        self.0.pad_id()
    }
}

#[test]
fn the_tokenizers_eos_ends_a_row_and_others_go_on() {
    let dir = fixture("llama-tied");
    let model = CausalLm::load(&dir, &device()).unwrap();
    let prompts = vec!["What is 12+7?".to_owned(), "x".to_owned()];
    let plain = HfTokenizer::from_dir(&dir).unwrap();
    let free = Sampler::default()
        .sample(&model, &plain, &prompts, &greedy(8, 1))
        .unwrap();
    let first = &free.completions[0].token_ids;
    // Make prompt 0's third greedy token the EOS (unless prompt 1 would also meet it sooner).
    let eos = first[2];
    let tokenizer = EosAt(HfTokenizer::from_dir(&dir).unwrap(), [eos]);
    let stopped = Sampler::default()
        .sample(&model, &tokenizer, &prompts, &greedy(8, 1))
        .unwrap();
    let row = &stopped.completions[0];
    let cut = first.iter().position(|&t| t == eos).unwrap();
    assert_eq!(row.token_ids, first[..=cut], "EOS is the last token");
    assert_eq!(row.finish_reason, FinishReason::Stop);
    // The other row, decoding beside it, is unaffected up to its own EOS.
    let other = &stopped.completions[1];
    let expected = &free.completions[1].token_ids;
    let n = other.token_ids.len();
    assert_eq!(other.token_ids, expected[..n]);
    assert!(n == expected.len() || other.token_ids[n - 1] == eos);
}
