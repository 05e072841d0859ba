//! The fused kernels' arithmetic on plain slices, row-major and contiguous: one pass over the
//! data where burn's composition makes three to twelve, each allocating its output. Single
//! threaded on purpose — the trainer and the sampler already run one shard per core. Each is
//! compiled for the CPU's widest vector unit ([`vectorised!`]). Their loops are `for` loops
//! and their helpers `#[inline(always)]`: a closure handed to the standard library's
//! `collect`, `extend` or `for_each` becomes a function of its own, compiled for the baseline
//! target, and the wider build would not reach it.

use super::vectorised::vectorised;

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

vectorised! {
    /// SwiGLU's gate: `silu(g)·u = g·σ(g)·u` (Shazeer 2020, eq. 6), element-wise.
    pub fn swiglu(gate: &[f32], up: &[f32]) -> Vec<f32> {
        assert_eq!(gate.len(), up.len(), "swiglu: gate and up differ in size");
        let mut out = vec![0.0f32; gate.len()];
        for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
            *o = g * sigmoid(g) * u;
        }
        out
    }
}

vectorised! {
    /// The gradients `(∂L/∂g, ∂L/∂u)` of [`swiglu`] given `∂L/∂h`:
    /// `∂h/∂g = u·σ(g)·(1 + g·(1 − σ(g)))` (the derivative of `g·σ(g)`) and `∂h/∂u = g·σ(g)`.
    pub fn swiglu_backward(gate: &[f32], up: &[f32], grad: &[f32]) -> (Vec<f32>, Vec<f32>) {
        assert!(
            gate.len() == up.len() && up.len() == grad.len(),
            "swiglu_backward: sizes differ"
        );
        let mut grad_gate = vec![0.0f32; gate.len()];
        let mut grad_up = vec![0.0f32; gate.len()];
        let outputs = grad_gate.iter_mut().zip(&mut grad_up);
        for (((dg, du), &g), (&u, &dh)) in outputs.zip(gate).zip(up.iter().zip(grad)) {
            let s = sigmoid(g);
            *dg = dh * u * (s + g * s * (1.0 - s));
            *du = dh * g * s;
        }
        (grad_gate, grad_up)
    }
}

vectorised! {
    /// Rotary position embedding in Hugging Face's rotate-half layout, with the heads moved
    /// ahead of the positions: `x` is a projection's output `[batch, seq, heads, head_dim]`
    /// (`dims`), the result `[batch, heads, seq, head_dim]` is `x·cos + swap_halves(x)·signed_sin`
    /// (RoFormer eq. 34; `rope.rs` explains the signed table). `cos`, `signed_sin`:
    /// `[batch, seq, head_dim]`.
    pub fn rotary(x: &[f32], cos: &[f32], signed_sin: &[f32], dims: [usize; 4]) -> Vec<f32> {
        let [batch, seq, heads, head_dim] = dims;
        let half = rotary_half(x.len(), cos.len(), dims, "rotary");
        let mut out = vec![0.0f32; x.len()];
        let mut rows = out.chunks_exact_mut(head_dim);
        for b in 0..batch {
            for h in 0..heads {
                for s in 0..seq {
                    let row = &x[((b * seq + s) * heads + h) * head_dim..][..head_dim];
                    let table = (b * seq + s) * head_dim;
                    let (c, sn) = (&cos[table..][..head_dim], &signed_sin[table..][..head_dim]);
                    let (first, second) = row.split_at(half);
                    let (out_first, out_second) = rows.next().unwrap().split_at_mut(half);
                    rotate_half_row(out_first, first, second, &c[..half], &sn[..half]);
                    rotate_half_row(out_second, second, first, &c[half..], &sn[half..]);
                }
            }
        }
        out
    }
}

/// Half the head size, once the rows (`x`'s or the gradient's) and the tables are checked
/// against `dims` `[batch, seq, heads, head_dim]`.
fn rotary_half(rows: usize, tables: usize, dims: [usize; 4], what: &str) -> usize {
    let [batch, seq, heads, head_dim] = dims;
    assert!(
        rows == batch * seq * heads * head_dim && tables == batch * seq * head_dim,
        "{what}: sizes differ"
    );
    head_dim / 2
}

/// One half of a rotated row (or of its gradient) into `out`: `own·cos + other·sin`,
/// element-wise.
#[inline(always)]
fn rotate_half_row(out: &mut [f32], own: &[f32], other: &[f32], cos: &[f32], sin: &[f32]) {
    for ((o, (&a, &b)), (&c, &s)) in out
        .iter_mut()
        .zip(own.iter().zip(other))
        .zip(cos.iter().zip(sin))
    {
        *o = a * c + b * s;
    }
}

vectorised! {
    /// The gradient of [`rotary`] with respect to `x`, `[batch, seq, heads, head_dim]`, from
    /// `∂L/∂y` `[batch, heads, seq, head_dim]`: output `i` reads input `i` (times `cos_i`) and
    /// input `swap(i)` (times `sin_i`), so `∂L/∂x_j = dy_j·cos_j + dy_swap(j)·sin_swap(j)`.
    pub fn rotary_backward(
        grad: &[f32],
        cos: &[f32],
        signed_sin: &[f32],
        dims: [usize; 4],
    ) -> Vec<f32> {
        let [batch, seq, heads, head_dim] = dims;
        let half = rotary_half(grad.len(), cos.len(), dims, "rotary_backward");
        let mut out = vec![0.0f32; grad.len()];
        let mut rows = out.chunks_exact_mut(head_dim);
        for b in 0..batch {
            for s in 0..seq {
                let table = (b * seq + s) * head_dim;
                let (c, sn) = (&cos[table..][..head_dim], &signed_sin[table..][..head_dim]);
                for h in 0..heads {
                    let dy = &grad[((b * heads + h) * seq + s) * head_dim..][..head_dim];
                    let (first, second) = dy.split_at(half);
                    let (sin_first, sin_second) = sn.split_at(half);
                    let (out_first, out_second) = rows.next().unwrap().split_at_mut(half);
                    rotate_half_row(out_first, first, second, &c[..half], sin_second);
                    rotate_half_row(out_second, second, first, &c[half..], sin_first);
                }
            }
        }
        out
    }
}

vectorised! {
    /// RMSNorm over rows of `gamma.len()` (Zhang & Sennrich 2019, eq. 4):
    /// `y = x · r · γ` with `r = 1/√(mean(x²) + ε)`. Returns `y` and each row's `r`, which the
    /// backward needs.
    pub fn rms_norm(x: &[f32], gamma: &[f32], epsilon: f64) -> (Vec<f32>, Vec<f32>) {
        let d = gamma.len();
        assert!(
            d > 0 && x.len().is_multiple_of(d),
            "rms_norm: rows are not of the weight's size"
        );
        let mut y = vec![0.0f32; x.len()];
        let mut inverse_rms = vec![0.0f32; x.len() / d];
        for ((row, y), r) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)).zip(&mut inverse_rms) {
            let mean_square = dot(row, row) / d as f32;
            *r = 1.0 / (mean_square + epsilon as f32).sqrt();
            for ((y, &v), &g) in y.iter_mut().zip(row).zip(gamma) {
                *y = v * *r * g;
            }
        }
        (y, inverse_rms)
    }
}

vectorised! {
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
        let mut grad_x = vec![0.0f32; x.len()];
        let mut grad_gamma = vec![0.0f32; d];
        let rows = x.chunks_exact(d).zip(grad.chunks_exact(d));
        for (((row, dy), &r), grad_x) in rows.zip(inverse_rms).zip(grad_x.chunks_exact_mut(d)) {
            // ∂L/∂y·γ, then the correction through r
            for ((w, &g), &gamma) in grad_x.iter_mut().zip(dy).zip(gamma) {
                *w = gamma * g;
            }
            let correction = r * r * r * dot(grad_x, row) / d as f32;
            for (w, &v) in grad_x.iter_mut().zip(row) {
                *w = r * *w - v * correction;
            }
            for ((acc, &v), &g) in grad_gamma.iter_mut().zip(row).zip(dy) {
                *acc += g * v * r;
            }
        }
        (grad_x, grad_gamma)
    }
}

vectorised! {
    /// A softmax over rows of `n`: `e^(x − max) / Σ e^(x − max)` (the max subtracted so no
    /// term overflows). Masked entries (−∞) come out exactly 0. A row must hold one finite
    /// entry, as every row of the causal mask does (a position always sees itself).
    pub fn softmax(x: &[f32], n: usize) -> Vec<f32> {
        assert!(
            n > 0 && x.len().is_multiple_of(n),
            "softmax: rows are not of size n"
        );
        let mut y = x.to_vec();
        for row in y.chunks_exact_mut(n) {
            softmax_in_place(row);
        }
        y
    }
}

/// [`softmax`] of one row, in place.
#[inline(always)]
fn softmax_in_place(row: &mut [f32]) {
    let max = maximum(row);
    for v in row.iter_mut() {
        *v = exp(*v - max);
    }
    let scale = 1.0 / sum(row);
    for e in row.iter_mut() {
        *e *= scale;
    }
}

/// The sizes of one [`attention`]: queries `[batch, heads, seq, head_dim]`, keys and values
/// `[batch, kv_heads, total, head_dim]`, the additive mask `[batch, seq, total]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttentionDims {
    pub batch: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub seq: usize,
    pub total: usize,
    pub head_dim: usize,
}

impl AttentionDims {
    /// `total` rounded up to whole vectors: the probabilities' row length.
    pub fn padded_total(&self) -> usize {
        self.total.next_multiple_of(LANES)
    }

    fn check(&self, q: usize, kv: usize, what: &str) {
        let rows = self.batch * self.head_dim;
        assert!(
            self.kv_heads > 0
                && self.heads.is_multiple_of(self.kv_heads)
                && q == rows * self.heads * self.seq
                && kv == rows * self.kv_heads * self.total,
            "{what}: sizes differ"
        );
    }
}

vectorised! {
    /// Scaled dot-product attention, `softmax(q·kᵀ + mask)·v` (Vaswani et al. 2017, eq. 1),
    /// with `q` already divided by √head_dim. Query head `h` reads key/value head
    /// `h / (heads / kv_heads)` (grouped-query attention, Ainslie et al. 2023). Returns the
    /// context `[batch, seq, heads·head_dim]` (the heads side by side, as the output
    /// projection reads them) and the probabilities `[batch, heads, seq, padded(total)]`,
    /// which [`attention_backward`] reads; the rows are padded to whole vectors with zeros.
    pub fn attention(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        mask: &[f32],
        dims: AttentionDims,
    ) -> (Vec<f32>, Vec<f32>) {
        dims.check(q.len(), k.len(), "attention");
        let AttentionDims {
            batch,
            heads,
            kv_heads,
            seq,
            total,
            head_dim: hd,
        } = dims;
        assert!(
            v.len() == k.len() && mask.len() == batch * seq * total,
            "attention: sizes differ"
        );
        let (group, width) = (heads / kv_heads, dims.padded_total());
        let mut context = vec![0.0f32; batch * seq * heads * hd];
        let mut probabilities = vec![0.0f32; batch * heads * seq * width];
        let mut keys_t = vec![0.0f32; hd * width]; // [head_dim, width], zeros past `total`
        for b in 0..batch {
            let mask = &mask[b * seq * total..][..seq * total];
            for kv_head in 0..kv_heads {
                let at = (b * kv_heads + kv_head) * total * hd;
                let (keys, values) = (&k[at..][..total * hd], &v[at..][..total * hd]);
                transpose(keys, total, hd, &mut keys_t, width);
                for h in kv_head * group..(kv_head + 1) * group {
                    let scores = &mut probabilities[(b * heads + h) * seq * width..][..seq * width];
                    // scores = mask + q·kᵀ   [seq, width]; a padding column is −∞ + 0
                    for (row, mask) in scores.chunks_exact_mut(width).zip(mask.chunks_exact(total)) {
                        row[..total].copy_from_slice(mask);
                        for padding in &mut row[total..] {
                            *padding = f32::NEG_INFINITY;
                        }
                    }
                    let query = &q[(b * heads + h) * seq * hd..][..seq * hd];
                    product(Matrix::by_rows(query, seq, hd, hd), &keys_t, width, scores, width, width, true);
                    for row in scores.chunks_exact_mut(width) {
                        softmax_in_place(row);
                    }
                    // context rows (b, ·, h) = P·v   [seq, head_dim], rows heads·head_dim apart
                    let p = Matrix::by_rows(scores, seq, total, width);
                    let out = &mut context[(b * seq * heads + h) * hd..];
                    product(p, values, hd, out, heads * hd, hd, false);
                }
            }
        }
        (context, probabilities)
    }
}

vectorised! {
    /// The gradients `(∂L/∂q, ∂L/∂k, ∂L/∂v)` of [`attention`] from its probabilities `P` and
    /// `∂L/∂context` `[batch, seq, heads·head_dim]`. Per query head, with `dP = dO·vᵀ`, the
    /// softmax's Jacobian gives `dS_ij = P_ij·(dP_ij − Σ_l P_il·dP_il)`; then `∂L/∂q = dS·k`,
    /// `∂L/∂k = dSᵀ·q` and `∂L/∂v = Pᵀ·dO`, the last two summed over the query heads that
    /// share a key/value head.
    pub fn attention_backward(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        probabilities: &[f32],
        grad: &[f32],
        dims: AttentionDims,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        dims.check(q.len(), k.len(), "attention_backward");
        let AttentionDims {
            batch,
            heads,
            kv_heads,
            seq,
            total,
            head_dim: hd,
        } = dims;
        let (group, width) = (heads / kv_heads, dims.padded_total());
        assert!(
            v.len() == k.len()
                && grad.len() == q.len()
                && probabilities.len() == batch * heads * seq * width,
            "attention_backward: sizes differ"
        );
        let mut grad_q = vec![0.0f32; q.len()];
        let (mut grad_k, mut grad_v) = (vec![0.0f32; k.len()], vec![0.0f32; v.len()]);
        let mut values_t = vec![0.0f32; hd * width]; // [head_dim, width], zeros past `total`
        let mut grad_scores = vec![0.0f32; seq * width];
        for b in 0..batch {
            for kv_head in 0..kv_heads {
                let at = (b * kv_heads + kv_head) * total * hd;
                let (keys, values) = (&k[at..][..total * hd], &v[at..][..total * hd]);
                let grad_keys = &mut grad_k[at..][..total * hd];
                let grad_values = &mut grad_v[at..][..total * hd];
                transpose(values, total, hd, &mut values_t, width);
                for h in kv_head * group..(kv_head + 1) * group {
                    let p = &probabilities[(b * heads + h) * seq * width..][..seq * width];
                    let query = &q[(b * heads + h) * seq * hd..][..seq * hd];
                    // dO: rows (b, ·, h) of the gradient, heads·head_dim apart
                    let grad_out = &grad[(b * seq * heads + h) * hd..];
                    let d_out = Matrix::by_rows(grad_out, seq, hd, heads * hd);
                    // dP = dO·vᵀ   [seq, width]
                    product(d_out, &values_t, width, &mut grad_scores, width, width, false);
                    // dS = P ⊙ (dP − rowsum(P ⊙ dP)); 0 wherever P is
                    for (ds, p) in grad_scores.chunks_exact_mut(width).zip(p.chunks_exact(width)) {
                        let dot = dot(p, ds);
                        for (d, &p) in ds.iter_mut().zip(p) {
                            *d = p * (*d - dot);
                        }
                    }
                    let ds = Matrix::by_rows(&grad_scores, seq, total, width);
                    // ∂L/∂q = dS·k   [seq, head_dim]
                    let grad_query = &mut grad_q[(b * heads + h) * seq * hd..][..seq * hd];
                    product(ds, keys, hd, grad_query, hd, hd, false);
                    // ∂L/∂k += dSᵀ·q and ∂L/∂v += Pᵀ·dO   [total, head_dim]
                    product(ds.transposed(), query, hd, grad_keys, hd, hd, true);
                    let p = Matrix::by_rows(p, seq, total, width);
                    product(p.transposed(), grad_out, heads * hd, grad_values, hd, hd, true);
                }
            }
        }
        (grad_q, grad_k, grad_v)
    }
}

/// A matrix read in place: element `(r, c)` is `values[r·row_stride + c·col_stride]`.
#[derive(Clone, Copy, Debug)]
pub struct Matrix<'a> {
    values: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Matrix<'a> {
    /// A view with any strides (a transposed one has `col_stride` > `row_stride`), checked
    /// to lie inside `values`.
    pub fn strided(
        values: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        let last = (rows.max(1) - 1) * row_stride + (cols.max(1) - 1) * col_stride;
        assert!(
            rows == 0 || cols == 0 || last < values.len(),
            "matrix: a {rows}×{cols} view with strides ({row_stride}, {col_stride}) overruns its {} values",
            values.len()
        );
        Matrix {
            values,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }

    /// `rows × cols` values, each row `row_stride` after the one before.
    fn by_rows(values: &'a [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        Matrix::strided(values, rows, cols, row_stride, 1)
    }

    /// Column `p` of rows `first..first + R`.
    #[inline(always)]
    fn column<const R: usize>(&self, first: usize, p: usize) -> [f32; R] {
        let mut column = [0.0f32; R];
        for (r, value) in column.iter_mut().enumerate() {
            *value = self.values[(first + r) * self.row_stride + p * self.col_stride];
        }
        column
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn transposed(self) -> Self {
        Matrix {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// Products from this many multiply-adds up run on gemm's threads: burn's flex matmul's
/// threshold, so the work is split as it was.
const PARALLEL_PRODUCT: usize = 192 * 192 * 192;

/// `a·b`, `[m, n]` row-major, for `a` `[m, k]` and `b` `[k, n]` read in place with their
/// strides: the gemm crate's product, as burn's flex matmul runs it, without that matmul's
/// output buffer, which is zero-filled and then copied once more to meet an alignment.
pub fn matmul(a: Matrix<'_>, b: Matrix<'_>) -> Vec<f32> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "matmul: inner sizes differ");
    if k == 0 {
        return vec![0.0; m * n];
    }
    let parallelism = if m.saturating_mul(n).saturating_mul(k) >= PARALLEL_PRODUCT {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    let mut out = Vec::<f32>::with_capacity(m * n);
    // SAFETY: `a` and `b` were checked to lie in their slices (`Matrix::strided`); `out` has
    // room for the m×n results, which gemm writes every one of (`read_dst` false: the
    // destination is not read), so all m·n are initialised before `set_len`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.values.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.values.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
        out.set_len(m * n);
    }
    out
}

/// Rows of `a` computed together by [`product`], and the columns of `b` per vector: 6 × 16
/// sums are six AVX-512 registers (twelve AVX2 ones), and each element of `b` loaded serves
/// six rows.
const BLOCK_ROWS: usize = 6;
const LANES: usize = 16;

/// `c = a·b`, or `c += a·b` when `accumulate`, for the small products inside attention:
/// `a` `[m, k]` read in place, `b` `[k, n]` with rows `b_stride` apart, `c` `[m, n]` with rows
/// `c_stride` apart. Each sum runs over `k` in order with `mul_add`, so the result does not
/// depend on the vector width.
#[inline(always)]
fn product(
    a: Matrix<'_>,
    b: &[f32],
    b_stride: usize,
    c: &mut [f32],
    c_stride: usize,
    n: usize,
    accumulate: bool,
) {
    let mut row = 0;
    while row + BLOCK_ROWS <= a.rows {
        product_block::<BLOCK_ROWS>(a, row, b, b_stride, c, c_stride, n, accumulate);
        row += BLOCK_ROWS;
    }
    while row < a.rows {
        product_block::<1>(a, row, b, b_stride, c, c_stride, n, accumulate);
        row += 1;
    }
}

/// Rows `first..first + R` of [`product`], `LANES` columns at a time.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn product_block<const R: usize>(
    a: Matrix<'_>,
    first: usize,
    b: &[f32],
    b_stride: usize,
    c: &mut [f32],
    c_stride: usize,
    n: usize,
    accumulate: bool,
) {
    let k = a.cols;
    let mut column = 0;
    while column < n {
        let width = LANES.min(n - column);
        let mut sums = [[0.0f32; LANES]; R];
        if width == LANES {
            for p in 0..k {
                let b_row = b[p * b_stride + column..][..LANES].try_into().unwrap();
                multiply_add(&mut sums, &a.column(first, p), b_row);
            }
        } else {
            // The last columns: a row of `b` padded with zeros to a whole vector.
            let mut b_row = [0.0f32; LANES];
            for p in 0..k {
                b_row[..width].copy_from_slice(&b[p * b_stride + column..][..width]);
                multiply_add(&mut sums, &a.column(first, p), &b_row);
            }
        }
        for (r, sums) in sums.iter().enumerate() {
            let out = &mut c[(first + r) * c_stride + column..][..width];
            if accumulate {
                for (o, &s) in out.iter_mut().zip(sums) {
                    *o += s;
                }
            } else {
                out.copy_from_slice(&sums[..width]);
            }
        }
        column += LANES;
    }
}

/// `sums[r] += a[r]·b_row` for each of the `R` rows, one rounding per term. The `R`
/// values of `a` come gathered beforehand: read here, their bounds checks would keep the
/// compiler from making one vector instruction of each row.
#[inline(always)]
fn multiply_add<const R: usize>(sums: &mut [[f32; LANES]; R], a: &[f32; R], b_row: &[f32; LANES]) {
    for (sums, &a) in sums.iter_mut().zip(a) {
        for (s, &b) in sums.iter_mut().zip(b_row) {
            *s = a.mul_add(b, *s);
        }
    }
}

/// `x` `[rows, cols]` transposed into `out` `[cols, out_stride]` (columns past `rows` are
/// left as they are).
#[inline(always)]
fn transpose(x: &[f32], rows: usize, cols: usize, out: &mut [f32], out_stride: usize) {
    for (r, row) in x.chunks_exact(cols).take(rows).enumerate() {
        for (c, &value) in row.iter().enumerate() {
            out[c * out_stride + r] = value;
        }
    }
}

/// `Σ a_i·b_i`, in `LANES` running sums added at the end (a sum in one running total is a
/// chain the compiler may not reorder, so it would not vectorise).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut sums = [0.0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let mut tail = 0.0f32;
    for (&x, &y) in a_chunks.remainder().iter().zip(b_chunks.remainder()) {
        tail += x * y;
    }
    for (a, b) in a_chunks.zip(b_chunks) {
        for ((s, &x), &y) in sums.iter_mut().zip(a).zip(b) {
            *s += x * y;
        }
    }
    lanes_sum(sums) + tail
}

/// `Σ x_i`, as [`dot`] sums.
#[inline(always)]
fn sum(x: &[f32]) -> f32 {
    let mut sums = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let mut tail = 0.0f32;
    for &v in chunks.remainder() {
        tail += v;
    }
    for chunk in chunks {
        for (s, &v) in sums.iter_mut().zip(chunk) {
            *s += v;
        }
    }
    lanes_sum(sums) + tail
}

/// The lanes' sums added pairwise.
#[inline(always)]
fn lanes_sum(mut sums: [f32; LANES]) -> f32 {
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            sums[i] += sums[i + width];
        }
    }
    sums[0]
}

/// The largest of `x` (−∞ for none), in `LANES` running maxima.
#[inline(always)]
fn maximum(x: &[f32]) -> f32 {
    let mut maxima = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let mut max = f32::NEG_INFINITY;
    for &v in chunks.remainder() {
        max = max.max(v);
    }
    for chunk in chunks {
        for (m, &v) in maxima.iter_mut().zip(chunk) {
            *m = m.max(v);
        }
    }
    for m in maxima {
        max = max.max(m);
    }
    max
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
