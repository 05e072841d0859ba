//! Seconds per GRPO step on the README's benchmark workload, split into sample / score /
//! update, with the update's FLOP rate; and, with `--scaling`, how a step grows with K, the
//! completion length and the model width.
//!
//! ```text
//! cargo run --release --features ndarray,wgpu --example train_step_throughput [flex|ndarray]… [--scaling] [--shards=N] [--lora=R [--base-dtype=bf16]] [--gradient-checkpointing] [--shape=qwen2.5-0.5b] [--devices=A,B]
//! ```
//!
//! `--shape=qwen2.5-0.5b` runs instead a Qwen2.5-0.5B-shaped random model (24 layers, d 896,
//! 14/2 heads, SwiGLU 4864, vocabulary 151 936, tied) on 4 prompts × K 8 × 256 tokens in
//! micro-batches of 8 (TRL's default), one step (no warm-up), and prints the process's peak RSS:
//! one configuration per run, since the peak is the process's.
//!
//! `--gradient-checkpointing` sets `GrpoConfig::gradient_checkpointing`.
//!
//! `--lora=R` trains rank-R LoRA adapters on every projection (alpha 2R) instead of the whole
//! model; the reference is then the base with the adapters off. Its GFLOP/s figure still counts
//! a full fine-tune's arithmetic, so it reads as "full-fine-tune-equivalent". With it,
//! `--base-dtype=bf16` (or `f16`) holds the frozen base in half precision
//! (`CausalLm::with_base_dtype`).
//!
//! `--devices=A,B` spreads each step over those devices (`GrpoConfig::devices`: `flex`,
//! `ndarray`, or a `grpo worker`'s `ws://HOST:PORT`), the weights and optimizer staying on the
//! backend named first, and prints what crosses between them per step.
//!
//! `--shards=N` sets `GrpoConfig::update_shards` and `sampling_shards` (default 0: two per
//! core for the update, one per core for sampling; 1 runs the step on one thread apart from
//! burn's own parallel kernels).
//!
//! Workload: d_model 256, 4 layers, 8 heads, SwiGLU 680, byte vocabulary (259), tied; 8 prompts ×
//! K = 8 completions × 64 new tokens (EOS suppressed, so every completion is 64 tokens),
//! β = 0.04 (the reference forward included), μ = 1. Medians over steps after one warm-up step.
//! The last line per backend, `grpo step_s … sample_tokens_per_s …`, is what
//! `scripts/bench_vs_trl.sh` reads.

use grpo::data::Dataset;
use std::sync::Arc;

use grpo::data::tasks::{ArithmeticTask, Split, Task};
use grpo::policy::burn::tensor::{Device, FloatDType};
use grpo::policy::{
    ByteTokenizer, CausalLm, LmConfig, LoraConfig, ModelType, TargetModules, Tokenizer,
};
use grpo::trainer::{GrpoConfig, GrpoTrainer, LossType, Schedule};
use grpo::verifiers::{Member, Sample, Score, Verifier, VerifierSet, VerifyError};

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

/// One step's shape.
#[derive(Debug, Clone, Copy)]
struct Workload {
    model: Shape,
    prompts: usize,
    micro_batch: usize,
    k: usize,
    completion_len: usize,
    width: usize,
    intermediate: usize,
    steps: usize,
    shards: usize,
    /// LoRA rank on every projection; 0: full fine-tuning.
    lora_rank: usize,
    /// The frozen base's dtype under LoRA.
    base_dtype: FloatDType,
    gradient_checkpointing: bool,
}

impl Workload {
    /// The README's benchmark workload.
    const BENCHMARK: Workload = Workload {
        model: Shape::Benchmark,
        prompts: 8,
        micro_batch: 64,
        k: 8,
        completion_len: 64,
        width: 256,
        intermediate: 680,
        steps: 5,
        shards: 0,
        lora_rank: 0,
        base_dtype: FloatDType::F32,
        gradient_checkpointing: false,
    };

    /// Issue 15's memory workload.
    const QWEN_05B: Workload = Workload {
        model: Shape::Qwen05B,
        prompts: 4,
        micro_batch: 8,
        k: 8,
        completion_len: 256,
        width: 896,
        intermediate: 4864,
        steps: 0,
        shards: 0,
        lora_rank: 0,
        base_dtype: FloatDType::F32,
        gradient_checkpointing: false,
    };

    fn lm_config(&self) -> LmConfig {
        match self.model {
            // Byte vocabulary (259), 8 heads, tied.
            Shape::Benchmark => LmConfig::small(
                ByteTokenizer::VOCAB_SIZE,
                self.width,
                4,
                8,
                self.intermediate,
            ),
            Shape::Qwen05B => {
                let mut config = LmConfig::small(151_936, self.width, 24, 14, self.intermediate);
                config.model_type = ModelType::Qwen2;
                config.num_key_value_heads = Some(2);
                config
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Benchmark,
    Qwen05B,
}

/// Medians over the steps after the warm-up.
struct Figures {
    step: f64,
    sample: f64,
    score: f64,
    update: f64,
    sample_tokens_per_s: f64,
    update_gflops: f64,
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn measure(
    device: &Device,
    work: Workload,
    rows: &[grpo::data::Row],
    spread: &[String],
) -> anyhow::Result<Figures> {
    let prompts = work.prompts;
    let config = work.lm_config();
    device.seed(0);
    let mut model = CausalLm::new(&config, device)?;
    if work.lora_rank > 0 {
        let lora = LoraConfig {
            target_modules: TargetModules::AllLinear("all-linear".into()),
            ..LoraConfig::new(work.lora_rank, 2.0 * work.lora_rank as f64, &[])
        };
        model = model.with_lora(&lora)?.with_base_dtype(work.base_dtype)?;
    }
    let grpo = GrpoConfig {
        prompts_per_step: prompts,
        num_generations: work.k,
        micro_batch_size: work.micro_batch,
        max_completion_length: work.completion_len,
        beta: 0.04,
        loss_type: LossType::Grpo,
        learning_rate: 1e-4,
        lr_scheduler_type: Schedule::Constant,
        max_steps: work.steps + 1,
        log_completions: 0,
        update_shards: work.shards,
        sampling_shards: work.shards,
        gradient_checkpointing: work.gradient_checkpointing,
        ..Default::default()
    };
    let verifiers = VerifierSet::new(vec![(Member::new("digits", DigitShare), 1.0)])?;
    let mut trainer = GrpoTrainer::new(
        model,
        Arc::new(NoEos),
        verifiers,
        Dataset::from_rows(rows.to_vec()),
        grpo,
        None,
    )?
    .with_devices(spread.to_vec());
    let metrics = trainer.train()?;
    // `steps: 0` measures the first step itself (the 0.5 B shape: one step is minutes).
    let after_warmup = if work.steps == 0 {
        &metrics[..]
    } else {
        &metrics[1..]
    };
    let phase = |key: &str| median(after_warmup.iter().map(|m| m[key]).collect());
    let (sample, update) = (phase("time/sample_s"), phase("time/update_s"));
    // Positions through the update: every row is (prompt + completion); forward + backward ≈ 3
    // forwards, plus the reference forward; 2 FLOPs per weight per position (attention scores
    // not counted, so the rate is a lower bound). The prompt is counted once per row, as an
    // implementation without prompt sharing computes it, so rates compare across versions.
    let prompt_len = rows.iter().map(|r| r.prompt().len()).max().unwrap_or(0) as f64;
    let completions = (prompts * work.k) as f64;
    let positions = completions * (prompt_len + work.completion_len as f64);
    let flops = 4.0 * 2.0 * config.parameter_count() as f64 * positions;
    Ok(Figures {
        step: phase("time/step_s"),
        sample,
        score: phase("time/score_s"),
        update,
        sample_tokens_per_s: completions * work.completion_len as f64 / sample,
        update_gflops: flops / update / 1e9,
    })
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let scaling = args.iter().any(|a| a == "--scaling");
    let wanted =
        |name: &str| !args.iter().any(|a| !a.starts_with("--")) || args.iter().any(|a| a == name);
    let mut devices: Vec<(&str, Device)> = Vec::new();
    #[cfg(feature = "flex")]
    if wanted("flex") {
        devices.push(("flex", Device::flex()));
    }
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)] // burn 0.22 prefers flex; ndarray is kept for its users
    if wanted("ndarray") {
        devices.push(("ndarray", Device::ndarray()));
    }
    anyhow::ensure!(!devices.is_empty(), "no such backend compiled in: {args:?}");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rows = ArithmeticTask::default().generate(Split::Train, 64, 0)?;
    let shards = match args.iter().find_map(|a| a.strip_prefix("--shards=")) {
        Some(n) => n.parse()?,
        None => 0,
    };
    let lora_rank = match args.iter().find_map(|a| a.strip_prefix("--lora=")) {
        Some(r) => r.parse()?,
        None => 0,
    };
    let base_dtype = match args.iter().find_map(|a| a.strip_prefix("--base-dtype=")) {
        None | Some("f32") => FloatDType::F32,
        Some("bf16") => FloatDType::BF16,
        Some("f16") => FloatDType::F16,
        Some(other) => anyhow::bail!("--base-dtype={other}: expected f32, bf16 or f16"),
    };
    anyhow::ensure!(
        base_dtype == FloatDType::F32 || lora_rank > 0,
        "--base-dtype needs --lora=R (only a frozen base may be held below f32)"
    );
    let shape = match args.iter().find_map(|a| a.strip_prefix("--shape=")) {
        None => Workload::BENCHMARK,
        Some("qwen2.5-0.5b") => Workload::QWEN_05B,
        Some(other) => anyhow::bail!("--shape={other}: the only other shape is qwen2.5-0.5b"),
    };
    let work = Workload {
        shards,
        lora_rank,
        base_dtype,
        gradient_checkpointing: args.iter().any(|a| a == "--gradient-checkpointing"),
        ..shape
    };
    let spread: Vec<String> = args
        .iter()
        .find_map(|a| a.strip_prefix("--devices="))
        .map(|list| list.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let config = work.lm_config();
    if !spread.is_empty() {
        // What crosses between this process and each other device per step, by the code's
        // schedule (f32): the weights once for sampling and once per update pass (μ = 1), the
        // gradients once per pass (a full fine-tune), the reference once per run. The sampler
        // chooses tokens on the device (ids and log-probs come back), and the operations
        // themselves travel as burn's IR: on top, measured in the README.
        let weights = config.parameter_count() as f64 * 4.0 / 1e6;
        println!(
            "data parallel over {}: per other device and step ≈ {:.1} MB of weights and \
             gradients ({weights:.1} MB out twice, back once), and {weights:.1} MB of reference \
             weights once",
            spread.join(", "),
            3.0 * weights
        );
    }
    println!(
        "model: {} parameters{}; {threads} threads; {} steps after a warm-up",
        config.parameter_count(),
        match lora_rank {
            0 => String::new(),
            r => format!(", LoRA r {r} on every projection, base in {base_dtype:?}"),
        },
        work.steps
    );
    for (name, device) in &devices {
        if scaling {
            print_scaling(name, device, work, &rows)?;
            continue;
        }
        let f = measure(device, work, &rows, &spread)?;
        println!(
            "{name:>8}: step {:.2} s = sample {:.2} + score {:.4} + update {:.2}; sampling {:.0} tok/s; update ≈ {:.1} GFLOP/s",
            f.step, f.sample, f.score, f.update, f.sample_tokens_per_s, f.update_gflops
        );
        println!(
            "grpo backend {name} step_s {:.3} sample_s {:.3} update_s {:.3} sample_tokens_per_s {:.0}",
            f.step, f.sample, f.update, f.sample_tokens_per_s
        );
        if let Some(peak) = peak_rss_gib() {
            println!("{name:>8}: peak RSS {peak:.2} GiB (the whole process so far)");
        }
    }
    Ok(())
}

/// The process's peak resident set (`VmHWM`), on Linux.
fn peak_rss_gib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / (1024.0 * 1024.0))
}

/// Step time against K, completion length and width (4 layers), one axis at a time from the
/// benchmark workload; 3 measured steps each. A Markdown table.
fn print_scaling(
    name: &str,
    device: &Device,
    work: Workload,
    rows: &[grpo::data::Row],
) -> anyhow::Result<()> {
    let base = Workload { steps: 3, ..work };
    let mut cases: Vec<(String, Workload)> = Vec::new();
    for k in [2, 4, 8, 16] {
        cases.push((format!("K = {k}"), Workload { k, ..base }));
    }
    for completion_len in [32, 64, 128, 256] {
        cases.push((
            format!("completion {completion_len}"),
            Workload {
                completion_len,
                ..base
            },
        ));
    }
    for width in [256, 512, 1024] {
        // SwiGLU width ≈ 8/3·d, as the benchmark model's 680 for 256.
        let intermediate = width * 680 / 256;
        cases.push((
            format!("d_model {width}"),
            Workload {
                width,
                intermediate,
                ..base
            },
        ));
    }
    println!("\n{name}: | workload | step s | sample s | update s | update GFLOP/s |");
    println!("{name}: |---|---|---|---|---|");
    for (label, work) in cases {
        let f = measure(device, work, rows, &[])?;
        println!(
            "{name}: | {label} | {:.2} | {:.2} | {:.2} | {:.1} |",
            f.step, f.sample, f.update, f.update_gflops
        );
    }
    Ok(())
}
