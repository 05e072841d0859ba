//! The log-prob helpers against a reference computed by hand on the host (f64), and
//! gradients flowing through them on an autodiff device.

mod common;

use common::{devices, floats, int_tensor};
use grpo_policy::burn::tensor::{Tensor, TensorData};
use grpo_policy::{CausalLm, LmConfig, entropy, token_logprobs};

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
        let out = model.completion_logprobs(tokens.clone(), 3, vec![0, 1], 1.0);
        assert_eq!(out.logprobs.dims(), [2, 2]);

        // The same numbers from the full logits.
        let mut cache = model.new_cache(vec![0, 1]);
        let logits = model.forward(tokens.clone(), &mut cache).narrow(1, 2, 2);
        let reference = token_logprobs(logits, tokens.narrow(1, 3, 2), 1.0);
        let diff = common::max_abs_diff(&floats(out.logprobs.clone()), &floats(reference));
        assert!(diff < 1e-5, "{name}: {diff}");

        let grads = out.logprobs.sum().backward();
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
