//! The `custom_model` example, run: a recurrent model that is not `CausalLm` keeps the
//! `LanguageModel` contract (left padding, caches, grouped forward) and GRPO trains it,
//! checkpoints and resumes it, with no change to the trainer.

#[path = "../examples/custom_model.rs"]
mod custom_model;

use custom_model::{model, trainer};
use grpo::policy::burn::tensor::{Int, Tensor, TensorData};
use grpo::policy::{GroupedCompletions, LanguageModel, ModelCache};

fn ids(rows: &[Vec<i64>], device: &grpo::policy::burn::tensor::Device) -> Tensor<2, Int> {
    let width = rows[0].len();
    let flat: Vec<i64> = rows.concat();
    Tensor::from_data(TensorData::new(flat, [rows.len(), width]), device)
}

fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

fn close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{x} vs {y}");
    }
}

#[test]
fn left_padding_and_the_recurrent_state_leave_the_logits_unchanged() {
    let model = model(3);
    let device = model.device();
    let row = vec![40, 41, 42, 43, 44];
    let mut cache = model.new_cache(vec![0]);
    let alone = floats(model.forward(ids(std::slice::from_ref(&row), &device), &mut cache));

    // The same row left-padded by 2 beside a longer one: its real positions are unchanged.
    let padded = vec![0, 0, 40, 41, 42, 43, 44];
    let other = vec![50, 51, 52, 53, 54, 55, 56];
    let mut cache = model.new_cache(vec![2, 0]);
    let logits = model.forward(ids(&[padded, other], &device), &mut cache);
    let vocab = model.vocab_size();
    let row0 = floats(logits.narrow(0, 0, 1).narrow(1, 2, 5));
    close(&row0, &alone);

    // Prefill 3 tokens, then decode 2 one at a time after repeating the row: the cache carries
    // exactly what the whole sequence would have computed.
    let mut cache = model.new_decoding_cache(vec![0], 5);
    model.forward(ids(&[row[..3].to_vec()], &device), &mut cache);
    cache.repeat_rows(2, &device);
    assert_eq!(cache.batch_size(), 2);
    let mut decoded = Vec::new();
    for &token in &row[3..] {
        let step = model.forward(ids(&[vec![token], vec![token]], &device), &mut cache);
        decoded.extend(floats(step.narrow(0, 1, 1)));
    }
    close(&decoded, &alone[3 * vocab..]);
}

#[test]
fn the_grouped_forward_matches_whole_sequences() {
    let model = model(4);
    let device = model.device();
    // Two prompts (the second left-padded by 1), three completions of length 3.
    let prompts = vec![vec![60, 61, 62], vec![0, 63, 64]];
    let completions = vec![vec![70, 71, 72], vec![73, 74, 75], vec![76, 77, 78]];
    let group = vec![0, 1, 1];
    let grouped = model
        .grouped_completion_logits(GroupedCompletions {
            prompts: ids(&prompts, &device),
            padding: vec![0, 1],
            completions: ids(&completions, &device),
            group: group.clone(),
        })
        .logprobs(1.0);
    let whole: Vec<Vec<i64>> = group
        .iter()
        .zip(&completions)
        .map(|(&g, c)| [prompts[g].clone(), c.clone()].concat())
        .collect();
    let expected = model
        .completion_logits(ids(&whole, &device), 3, vec![0, 1, 1])
        .logprobs(1.0);
    close(&floats(grouped), &floats(expected));
}

#[test]
fn grpo_teaches_the_recurrent_model_and_resumes_it_exactly() {
    // One model for every run: the tests seed the shared device concurrently.
    let initial = model(1);
    let mut run = trainer(initial.clone(), 60, None).unwrap();
    let metrics = run.train().unwrap();
    let mean = |steps: &[grpo::trainer::Metrics]| {
        steps.iter().map(|m| m["reward"]).sum::<f64>() / steps.len() as f64
    };
    let (first, last) = (mean(&metrics[..5]), mean(&metrics[50..]));
    assert!(
        last > 0.9 && last > first + 0.3,
        "reward {first:.3} → {last:.3}"
    );

    // Interrupted after 2 steps and resumed from the checkpoint: the same steps 3 and 4 as a
    // run that never stopped.
    let dir = tempfile::tempdir().unwrap();
    let mut straight = trainer(initial.clone(), 4, None).unwrap();
    let expected = straight.train().unwrap();
    let mut first_half = trainer(initial, 4, Some(dir.path().to_owned())).unwrap();
    first_half.train_steps(2).unwrap();
    first_half.save_checkpoint().unwrap();
    drop(first_half);
    let mut resumed: grpo::trainer::GrpoTrainer<custom_model::GruLm> =
        grpo::trainer::GrpoTrainer::resume(
            dir.path().to_owned(),
            std::sync::Arc::new(grpo::policy::ByteTokenizer),
            custom_model::verifiers(),
            custom_model::prompts(),
            &grpo::policy::burn::tensor::Device::flex(),
        )
        .unwrap();
    let rest = resumed.train().unwrap();
    for (got, want) in rest.iter().zip(&expected[2..]) {
        for key in ["reward", "loss", "grad_norm"] {
            assert_eq!(got[key], want[key], "{key} at step {}", want["step"]);
        }
    }
}
