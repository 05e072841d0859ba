//! The log-prob helpers against a reference computed by hand on the host (f64), and
//! gradients flowing through them on an autodiff device.

mod common;

use common::{devices, floats, int_tensor};
use grpo_policy::burn::tensor::{Tensor, TensorData};
use grpo_policy::{CausalLm, GroupedCompletions, LanguageModel, LmConfig, entropy, token_logprobs};

/// A small deterministic pseudo-random sequence in [-3, 3).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 6.0 - 3.0
        })
        .collect()
}

#[test]
fn token_logprobs_and_entropy_match_a_hand_computed_log_softmax() {
    let (batch, seq, vocab, temperature) = (2, 3, 7, 0.7f32);
    let logits = values(batch * seq * vocab, 3);
    let targets: Vec<Vec<u32>> = vec![vec![0, 6, 3], vec![2, 2, 5]];
    for (name, device) in devices() {
        let tensor = Tensor::<3>::from_data(
            TensorData::new(logits.clone(), [batch, seq, vocab]),
            &device,
        );
        let got = floats(token_logprobs(
            tensor.clone(),
            int_tensor(&targets, &device),
            temperature,
        ));
        let got_entropy = floats(entropy(tensor, temperature));
        for b in 0..batch {
            for s in 0..seq {
                let row: Vec<f64> = logits[(b * seq + s) * vocab..][..vocab]
                    .iter()
                    .map(|&x| f64::from(x) / f64::from(temperature))
                    .collect();
                let lse = row.iter().map(|x| x.exp()).sum::<f64>().ln();
                let expected = row[targets[b][s] as usize] - lse;
                let expected_entropy: f64 =
                    -row.iter().map(|x| (x - lse).exp() * (x - lse)).sum::<f64>();
                let i = b * seq + s;
                assert!(
                    (f64::from(got[i]) - expected).abs() < 1e-5,
                    "{name} logprob [{b},{s}]: {} vs {expected}",
                    got[i]
                );
                assert!(
                    (f64::from(got_entropy[i]) - expected_entropy).abs() < 1e-5,
                    "{name} entropy [{b},{s}]"
                );
            }
        }
    }
}

#[test]
fn logsumexp_is_stable_for_large_logits() {
    for (name, device) in devices() {
        let tensor = Tensor::<3>::from_data(
            TensorData::new(vec![1000.0f32, 1000.0, -1000.0], [1, 1, 3]),
            &device,
        );
        let got = floats(token_logprobs(tensor, int_tensor(&[vec![0]], &device), 1.0));
        assert!(
            (got[0] - (-std::f32::consts::LN_2)).abs() < 1e-5,
            "{name}: {got:?}"
        );
    }
}

#[test]
fn completion_logprobs_have_gradients_and_match_the_full_forward() {
    for (name, device) in devices() {
        let device = device.autodiff();
        device.seed(11);
        let model = CausalLm::new(&LmConfig::small(40, 16, 1, 2, 32), &device).unwrap();
        // Two prompts of 3 (second left-padded by 1) and completions of 2.
        let tokens = int_tensor(&[vec![1, 2, 3, 4, 5], vec![0, 7, 8, 9, 10]], &device);
        let logprobs = model
            .completion_logits(tokens.clone(), 3, vec![0, 1])
            .logprobs(1.0);
        assert_eq!(logprobs.dims(), [2, 2]);

        // The same numbers from the full logits.
        let mut cache = model.new_cache(vec![0, 1]);
        let logits = model.forward(tokens.clone(), &mut cache).narrow(1, 2, 2);
        let reference = token_logprobs(logits, tokens.narrow(1, 3, 2), 1.0);
        let diff = common::max_abs_diff(&floats(logprobs.clone()), &floats(reference));
        assert!(diff < 1e-5, "{name}: {diff}");

        let grads = logprobs.sum().backward();
        let embedding = model
            .model
            .embed_tokens
            .weight
            .grad(&grads)
            .expect("embedding gradient");
        let norm: f32 = floats(embedding.abs().sum()).iter().sum();
        assert!(
            norm > 0.0 && norm.is_finite(),
            "{name}: gradient norm {norm}"
        );
    }
}

/// `|a − b| / max(|a|, |b|, floor)` at its worst: a relative difference that does not blow up
/// on values near zero.
fn max_relative_diff(a: &[f32], b: &[f32], floor: f32) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / x.abs().max(y.abs()).max(floor))
        .fold(0.0, f32::max)
}

/// `‖a − b‖ / ‖a‖`: how far a gradient moved, relative to its size (summing the same terms in
/// another order moves small entries by more than their own relative precision).
fn norm_relative_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let norm = |v: &mut dyn Iterator<Item = f64>| v.map(|x| x * x).sum::<f64>().sqrt();
    let size = norm(&mut a.iter().map(|&x| f64::from(x)));
    assert!(size > 0.0, "no gradient");
    (norm(&mut a.iter().zip(b).map(|(&x, &y)| f64::from(x - y))) / size) as f32
}

/// Running each prompt once and repeating its keys and values to its K rows gives the log-probs
/// and the gradients of running every row's whole sequence: the prompt sharing the GRPO update
/// does is exact. Prompts of different lengths (left padding), completions of different lengths
/// (right padding), rows out of group order, a group of one row, grouped-query attention, and a
/// temperature ≠ 1.
#[test]
fn grouped_completions_give_the_logprobs_and_gradients_of_whole_sequences() {
    let prompts: Vec<Vec<u32>> = vec![vec![5, 6, 7, 8], vec![9, 10], vec![11, 12, 13]];
    // (group, completion): group 0 three times, group 1 once, group 2 twice, interleaved.
    let rows: Vec<(usize, Vec<u32>)> = vec![
        (0, vec![20, 21, 22]),
        (2, vec![23]),
        (0, vec![24, 25, 26]),
        (1, vec![27, 28, 29]),
        (2, vec![30, 31]),
        (0, vec![32, 33]),
    ];
    let weights: Vec<f32> = values(rows.len() * 3, 9);
    let (prompt_len, completion_len) = (4, 3);
    let temperature = 0.8;
    for (name, device) in devices() {
        let device = device.autodiff();
        device.seed(5);
        let mut config = LmConfig::small(40, 32, 2, 4, 48);
        config.num_key_value_heads = Some(2);
        let model = CausalLm::new(&config, &device).unwrap();
        let mask: Vec<f32> = rows
            .iter()
            .flat_map(|(_, c)| (0..completion_len).map(move |t| f32::from(t < c.len())))
            .collect();
        let loss_of = |logprobs: Tensor<2>| {
            // Σ weight · mask · logprob: every real token's log-prob reaches the gradient.
            let w = Tensor::<2>::from_data(
                TensorData::new(
                    weights
                        .iter()
                        .zip(&mask)
                        .map(|(w, m)| w * m)
                        .collect::<Vec<f32>>(),
                    [rows.len(), completion_len],
                ),
                &device,
            );
            (logprobs * w).sum()
        };

        // Whole sequences: each row is its prompt (left-padded) and its completion (right-padded).
        let pad = 0u32;
        let whole: Vec<Vec<u32>> = rows
            .iter()
            .map(|(g, c)| {
                let p = &prompts[*g];
                let mut row = vec![pad; prompt_len - p.len()];
                row.extend(p);
                row.extend(c);
                row.resize(prompt_len + completion_len, pad);
                row
            })
            .collect();
        let padding: Vec<usize> = rows
            .iter()
            .map(|(g, _)| prompt_len - prompts[*g].len())
            .collect();
        let unshared = model
            .completion_logits(int_tensor(&whole, &device), prompt_len, padding)
            .logprobs(temperature);

        let padded_prompts: Vec<Vec<u32>> = prompts
            .iter()
            .map(|p| {
                let mut row = vec![pad; prompt_len - p.len()];
                row.extend(p);
                row
            })
            .collect();
        let completions: Vec<Vec<u32>> = rows
            .iter()
            .map(|(_, c)| {
                let mut row = c.clone();
                row.resize(completion_len, pad);
                row
            })
            .collect();
        let shared = model
            .grouped_completion_logits(GroupedCompletions {
                prompts: int_tensor(&padded_prompts, &device),
                padding: prompts.iter().map(|p| prompt_len - p.len()).collect(),
                completions: int_tensor(&completions, &device),
                group: rows.iter().map(|(g, _)| *g).collect(),
            })
            .logprobs(temperature);

        let (a, b) = (floats(unshared.clone()), floats(shared.clone()));
        let masked = |v: &[f32]| -> Vec<f32> { v.iter().zip(&mask).map(|(x, m)| x * m).collect() };
        let diff = max_relative_diff(&masked(&a), &masked(&b), 1e-3);
        assert!(
            diff <= 1e-5,
            "{name}: log-probs differ by {diff} (relative)"
        );

        let unshared_grads = loss_of(unshared).backward();
        let shared_grads = loss_of(shared).backward();
        let layer = &model.model.layers[0];
        let last = &model.model.layers[1];
        let parameters = [
            ("embed_tokens", model.model.embed_tokens.weight.clone()),
            ("layers.0.q_proj", layer.self_attn.q_proj.weight.clone()),
            ("layers.0.k_proj", layer.self_attn.k_proj.weight.clone()),
            ("layers.0.v_proj", layer.self_attn.v_proj.weight.clone()),
            ("layers.1.o_proj", last.self_attn.o_proj.weight.clone()),
            ("layers.1.up_proj", last.mlp.up_proj.weight.clone()),
            ("layers.1.down_proj", last.mlp.down_proj.weight.clone()),
        ];
        for (parameter, weight) in parameters {
            let expected = floats(weight.grad(&unshared_grads).expect("gradient"));
            let got = floats(weight.grad(&shared_grads).expect("gradient"));
            let diff = norm_relative_diff(&expected, &got);
            assert!(
                diff <= 1e-5,
                "{name} {parameter}: gradients differ by {diff} (relative)"
            );
        }
        let gamma = |grads| {
            floats(
                model.model.layers[0]
                    .input_layernorm
                    .gamma
                    .grad(grads)
                    .expect("gradient"),
            )
        };
        let diff = norm_relative_diff(&gamma(&unshared_grads), &gamma(&shared_grads));
        assert!(
            diff <= 1e-5,
            "{name} input_layernorm: gradients differ by {diff} (relative)"
        );
    }
}
