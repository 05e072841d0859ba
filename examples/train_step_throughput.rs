//! Seconds per GRPO step on DESIGN.md's benchmark workload, split into sample / score / update,
//! on every CPU backend compiled in, with the update phase's FLOP rate.
//!
//! ```text
//! cargo run --release --features ndarray,wgpu --example train_step_throughput
//! ```
//!
//! Workload: d_model 256, 4 layers, 8 heads, SwiGLU 680, byte vocabulary (259), tied; 8 prompts ×
//! K = 8 completions × 64 new tokens (EOS suppressed, so every completion is 64 tokens),
//! β = 0.04 (the reference forward included), μ = 1. Medians over steps after one warm-up step.

use grpo::data::Dataset;
use std::sync::Arc;

use grpo::data::tasks::{ArithmeticTask, Split, Task};
use grpo::policy::burn::tensor::Device;
use grpo::policy::{ByteTokenizer, CausalLm, LmConfig, Tokenizer};
use grpo::trainer::{GrpoConfig, GrpoTrainer, LossType, Schedule};
use grpo::verifiers::{Member, Sample, Score, Verifier, VerifierSet, VerifyError};

const STEPS: usize = 5;

/// The byte tokenizer without an end-of-sequence token: every completion runs to its limit.
struct NoEos;

impl Tokenizer for NoEos {
    fn encode(&self, text: &str) -> Vec<u32> {
        ByteTokenizer.encode(text)
    }
    fn decode(&self, ids: &[u32]) -> String {
        ByteTokenizer.decode(ids)
    }
    fn vocab_size(&self) -> usize {
        ByteTokenizer.vocab_size()
    }
    fn bos_id(&self) -> Option<u32> {
        ByteTokenizer.bos_id()
    }
    fn eos_ids(&self) -> &[u32] {
        &[]
    }
    fn pad_id(&self) -> u32 {
        ByteTokenizer.pad_id()
    }
}

/// A reward that varies between completions, so every group has a spread.
struct DigitShare;

impl Verifier for DigitShare {
    fn verify(&self, sample: &Sample<'_>) -> Result<Score, VerifyError> {
        let digits = sample
            .completion
            .chars()
            .filter(char::is_ascii_digit)
            .count();
        Ok(Score::reward(digits as f32 / 64.0, "share of digits"))
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

// One push per backend compiled in: a `vec![]` literal cannot hold `#[cfg]` items.
#[allow(clippy::vec_init_then_push)]
fn main() -> anyhow::Result<()> {
    let config = LmConfig::small(ByteTokenizer::VOCAB_SIZE, 256, 4, 8, 680);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "model: {} parameters; {threads} threads; {STEPS} steps after a warm-up",
        config.parameter_count()
    );
    let rows = ArithmeticTask::default().generate(Split::Train, 64, 0)?;
    let mut devices: Vec<(&str, Device)> = Vec::new();
    #[cfg(feature = "flex")]
    devices.push(("flex", Device::flex()));
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)] // burn 0.22 prefers flex; ndarray is kept for its users
    devices.push(("ndarray", Device::ndarray()));
    for (name, device) in devices {
        let model = CausalLm::new(&config, &device)?;
        let grpo = GrpoConfig {
            prompts_per_step: 8,
            num_generations: 8,
            micro_batch_size: 64,
            max_completion_length: 64,
            beta: 0.04,
            loss_type: LossType::Grpo,
            learning_rate: 1e-4,
            lr_scheduler_type: Schedule::Constant,
            max_steps: STEPS + 1,
            log_completions: 0,
            ..Default::default()
        };
        let verifiers = VerifierSet::new(vec![(Member::new("digits", DigitShare), 1.0)])?;
        let mut trainer = GrpoTrainer::new(
            model,
            Arc::new(NoEos),
            verifiers,
            Dataset::from_rows(rows.clone()),
            grpo,
            None,
        )?;
        let metrics = trainer.train()?;
        let after_warmup = &metrics[1..];
        let phase = |key: &str| median(after_warmup.iter().map(|m| m[key]).collect());
        let (sample, score, update, step) = (
            phase("time/sample_s"),
            phase("time/score_s"),
            phase("time/update_s"),
            phase("time/step_s"),
        );
        // Tokens through the update: 64 rows of (prompt + 64) positions; forward + backward ≈ 3
        // forwards, plus the reference forward; 2 FLOPs per weight per token (attention scores
        // not counted, so the rate is a lower bound).
        let prompt_len = rows.iter().map(|r| r.prompt().len()).max().unwrap_or(0) as f64;
        let positions = 64.0 * (prompt_len + 64.0);
        let weights = (config.parameter_count()) as f64;
        let flops = 4.0 * 2.0 * weights * positions;
        println!(
            "{name:>8}: step {step:.2} s = sample {sample:.2} + score {score:.4} + update {update:.2}; sampling {:.0} tok/s; update ≈ {:.1} GFLOP/s",
            64.0 * 64.0 / sample,
            flops / update / 1e9
        );
    }
    Ok(())
}
