//! Advantages, losses and one gradient against golden values computed independently in numpy
//! (`scripts/make_loss_fixtures.py`, float64, TRL's aggregation written out separately).

use grpo_policy::burn::tensor::{Device, Tensor, TensorData};
use grpo_trainer::advantages::advantages;
use grpo_trainer::loss::{LossInputs, grpo_loss, row_weights, stat};
use grpo_trainer::{
    AdvantageEstimator, GrpoConfig, ImportanceSamplingLevel, KlEstimator, LossType, ScaleRewards,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    batch: Batch,
    advantage_cases: Vec<AdvantageCase>,
    loss_cases: Vec<LossCase>,
    gradient: GradientCase,
}

#[derive(Deserialize)]
struct Batch {
    logprobs: Vec<Vec<f64>>,
    old_logprobs: Vec<Vec<f64>>,
    ref_logprobs: Vec<Vec<f64>>,
    mask: Vec<Vec<f64>>,
    lengths: Vec<usize>,
    advantages: Vec<f64>,
}

#[derive(Deserialize)]
struct AdvantageCase {
    rewards: Vec<Option<f32>>,
    k: usize,
    estimator: AdvantageEstimator,
    scale: ScaleRewards,
    advantages: Vec<Option<f64>>,
}

#[derive(Deserialize)]
struct LossCase {
    #[serde(flatten)]
    settings: Settings,
    loss: f64,
}

#[derive(Deserialize)]
struct GradientCase {
    #[serde(flatten)]
    settings: Settings,
    grad: Vec<Vec<f64>>,
}

/// The loss settings a fixture case was computed with.
#[derive(Deserialize)]
struct Settings {
    loss_type: LossType,
    level: ImportanceSamplingLevel,
    kl: KlEstimator,
    beta: f32,
    epsilon: f32,
    epsilon_high: f32,
    delta: Option<f32>,
    max_completion_length: usize,
    micro_batch_size: usize,
}

fn golden() -> Golden {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/grpo_golden.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn matrix(rows: &[Vec<f64>], device: &Device) -> Tensor<2> {
    let (n, t) = (rows.len(), rows[0].len());
    let flat: Vec<f32> = rows.iter().flatten().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(flat, [n, t]), device)
}

fn column(values: &[f32], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values.to_vec(), [values.len(), 1]), device)
}

fn close(got: f64, want: f64, what: &str) {
    let tolerance = 2e-5 * want.abs().max(1e-2);
    assert!(
        (got - want).abs() <= tolerance,
        "{what}: got {got}, want {want}"
    );
}

#[test]
fn advantages_match_the_reference() {
    for case in golden().advantage_cases {
        let got = advantages(&case.rewards, case.k, case.estimator, case.scale, 1e-4);
        let what = format!(
            "{:?} {:?} {:?} k={}",
            case.estimator, case.scale, case.rewards, case.k
        );
        assert_eq!(got.len(), case.advantages.len(), "{what}");
        for (g, w) in got.iter().zip(&case.advantages) {
            match (g, w) {
                (Some(g), Some(w)) => close(*g as f64, *w, &what),
                (None, None) => {}
                _ => panic!("{what}: got {got:?}, want {:?}", case.advantages),
            }
            assert!(g.is_none_or(f32::is_finite), "{what}");
        }
    }
}

/// The fixture's settings as a config the trainer would accept: every case goes through
/// `validate`, so no golden value is computed for settings a run could never use.
fn case(s: &Settings) -> GrpoConfig {
    let config = GrpoConfig {
        loss_type: s.loss_type,
        importance_sampling_level: s.level,
        kl_estimator: s.kl,
        beta: s.beta,
        epsilon: s.epsilon,
        epsilon_high: Some(s.epsilon_high),
        delta: s.delta,
        max_completion_length: s.max_completion_length,
        micro_batch_size: s.micro_batch_size,
        ..Default::default()
    };
    config
        .validate()
        .expect("a golden case the trainer accepts");
    config
}

/// The loss summed over micro-batches, as the trainer accumulates it; `logprobs` is the
/// tensor gradients are taken with respect to.
fn batch_loss(
    batch: &Batch,
    config: &GrpoConfig,
    logprobs: Tensor<2>,
    device: &Device,
) -> (Tensor<1>, Vec<f32>) {
    let micro = config.micro_batch_size;
    let weights = row_weights(
        config.loss_type,
        &batch.lengths,
        micro,
        config.max_completion_length,
    );
    let advantages: Vec<f32> = batch.advantages.iter().map(|&a| a as f32).collect();
    let rows = batch.lengths.len();
    let mut total: Option<Tensor<1>> = None;
    let mut stats = vec![0.0f32; stat::COUNT];
    for start in (0..rows).step_by(micro) {
        let end = (start + micro).min(rows);
        let part = |m: Tensor<2>| m.narrow(0, start, end - start);
        let inputs = LossInputs {
            logprobs: part(logprobs.clone()),
            old_logprobs: part(matrix(&batch.old_logprobs, device)),
            ref_logprobs: (config.beta > 0.0).then(|| part(matrix(&batch.ref_logprobs, device))),
            advantages: column(&advantages[start..end], device),
            mask: part(matrix(&batch.mask, device)),
            weights: column(&weights[start..end], device),
        };
        let out = grpo_loss(inputs, config);
        let values: Vec<f32> = out.stats.into_data().try_to_vec::<f32>().unwrap();
        for (s, v) in stats.iter_mut().zip(values) {
            *s += v;
        }
        total = Some(match total {
            Some(t) => t + out.loss,
            None => out.loss,
        });
    }
    (total.unwrap(), stats)
}

#[test]
fn every_loss_variant_matches_the_reference() {
    let golden = golden();
    let device = Device::flex();
    assert_eq!(golden.loss_cases.len(), 33);
    for c in &golden.loss_cases {
        let case = case(&c.settings);
        let logprobs = matrix(&golden.batch.logprobs, &device);
        let (loss, stats) = batch_loss(&golden.batch, &case, logprobs, &device);
        let got = loss.into_scalar::<f32>() as f64;
        let s = &c.settings;
        let what = format!(
            "{:?} {:?} {:?} beta={} delta={:?}",
            s.loss_type, s.level, s.kl, s.beta, s.delta
        );
        close(got, c.loss, &what);
        assert_eq!(stats[stat::TOKENS], 20.0, "{what}");
    }
}

#[test]
fn the_gradient_matches_finite_differences() {
    let golden = golden();
    let device = Device::flex().autodiff();
    let case = case(&golden.gradient.settings);
    let logprobs = matrix(&golden.batch.logprobs, &device).require_grad();
    let (loss, _) = batch_loss(&golden.batch, &case, logprobs.clone(), &device);
    let grads = loss.backward();
    let grad: Vec<f32> = logprobs
        .grad(&grads)
        .unwrap()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let want: Vec<f64> = golden.gradient.grad.iter().flatten().copied().collect();
    let mut nonzero = 0;
    for (i, (g, w)) in grad.iter().zip(&want).enumerate() {
        let tolerance = 1e-4 * w.abs().max(1e-2);
        assert!(
            (*g as f64 - w).abs() <= tolerance,
            "grad[{i}]: got {g}, want {w}"
        );
        if w.abs() > 1e-6 {
            nonzero += 1;
        }
    }
    // Padding gets no gradient; most real tokens do (clipped ones only through the KL term).
    assert!(nonzero >= 15, "{nonzero}");
}
