//! Forward and decode throughput of the benchmark model (DESIGN.md's workload shape), on every
//! CPU backend compiled in, next to the matmul rate burn reaches on this machine.
//!
//! ```text
//! cargo run --release --features ndarray,wgpu --example policy_throughput
//! ```
//!
//! Figures are medians over repeated runs after a warm-up; the model has random weights (speed
//! does not depend on them).

use std::time::Instant;

use grpo::policy::burn::tensor::{Device, Int, Tensor, TensorData};
use grpo::policy::{CausalLm, LanguageModel, LmConfig};

const BATCH: usize = 64;
const PROMPT: usize = 16;
const NEW: usize = 32;
const REPEATS: usize = 5;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Median seconds of `run` over [`REPEATS`] runs after one warm-up.
fn time(mut run: impl FnMut()) -> f64 {
    run();
    median(
        (0..REPEATS)
            .map(|_| {
                let start = Instant::now();
                run();
                start.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn tokens(batch: usize, seq: usize, device: &Device) -> Tensor<2, Int> {
    let ids: Vec<i64> = (0..batch * seq).map(|i| (i * 7 % 251) as i64).collect();
    Tensor::from_data(TensorData::new(ids, [batch, seq]), device)
}

fn main() {
    let config = LmConfig::small(300, 256, 4, 8, 680);
    let parameters = config.parameter_count();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "model: d_model 256, 4 layers, 8 heads, SwiGLU 680, vocab 300, tied: {parameters} parameters; {threads} threads"
    );
    let mut devices: Vec<(&str, Device)> = Vec::new();
    #[cfg(feature = "flex")]
    devices.push(("flex", Device::flex()));
    // burn 0.22 deprecates ndarray in favour of flex; we keep it working for its users.
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    devices.push(("ndarray", Device::ndarray()));
    for (name, device) in devices {
        let n = 512;
        let a = Tensor::<2>::ones([n, n], &device);
        let matmul_s = time(|| {
            let _ = a.clone().matmul(a.clone()).into_data();
        });
        let matmul_gflops = 2.0 * (n * n * n) as f64 / matmul_s / 1e9;

        let model = CausalLm::new(&config, &device).unwrap();
        let full = PROMPT + NEW;
        let prefill_s = time(|| {
            let mut cache = model.new_cache(vec![0; BATCH]);
            let _ = model
                .forward(tokens(BATCH, full, &device), &mut cache)
                .into_data();
        });
        let prefill_tps = (BATCH * full) as f64 / prefill_s;

        let cached_s = time(|| {
            let mut cache = model.new_cache(vec![0; BATCH]);
            let _ = model.forward(tokens(BATCH, PROMPT, &device), &mut cache);
            for _ in 0..NEW {
                let _ = model
                    .forward(tokens(BATCH, 1, &device), &mut cache)
                    .into_data();
            }
        });
        let uncached_s = time(|| {
            for step in 0..NEW {
                let mut cache = model.new_cache(vec![0; BATCH]);
                let _ = model
                    .forward(tokens(BATCH, PROMPT + step + 1, &device), &mut cache)
                    .into_data();
            }
        });
        let decode_tps = (BATCH * NEW) as f64 / cached_s;
        let uncached_tps = (BATCH * NEW) as f64 / uncached_s;
        // A forward costs about 2 FLOPs per parameter per token (attention aside).
        let prefill_gflops = 2.0 * parameters as f64 * prefill_tps / 1e9;
        println!(
            "{name:>8}: matmul 512³ {matmul_gflops:.1} GFLOP/s | prefill {BATCH}×{full}: {prefill_tps:.0} tok/s (≈{prefill_gflops:.1} GFLOP/s) | \
             decode {BATCH}×{NEW} after {PROMPT}: {decode_tps:.0} tok/s with KV cache, {uncached_tps:.0} tok/s recomputing"
        );
    }
}
