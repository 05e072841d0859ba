//! Rotary position embedding in Hugging Face's *rotate-half* layout.
//!
//! burn's `RotaryEncoding` rotates interleaved pairs `(x0, x1), (x2, x3), …`; Hugging Face's
//! Llama/Qwen2 rotate the two halves `(x_i, x_{i+d/2})`. The checkpoints we load are trained
//! with the latter, so this file implements it (RoFormer eq. 34 with HF's channel order).

use burn::tensor::{Device, Tensor, TensorData};

/// `cos` and signed `sin` tables for the given positions, shaped `[batch, 1, seq, head_dim]`
/// so they broadcast over heads. `positions` is row-major `[batch, seq]`.
///
/// Computed in f32 as `transformers` does: `inv_freq_i = 1 / theta^(2i/d)`,
/// `angle = position · inv_freq_i`, the angle row repeated twice (`cat(freqs, freqs)`). The
/// first half of each `sin` row is negated: `rotate_half(x)·sin = swap_halves(x)·[−sin, sin]`,
/// which spares [`apply`] a negation pass.
pub fn tables(
    positions: &[usize],
    batch: usize,
    head_dim: usize,
    theta: f64,
    device: &Device,
) -> (Tensor<4>, Tensor<4>) {
    let seq = positions.len() / batch.max(1);
    let half = head_dim / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| 1.0 / (theta as f32).powf((2 * i) as f32 / head_dim as f32))
        .collect();
    let mut cos = Vec::with_capacity(positions.len() * head_dim);
    let mut sin = Vec::with_capacity(positions.len() * head_dim);
    for &position in positions {
        for sign in [-1.0f32, 1.0] {
            for &f in &inv_freq {
                let angle = position as f32 * f;
                cos.push(angle.cos());
                sin.push(sign * angle.sin());
            }
        }
    }
    let shape = [batch, 1, seq, head_dim];
    (
        Tensor::from_data(TensorData::new(cos, shape), device),
        Tensor::from_data(TensorData::new(sin, shape), device),
    )
}

/// `x · cos + rotate_half(x) · sin`, with `rotate_half([a, b]) = [−b, a]` over the last axis,
/// computed as `x · cos + [b, a] · signed_sin` ([`tables`]). `x`: `[batch, heads, seq, head_dim]`.
pub fn apply(x: Tensor<4>, cos: &Tensor<4>, signed_sin: &Tensor<4>) -> Tensor<4> {
    let [_, _, _, head_dim] = x.dims();
    let half = head_dim / 2;
    let first = x.clone().narrow(3, 0, half);
    let second = x.clone().narrow(3, half, half);
    let swapped = Tensor::cat(vec![second, first], 3);
    x * cos.clone() + swapped * signed_sin.clone()
}
