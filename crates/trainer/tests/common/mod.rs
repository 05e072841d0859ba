//! Helpers the trainer's test files share.
#![allow(dead_code)] // each test file uses its own subset

use grpo_data::{Dataset, Row};
use grpo_policy::burn::module::{Module, ModuleVisitor, Param};
use grpo_policy::burn::tensor::{Device, Tensor};
use grpo_policy::{ByteTokenizer, CausalLm, LmConfig};
use grpo_trainer::Metrics;
use grpo_verifiers::{Member, Sample, Score, Verifier, VerifierSet, VerifyError};

/// Reward 1 when the completion starts with the digit 7.
pub struct SaysSeven;

impl Verifier for SaysSeven {
    fn verify(&self, sample: &Sample<'_>) -> Result<Score, VerifyError> {
        Ok(Score::binary(
            sample.completion.starts_with('7'),
            "starts with 7",
        ))
    }
}

pub fn verifiers() -> VerifierSet {
    VerifierSet::new(vec![(Member::new("seven", SaysSeven), 1.0)]).unwrap()
}

/// Reward the completion's first byte / 255: unlike [`SaysSeven`] (1 in 259 at chance), almost
/// every group of a near-uniform policy has unequal rewards, so a test that needs the weights to
/// move gets a learning signal from its first step whatever the seed, the initial weights or the
/// CPU's rounding. (Chance rewards had made such checks depend on all three: CI drew no
/// rewarded completion where this machine did.)
pub struct FirstByte;

impl Verifier for FirstByte {
    fn verify(&self, sample: &Sample<'_>) -> Result<Score, VerifyError> {
        let byte = sample.completion.bytes().next().unwrap_or(0);
        Ok(Score::reward(f32::from(byte) / 255.0, "first byte / 255"))
    }
}

pub fn graded_verifiers() -> VerifierSet {
    VerifierSet::new(vec![(Member::new("first_byte", FirstByte), 1.0)]).unwrap()
}

/// Six prompts asking for a digit.
pub fn digit_prompts() -> Dataset {
    let rows = [
        "Say a digit:",
        "Digit?",
        "Pick one:",
        "Your number:",
        "Go:",
        "Answer:",
    ]
    .iter()
    .map(|p| Row::from_prompt(*p))
    .collect();
    Dataset::from_rows(rows)
}

pub fn tiny_model(seed: u64) -> CausalLm {
    // The device's generator is shared by the tests running beside this one: seeding it and
    // drawing the weights under one lock makes a seed mean one model.
    static SEEDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _seeding = SEEDING.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex();
    device.seed(seed);
    CausalLm::new(
        &LmConfig::small(ByteTokenizer::VOCAB_SIZE, 32, 1, 2, 64),
        &device,
    )
    .unwrap()
}

/// Numbers that do not depend on the clock.
pub fn timeless(m: &Metrics) -> Vec<(String, u64)> {
    m.iter()
        .filter(|(k, _)| !k.starts_with("time/") && !k.starts_with("throughput/"))
        .map(|(k, v)| (k.clone(), v.to_bits()))
        .collect()
}

/// Every parameter's values, in visiting order.
pub fn weights(model: &CausalLm) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0
                .push(param.val().into_data().try_to_vec::<f32>().unwrap());
        }
    }
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    collect.0
}

pub fn apart_relative_to_update(before: &[Vec<f32>], a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    let (mut moved, mut apart) = (0.0f64, 0.0f64);
    for ((a, b), start) in a.iter().zip(b).zip(before) {
        for ((x, y), w) in a.iter().zip(b).zip(start) {
            moved += f64::from(x - w).powi(2);
            apart += f64::from(x - y).powi(2);
        }
    }
    assert!(moved > 0.0, "the update did not move the weights");
    (apart / moved).sqrt()
}
