//! The fused kernels' arithmetic on plain slices, row-major and contiguous: one pass over the
//! data where burn's composition makes three to twelve, each allocating its output. Single
//! threaded on purpose — the trainer and the sampler already run one shard per core.

/// `eˣ` in f32 without a branch or a call, so the loops below vectorise (the C library's
/// `expf` is one scalar call per element): `eˣ = 2ⁿ·eʳ` with `n = round(x/ln 2)` and
/// `|r| ≤ ln 2 / 2`, `eʳ` by Cephes' `expf` polynomial (Moshier 1992), within 2 ulp of the
/// correctly rounded value (checked against f64 in `tests`). Below −87.3 the result is 0, not
/// a denormal: a masked attention score is −∞, and denormal probabilities would make the
/// products that read them many times slower. Above 88.3 it is 2.2e38 rather than `+∞`.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two so that `n·ln 2` is exact in its first part (Cody & Waite 1980).
    const LN_2_HIGH: f32 = 0.693_359_4;
    const LN_2_LOW: f32 = -2.121_944_4e-4;
    // Adding 1.5·2²³ rounds to the nearest integer in the default rounding mode.
    const ROUND: f32 = 12_582_912.0;
    let clamped = x.clamp(-87.3, 88.3);
    // `t`'s low mantissa bits hold `n` as an integer, `t − ROUND` holds it as a float.
    let t = clamped * LOG2_E + ROUND;
    let n = t - ROUND;
    let n_bits = t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127);
    let two_to_n = f32::from_bits(n_bits << 23);
    let r = clamped - n * LN_2_HIGH - n * LN_2_LOW;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let e_r = p * r * r + r + 1.0;
    if x < -87.3 { 0.0 } else { e_r * two_to_n }
}

/// The logistic function `1/(1 + e^−x)`. No branch is needed for large `|x|`: `e^−x` is at
/// most 2.2e38 ([`exp`]), so the result tends to 0 and 1 without overflow or NaN.
#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// SwiGLU's gate: `silu(g)·u = g·σ(g)·u` (Shazeer 2020, eq. 6), element-wise.
pub fn swiglu(gate: &[f32], up: &[f32]) -> Vec<f32> {
    assert_eq!(gate.len(), up.len(), "swiglu: gate and up differ in size");
    gate.iter()
        .zip(up)
        .map(|(&g, &u)| g * sigmoid(g) * u)
        .collect()
}

/// The gradients `(∂L/∂g, ∂L/∂u)` of [`swiglu`] given `∂L/∂h`:
/// `∂h/∂g = u·σ(g)·(1 + g·(1 − σ(g)))` (the derivative of `g·σ(g)`) and `∂h/∂u = g·σ(g)`.
pub fn swiglu_backward(gate: &[f32], up: &[f32], grad: &[f32]) -> (Vec<f32>, Vec<f32>) {
    assert!(
        gate.len() == up.len() && up.len() == grad.len(),
        "swiglu_backward: sizes differ"
    );
    // Two collecting passes rather than one pushing to two vectors: pushes keep the loop
    // scalar, and the sigmoid recomputed is cheaper than that.
    let grad_gate = gate
        .iter()
        .zip(up)
        .zip(grad)
        .map(|((&g, &u), &dh)| {
            let s = sigmoid(g);
            dh * u * (s + g * s * (1.0 - s))
        })
        .collect();
    let grad_up = gate
        .iter()
        .zip(grad)
        .map(|(&g, &dh)| dh * g * sigmoid(g))
        .collect();
    (grad_gate, grad_up)
}

/// Rotary position embedding in Hugging Face's rotate-half layout, with the heads moved
/// ahead of the positions: `x` is a projection's output `[batch, seq, heads, head_dim]`, the
/// result `[batch, heads, seq, head_dim]` is `x·cos + swap_halves(x)·signed_sin` (RoFormer
/// eq. 34; `rope.rs` explains the signed table). `cos`, `signed_sin`: `[batch, seq, head_dim]`.
pub fn rotary(
    x: &[f32],
    cos: &[f32],
    signed_sin: &[f32],
    [batch, seq, heads, head_dim]: [usize; 4],
) -> Vec<f32> {
    let half = head_dim / 2;
    assert!(
        x.len() == batch * seq * heads * head_dim && cos.len() == batch * seq * head_dim,
        "rotary: sizes differ"
    );
    let mut out = Vec::with_capacity(x.len());
    for b in 0..batch {
        for h in 0..heads {
            for s in 0..seq {
                let row = &x[((b * seq + s) * heads + h) * head_dim..][..head_dim];
                let table = (b * seq + s) * head_dim;
                let (c, sn) = (&cos[table..][..head_dim], &signed_sin[table..][..head_dim]);
                let (first, second) = row.split_at(half);
                out.extend(rotate_half_row(first, second, &c[..half], &sn[..half]));
                out.extend(rotate_half_row(second, first, &c[half..], &sn[half..]));
            }
        }
    }
    out
}

/// One half of a rotated row (or of its gradient): `own·cos + other·sin`, element-wise.
fn rotate_half_row<'a>(
    own: &'a [f32],
    other: &'a [f32],
    cos: &'a [f32],
    sin: &'a [f32],
) -> impl Iterator<Item = f32> + 'a {
    own.iter()
        .zip(other)
        .zip(cos.iter().zip(sin))
        .map(|((&a, &b), (&c, &s))| a * c + b * s)
}

/// The gradient of [`rotary`] with respect to `x`, `[batch, seq, heads, head_dim]`, from
/// `∂L/∂y` `[batch, heads, seq, head_dim]`: output `i` reads input `i` (times `cos_i`) and
/// input `swap(i)` (times `sin_i`), so `∂L/∂x_j = dy_j·cos_j + dy_swap(j)·sin_swap(j)`.
pub fn rotary_backward(
    grad: &[f32],
    cos: &[f32],
    signed_sin: &[f32],
    [batch, seq, heads, head_dim]: [usize; 4],
) -> Vec<f32> {
    let half = head_dim / 2;
    assert!(
        grad.len() == batch * seq * heads * head_dim && cos.len() == batch * seq * head_dim,
        "rotary_backward: sizes differ"
    );
    let mut out = Vec::with_capacity(grad.len());
    for b in 0..batch {
        for s in 0..seq {
            let table = (b * seq + s) * head_dim;
            let (c, sn) = (&cos[table..][..head_dim], &signed_sin[table..][..head_dim]);
            for h in 0..heads {
                let dy = &grad[((b * heads + h) * seq + s) * head_dim..][..head_dim];
                let (first, second) = dy.split_at(half);
                let (sin_first, sin_second) = sn.split_at(half);
                out.extend(rotate_half_row(first, second, &c[..half], sin_second));
                out.extend(rotate_half_row(second, first, &c[half..], sin_first));
            }
        }
    }
    out
}

/// RMSNorm over rows of `gamma.len()` (Zhang & Sennrich 2019, eq. 4):
/// `y = x · r · γ` with `r = 1/√(mean(x²) + ε)`. Returns `y` and each row's `r`, which the
/// backward needs.
pub fn rms_norm(x: &[f32], gamma: &[f32], epsilon: f64) -> (Vec<f32>, Vec<f32>) {
    let d = gamma.len();
    assert!(
        d > 0 && x.len().is_multiple_of(d),
        "rms_norm: rows are not of the weight's size"
    );
    let mut y = Vec::with_capacity(x.len());
    let mut inverse_rms = Vec::with_capacity(x.len() / d);
    for row in x.chunks_exact(d) {
        let mean_square = row.iter().map(|&v| v * v).sum::<f32>() / d as f32;
        let r = 1.0 / (mean_square + epsilon as f32).sqrt();
        y.extend(row.iter().zip(gamma).map(|(&v, &g)| v * r * g));
        inverse_rms.push(r);
    }
    (y, inverse_rms)
}

/// The gradients `(∂L/∂x, ∂L/∂γ)` of [`rms_norm`] given `∂L/∂y` and its rows' `r`:
/// with `m = mean(x²)`, `∂r/∂x_j = −r³·x_j/d`, so
/// `∂L/∂x_j = r·γ_j·dy_j − x_j·r³·(1/d)·Σ_i γ_i·dy_i·x_i` and `∂L/∂γ_i = Σ_rows dy_i·x_i·r`.
pub fn rms_norm_backward(
    x: &[f32],
    gamma: &[f32],
    inverse_rms: &[f32],
    grad: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let d = gamma.len();
    assert!(
        x.len() == grad.len() && x.len() == inverse_rms.len() * d,
        "rms_norm_backward: sizes differ"
    );
    let mut grad_x = Vec::with_capacity(x.len());
    let mut grad_gamma = vec![0.0f32; d];
    for ((row, dy), &r) in x.chunks_exact(d).zip(grad.chunks_exact(d)).zip(inverse_rms) {
        let dot: f32 = row
            .iter()
            .zip(dy)
            .zip(gamma)
            .map(|((&v, &g), &w)| w * g * v)
            .sum();
        let correction = r * r * r * dot / d as f32;
        grad_x.extend(
            row.iter()
                .zip(dy)
                .zip(gamma)
                .map(|((&v, &g), &w)| r * w * g - v * correction),
        );
        for ((acc, &v), &g) in grad_gamma.iter_mut().zip(row).zip(dy) {
            *acc += g * v * r;
        }
    }
    (grad_x, grad_gamma)
}

/// A softmax over rows of `n`: `e^(x − max) / Σ e^(x − max)` (the max subtracted so no term
/// overflows). Masked entries (−∞) come out exactly 0. A row must hold one finite entry, as
/// every row of the causal mask does (a position always sees itself).
pub fn softmax(x: &[f32], n: usize) -> Vec<f32> {
    assert!(
        n > 0 && x.len().is_multiple_of(n),
        "softmax: rows are not of size n"
    );
    let mut y: Vec<f32> = Vec::with_capacity(x.len());
    for row in x.chunks_exact(n) {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let start = y.len();
        y.extend(row.iter().map(|&v| exp(v - max)));
        let exps = &mut y[start..];
        let scale = 1.0 / exps.iter().sum::<f32>();
        exps.iter_mut().for_each(|e| *e *= scale);
    }
    y
}

/// The gradient of a softmax over rows of `n`, from its output `y` and `∂L/∂y`:
/// `∂L/∂x = y ⊙ (dy − Σ_j dy_j·y_j)` (the softmax Jacobian `diag(y) − y·yᵀ`).
pub fn softmax_backward(output: &[f32], grad: &[f32], n: usize) -> Vec<f32> {
    assert!(
        n > 0 && output.len() == grad.len() && output.len().is_multiple_of(n),
        "softmax_backward: sizes differ"
    );
    let mut grad_x = Vec::with_capacity(output.len());
    for (y, dy) in output.chunks_exact(n).zip(grad.chunks_exact(n)) {
        let dot: f32 = y.iter().zip(dy).map(|(&a, &b)| a * b).sum();
        grad_x.extend(y.iter().zip(dy).map(|(&a, &b)| a * (b - dot)));
    }
    grad_x
}

#[cfg(test)]
mod tests {
    use super::exp;

    /// Units in the last place between `approx` and the correctly rounded `exact`.
    fn ulps(approx: f32, exact: f64) -> f64 {
        let rounded = exact as f32;
        let ulp = (f32::from_bits(rounded.to_bits() + 1) - rounded) as f64;
        (approx as f64 - exact).abs() / ulp
    }

    #[test]
    fn exp_is_within_two_ulps_where_it_is_normal() {
        let mut worst: (f64, f32) = (0.0, 0.0);
        let mut x = -87.0f32;
        while x < 88.2 {
            let error = ulps(exp(x), (x as f64).exp());
            if error > worst.0 {
                worst = (error, x);
            }
            x += 0.000_37;
        }
        assert!(worst.0 <= 2.0, "exp({}) is {} ulp off", worst.1, worst.0);
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn exp_saturates_instead_of_overflowing() {
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert!(exp(f32::NAN).is_nan());
        assert_eq!(exp(-1000.0), 0.0);
        assert!(exp(-87.0) > 0.0);
        assert!(exp(1000.0).is_finite() && exp(1000.0) > 2e38);
    }
}
