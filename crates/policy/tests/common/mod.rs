//! Helpers shared by the policy crate's integration tests.
#![allow(dead_code)]

use burn::tensor::{Device, Int, Tensor, TensorData};
use grpo_policy::burn;

/// Every CPU backend compiled in: the tests run on each.
#[allow(clippy::vec_init_then_push)] // which pushes happen depends on the features
pub fn devices() -> Vec<(&'static str, Device)> {
    let mut devices = Vec::new();
    #[cfg(feature = "flex")]
    devices.push(("flex", Device::flex()));
    // burn 0.22 deprecates ndarray in favour of flex; we keep it working for its users.
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    devices.push(("ndarray", Device::ndarray()));
    assert!(!devices.is_empty(), "no CPU backend compiled in");
    devices
}

pub fn int_tensor(rows: &[Vec<u32>], device: &Device) -> Tensor<2, Int> {
    let width = rows[0].len();
    let flat: Vec<i64> = rows
        .iter()
        .flat_map(|r| r.iter().map(|&t| t as i64))
        .collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), width]), device)
}

pub fn floats<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The fixtures directory (`scripts/make_parity_fixtures.py` writes it).
pub fn fixtures() -> std::path::PathBuf {
    std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}
