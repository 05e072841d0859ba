//! wgpu smoke test: the same model on the GPU backend gives the CPU's logits. Runs when a
//! wgpu adapter exists (a GPU, or Debian's lavapipe software Vulkan: `apt-get install
//! mesa-vulkan-drivers`) and says it skipped otherwise.
#![cfg(feature = "wgpu")]

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use common::{devices, floats, int_tensor, max_abs_diff};
use grpo_policy::burn::tensor::{Device, DeviceKind, Tensor};
use grpo_policy::{CausalLm, LanguageModel, LmConfig};

/// A wgpu device that can run an operation, or `None` (no adapter on this machine).
fn wgpu_device() -> Option<Device> {
    let attempt = catch_unwind(AssertUnwindSafe(|| {
        let device = Device::wgpu(DeviceKind::DefaultDevice);
        let sum = floats(Tensor::<1>::ones([4], &device).sum());
        (sum == [4.0]).then_some(device)
    }));
    attempt.ok().flatten()
}

#[test]
fn wgpu_forward_matches_the_cpu() {
    let Some(gpu) = wgpu_device() else {
        eprintln!("skipped: no wgpu adapter on this machine");
        return;
    };
    let cpu = devices()[0].1.clone();
    // Grouped-query attention (the composed path) and plain multi-head attention (burn's
    // fused attention for the prefill); the decode step writes into a preallocated cache.
    for kv_heads in [2, 4] {
        let mut config = LmConfig::small(50, 32, 2, 4, 64);
        config.num_key_value_heads = Some(kv_heads);
        cpu.seed(3);
        let on_cpu = CausalLm::new(&config, &cpu).unwrap();
        let dir = tempfile::tempdir().unwrap();
        on_cpu.save(dir.path()).unwrap();
        let on_gpu = CausalLm::load(dir.path(), &gpu).unwrap();

        let prompt = vec![vec![3, 1, 4, 1, 5, 9]];
        let mut cpu_cache = on_cpu.new_cache(vec![0]);
        let mut gpu_cache = on_gpu.new_decoding_cache(vec![0], 8);
        let expected = floats(on_cpu.forward(int_tensor(&prompt, &cpu), &mut cpu_cache));
        let got = floats(on_gpu.forward(int_tensor(&prompt, &gpu), &mut gpu_cache));
        let diff = max_abs_diff(&got, &expected);
        assert!(
            diff < 1e-3,
            "{kv_heads} KV heads, prefill: max abs diff {diff}"
        );

        let step = vec![vec![2]];
        let expected = floats(on_cpu.forward(int_tensor(&step, &cpu), &mut cpu_cache));
        let got = floats(on_gpu.forward(int_tensor(&step, &gpu), &mut gpu_cache));
        let diff = max_abs_diff(&got, &expected);
        assert!(
            diff < 1e-3,
            "{kv_heads} KV heads, cached decode step: max abs diff {diff}"
        );
    }
}
