//! Sampler throughput on DESIGN.md's benchmark model (d_model 256, 4 layers, 8 heads, SwiGLU
//! 680, vocab 300, tied): B = 8 prompts × K completions × N new tokens, EOS suppressed so
//! every row runs its full length.
//!
//! ```text
//! cargo bench -p grpo-sampler --bench sampler
//! ```
//!
//! (To reuse the test build instead of compiling a bench profile:
//! `cargo test --release --workspace --features ndarray,wgpu --bench sampler --no-run`, then run
//! the printed executable with `--bench`.)
//!
//! Groups: `k` (K ∈ {1, 4, 8, 16} at 64 tokens), `tokens` (N ∈ {32, 64, 128} at K = 8), and
//! `strategy` (K = 8, 32 tokens: default, without prefix sharing, without the KV cache — the
//! last recomputes every sequence at every step, so it is kept short).
//! Throughput is in generated tokens (B·K·N).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use grpo_policy::burn::tensor::Device;
use grpo_policy::{ByteTokenizer, CausalLm, LmConfig, Tokenizer};
use grpo_sampler::{Sampler, SamplingConfig, Strategy};

/// The byte tokenizer without an EOS, so lengths are forced.
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
        None
    }
    fn eos_ids(&self) -> &[u32] {
        &[]
    }
    fn pad_id(&self) -> u32 {
        ByteTokenizer::PAD
    }
}

const B: usize = 8;

fn prompts() -> Vec<String> {
    (0..B)
        .map(|i| format!("What is {} + {}? Answer:", 10 + i * 7, 3 + i * 11))
        .collect()
}

fn bench(c: &mut Criterion) {
    let device = Device::flex();
    device.seed(0);
    let model = CausalLm::new(&LmConfig::small(300, 256, 4, 8, 680), &device).expect("model");
    let prompts = prompts();
    let run = |k: usize, tokens: usize, strategy: Strategy| {
        let config = SamplingConfig {
            num_generations: k,
            temperature: 1.0,
            max_new_tokens: tokens,
            seed: 1,
            ..Default::default()
        };
        Sampler { strategy }
            .sample(&model, &NoEos, &prompts, &config)
            .expect("sampled")
    };

    let mut group = c.benchmark_group("k");
    group.sample_size(10);
    for k in [1, 4, 8, 16] {
        group.throughput(Throughput::Elements((B * k * 64) as u64));
        group.bench_function(format!("K={k}"), |b| {
            b.iter(|| run(k, 64, Strategy::default()))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("tokens");
    group.sample_size(10);
    for tokens in [32, 64, 128] {
        group.throughput(Throughput::Elements((B * 8 * tokens) as u64));
        group.bench_function(format!("N={tokens}"), |b| {
            b.iter(|| run(8, tokens, Strategy::default()))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("strategy");
    group.sample_size(10);
    group.throughput(Throughput::Elements((B * 8 * 32) as u64));
    for (name, strategy) in [
        ("default", Strategy::default()),
        (
            "no_prefix_sharing",
            Strategy {
                share_prefix: false,
                ..Strategy::default()
            },
        ),
        (
            "no_kv_cache",
            Strategy {
                kv_cache: false,
                ..Strategy::default()
            },
        ),
        (
            "one_shard",
            Strategy {
                shards: 1,
                ..Strategy::default()
            },
        ),
    ] {
        group.bench_function(name, |b| b.iter(|| run(8, 32, strategy)));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
