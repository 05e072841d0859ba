//! Data parallel on one machine: a run spread over two devices of different backends (flex
//! and ndarray, so the replica's weights, frozen log-probs and gradients really cross between
//! devices) against the same run on one device. The shards are the same, so only the
//! backends' float rounding may separate them (1e-4 relative; see `close`).

use std::sync::Arc;

use grpo_data::{Dataset, Row};
use grpo_policy::ByteTokenizer;
use grpo_policy::burn::module::Module;
use grpo_trainer::{
    GrpoConfig, GrpoTrainer, LossType, Metrics, SftConfig, SftTrainer, TrainerError,
};

mod common;
use common::{digit_prompts as prompts, graded_verifiers as verifiers, tiny_model, weights};

fn config(loss_type: LossType, num_iterations: usize) -> GrpoConfig {
    GrpoConfig {
        prompts_per_step: 4,
        num_generations: 4,
        micro_batch_size: 16,
        max_steps: 3,
        learning_rate: 2e-2,
        lr_scheduler_type: grpo_trainer::Schedule::Constant,
        max_completion_length: 3,
        beta: 0.04,
        loss_type,
        num_iterations,
        seed: 11,
        // The same shards on one device and on two: the sums differ only in rounding.
        update_shards: 2,
        sampling_shards: 2,
        ..Default::default()
    }
}

/// `a` and `b` agree to 1e-4 relative (or 1e-7 absolute, for values near 0). Not 1e-5: the
/// two backends round each kernel their own way (not only the sums in another order), ndarray's
/// threaded reductions vary from run to run, and three steps at this learning rate amplify it —
/// grad_norm at step 3 was seen 1.7e-5 apart. One backend on two devices is bitwise (the
/// loopback-worker tests).
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-4 * a.abs().max(b.abs()) || (a - b).abs() <= 1e-7
}

fn assert_metrics_agree(one: &[Metrics], two: &[Metrics]) {
    assert_eq!(one.len(), two.len());
    for (x, y) in one.iter().zip(two) {
        for (key, &a) in x {
            if key.starts_with("time/") || key.starts_with("throughput/") {
                continue;
            }
            // The gap between the sampler's and the trainer's log-probs is float rounding
            // itself (~1e-7), and with two backends each has its own.
            if key == "sampling_logprob_gap" {
                assert!(y[key] < 1e-5, "{key} {}", y[key]);
                continue;
            }
            let b = y[key];
            assert!(close(a, b), "step {}: {key} {a} vs {b}", x["step"]);
        }
    }
}

fn assert_weights_agree(one: &[Vec<f32>], two: &[Vec<f32>]) {
    let (mut apart, mut norm) = (0.0f64, 0.0f64);
    for (a, b) in one.iter().zip(two) {
        for (x, y) in a.iter().zip(b) {
            apart += f64::from(x - y).powi(2);
            norm += f64::from(*x).powi(2);
        }
    }
    let relative = (apart / norm).sqrt();
    assert!(relative <= 1e-4, "weights apart by {relative:e} relative");
}

#[cfg(feature = "ndarray")]
fn grpo_on_two_devices_matches_one(loss_type: LossType, num_iterations: usize) {
    let initial = tiny_model(3);
    let run = |devices: Vec<String>| {
        let config = GrpoConfig {
            devices,
            ..config(loss_type, num_iterations)
        };
        let mut trainer = GrpoTrainer::new(
            initial.clone(),
            Arc::new(ByteTokenizer),
            verifiers(),
            prompts(),
            config,
            None,
        )
        .unwrap();
        let metrics = trainer.train().unwrap();
        (metrics, weights(&trainer.model().valid()))
    };
    let (one, one_weights) = run(Vec::new());
    let (two, two_weights) = run(vec!["flex".into(), "ndarray".into()]);
    assert_metrics_agree(&one, &two);
    assert_weights_agree(&one_weights, &two_weights);
    // Something was learned, so the comparison means something.
    assert!(one.iter().all(|m| m["grad_norm"] > 0.0) && one[2]["kl"] > 0.0);
    assert!(weights(&initial) != one_weights);
}

#[cfg(feature = "ndarray")]
#[test]
fn a_grpo_run_on_flex_and_ndarray_matches_the_one_device_run() {
    grpo_on_two_devices_matches_one(LossType::Grpo, 1);
}

#[cfg(feature = "ndarray")]
#[test]
fn a_dapo_run_with_two_passes_on_flex_and_ndarray_matches_the_one_device_run() {
    // μ = 2: π_old is computed by each device's copy of the policy too.
    grpo_on_two_devices_matches_one(LossType::Dapo, 2);
}

#[cfg(feature = "ndarray")]
#[test]
fn an_sft_run_on_flex_and_ndarray_matches_the_one_device_run() {
    let initial = tiny_model(4);
    let rows: Vec<Row> = (0..8)
        .map(|i| Row::from_prompt(format!("{i}+1=")).with("answer", (i + 1).to_string()))
        .collect();
    let run = |devices: Vec<String>| {
        let config = SftConfig {
            batch_size: 8,
            max_steps: 3,
            shards: 2,
            devices,
            ..Default::default()
        };
        let mut trainer = SftTrainer::new(
            initial.clone(),
            Arc::new(ByteTokenizer),
            Dataset::from_rows(rows.clone()),
            config,
            None,
        )
        .unwrap();
        let metrics = trainer.train().unwrap();
        (metrics, weights(&trainer.into_model()))
    };
    let (one, one_weights) = run(Vec::new());
    let (two, two_weights) = run(vec!["flex".into(), "ndarray".into()]);
    assert_metrics_agree(&one, &two);
    assert_weights_agree(&one_weights, &two_weights);
    assert!(one[2]["loss"] < one[0]["loss"]);
}

#[test]
fn a_device_that_names_none_is_refused_with_the_config() {
    let config = GrpoConfig {
        devices: vec!["flex".into(), "tpu0".into()],
        ..config(LossType::Grpo, 1)
    };
    let error = GrpoTrainer::new(
        tiny_model(5),
        Arc::new(ByteTokenizer),
        verifiers(),
        prompts(),
        config,
        None,
    )
    .err()
    .expect("refused");
    assert!(
        matches!(&error, TrainerError::Config { field, .. } if field == "devices")
            && error.to_string().contains("`tpu0`"),
        "{error}"
    );
}
