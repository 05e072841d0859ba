//! Fused operations for the flex backend, each with its own backward: SwiGLU, RMSNorm, the
//! rotary embedding, attention and the projections' products.
//!
//! burn composes SwiGLU, RMSNorm, the rotary embedding and attention out of primitives: under
//! autodiff each primitive is a pass over the tensor, a fresh allocation and a node in the
//! graph. On the CPU these passes run on one thread each, while the matrix products use all
//! cores. Here each is one pass forward and one backward ([`kernels`], compiled for the CPU's
//! widest vectors), registered with burn's autodiff as one node (`ops`). The projections call
//! the gemm crate as burn's flex matmul does, minus that matmul's extra output copy.
//!
//! The functions take and return ordinary tensors. On a flex device in f32 (with autodiff or
//! without; not under gradient checkpointing, whose recomputation these nodes do not take part
//! in) they run the fused kernels; on every other device and dtype they run burn's own
//! composition, so ndarray, wgpu and a remote worker compute what they did before. `tests`
//! checks each against that composition and against central finite differences.

#[cfg(feature = "flex")]
mod kernels;
#[cfg(feature = "flex")]
mod ops;
#[cfg(feature = "flex")]
mod vectorised;

use burn::tensor::Tensor;
use burn::tensor::activation::{silu, softmax};
use burn::tensor::module;
use burn::tensor::ops::AttentionModuleOptions;

/// `silu(gate) · up`, SwiGLU's gated product (Shazeer 2020, eq. 6), element-wise over equal
/// shapes.
pub fn swiglu<const D: usize>(gate: Tensor<D>, up: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    match flex::route(&[&gate, &up]) {
        // A broadcast is the composition's to do.
        _ if gate.dims() != up.dims() => {}
        flex::Route::Plain => {
            return flex::from_plain(ops::swiglu_flex(&flex::plain(gate), &flex::plain(up)));
        }
        flex::Route::Autodiff => {
            return flex::from_tracked(ops::swiglu(flex::tracked(gate), flex::tracked(up)));
        }
        flex::Route::Composed => {}
    }
    silu(gate) * up
}

/// RMSNorm over the last axis: `x / √(mean(x²) + ε) · γ` (Zhang & Sennrich 2019, eq. 4), as
/// burn's `RmsNorm::forward`. `x`: `[.., d]`, `gamma`: `[d]`.
pub fn rms_norm<const D: usize>(x: Tensor<D>, gamma: Tensor<1>, epsilon: f64) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if gamma.dtype() == burn::tensor::DType::F32 {
        match flex::route(&[&x]) {
            flex::Route::Plain => {
                let x = flex::plain(x);
                let gamma = flex::plain(gamma);
                return flex::from_plain(ops::rms_norm_flex(&x, &gamma, epsilon).0);
            }
            flex::Route::Autodiff => {
                let out = ops::rms_norm(flex::tracked(x), flex::tracked(gamma), epsilon);
                return flex::from_tracked(out);
            }
            flex::Route::Composed => {}
        }
    }
    // burn's `RmsNorm::forward`, line for line: the mean of squares in f32 whatever `x` holds.
    let dtype = x.dtype();
    let rms = (x
        .clone()
        .cast(burn::tensor::DType::F32)
        .square()
        .mean_dim(D - 1)
        + epsilon)
        .sqrt();
    (x / rms.cast(dtype)) * gamma.unsqueeze()
}

/// `softmax(x)` over the last axis, for decoding's attention scores: on flex without autodiff
/// one pass whose `exp` vectorises (flex's own softmax calls the C library's per element);
/// elsewhere burn's. (Under autodiff on flex, [`attention`] runs the whole attention.)
fn softmax_last<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if let flex::Route::Plain = flex::route(&[&x]) {
        return flex::from_plain(ops::softmax_last_flex(&flex::plain(x)));
    }
    softmax(x, D - 1)
}

/// A projection's output `[batch, seq, heads·head_dim]` split into heads and rotated:
/// `[batch, heads, seq, head_dim]`, as `rope::apply(x.reshape([b, s, heads, hd]).swap_dims(1,
/// 2), cos, signed_sin)`, in one pass that also makes the heads contiguous (the composition
/// copies the transposed view once and makes five passes more, forward and backward).
/// `cos`, `signed_sin`: `[batch, 1, seq, head_dim]` ([`crate::rope::tables`]).
pub fn rotary(x: Tensor<3>, heads: usize, cos: &Tensor<4>, signed_sin: &Tensor<4>) -> Tensor<4> {
    let [batch, seq, width] = x.dims();
    let head_dim = width / heads;
    #[cfg(feature = "flex")]
    let per_row = cos.dims() == [batch, 1, seq, head_dim] && signed_sin.dims() == cos.dims();
    #[cfg(feature = "flex")]
    if per_row && cos.dtype() == burn::tensor::DType::F32 && signed_sin.dtype() == cos.dtype() {
        let dims = [batch, seq, heads, head_dim];
        match flex::route(&[&x]) {
            flex::Route::Plain => {
                let tables = ops::RotaryTables {
                    cos: flex::plain(cos.clone()),
                    signed_sin: flex::plain(signed_sin.clone()),
                    dims,
                };
                return flex::from_plain(ops::rotary_flex(&flex::plain(x), &tables));
            }
            flex::Route::Autodiff => {
                let tables = ops::RotaryTables {
                    cos: flex::tracked(cos.clone()).into_primitive(),
                    signed_sin: flex::tracked(signed_sin.clone()).into_primitive(),
                    dims,
                };
                return flex::from_tracked(ops::rotary(flex::tracked(x), tables));
            }
            flex::Route::Composed => {}
        }
    }
    let heads_first = x.reshape([batch, seq, heads, head_dim]).swap_dims(1, 2);
    crate::rope::apply(heads_first, cos, signed_sin)
}

/// Scaled dot-product attention, `softmax(q·kᵀ + mask)·v` (Vaswani et al. 2017, eq. 1), with
/// `q` already divided by √head_dim: `q` `[batch, heads, seq, head_dim]`, `k` and `v`
/// `[batch, kv_heads, total, head_dim]`, `mask` `[batch, 1, seq, total]` (added to the scores,
/// not differentiated). Query head `h` reads key/value head `h / (heads / kv_heads)`
/// (grouped-query attention, Ainslie et al. 2023), as Hugging Face's `repeat_kv`, without
/// repeating K and V. Returns `[batch, seq, heads·head_dim]`, the heads side by side as the
/// output projection reads them.
///
/// On flex in f32 it is one kernel forward and, under autodiff, one backward: burn's
/// composition makes two batched products of small matrices, the mask's addition, the softmax
/// and the heads' transposition each a pass, an allocation and a node, and its backward as
/// many. Decoding (one query) takes the composition, which reads the cache strided in place
/// where the kernel would copy it. Elsewhere, prefill without autodiff takes burn's fused
/// `module::attention` and the rest the composition.
pub fn attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, mask: &Tensor<4>) -> Tensor<3> {
    let [batch, heads, seq, head_dim] = q.dims();
    let [_, kv_heads, total, _] = k.dims();
    #[cfg(feature = "flex")]
    {
        let shapes_fit = k.dims() == [batch, kv_heads, total, head_dim]
            && v.dims() == k.dims()
            && mask.dims() == [batch, 1, seq, total]
            && kv_heads > 0
            && heads.is_multiple_of(kv_heads);
        if shapes_fit && mask.dtype() == burn::tensor::DType::F32 {
            let dims = kernels::AttentionDims {
                batch,
                heads,
                kv_heads,
                seq,
                total,
                head_dim,
            };
            match flex::route(&[&q, &k, &v]) {
                flex::Route::Autodiff => {
                    let mask = flex::tracked(mask.clone()).into_primitive();
                    let (q, k, v) = (flex::tracked(q), flex::tracked(k), flex::tracked(v));
                    return flex::from_tracked(ops::attention(q, k, v, &mask, dims));
                }
                flex::Route::Plain if seq > 1 => {
                    let [q, k, v] = [q, k, v].map(flex::plain);
                    let mask = flex::plain(mask.clone());
                    return flex::from_plain(ops::attention_flex(&q, &k, &v, &mask, dims).0);
                }
                _ => {}
            }
        }
    }
    if !q.is_autodiff() && heads == kv_heads && seq > 1 {
        let options = AttentionModuleOptions {
            scale: Some(1.0), // q is already divided by √d
            ..AttentionModuleOptions::default()
        };
        // The mask [batch, 1, seq, total] broadcasts over heads.
        return module::attention(q, k, v, None, Some(mask.clone()), options) // [b, h, seq, hd]
            .swap_dims(1, 2)
            .reshape([batch, seq, heads * head_dim]);
    }
    // The query heads of one KV head side by side, so that K and V are never repeated:
    // [batch, heads, seq, hd] → [batch, kv, group·seq, hd].
    let group = heads / kv_heads;
    let q = q.reshape([batch, kv_heads, group * seq, head_dim]);
    let mask = if group == 1 {
        mask.clone()
    } else {
        // [batch, 1, seq, total] → [batch, 1, group·seq, total]
        mask.clone()
            .unsqueeze_dim::<5>(2)
            .expand([batch, 1, group, seq, total])
            .reshape([batch, 1, group * seq, total])
    };
    let scores = q.matmul(k.swap_dims(2, 3)) + mask; // [batch, kv, group·seq, total]
    softmax_last(scores)
        .matmul(v) // [batch, kv, group·seq, hd]
        .reshape([batch, heads, seq, head_dim])
        .swap_dims(1, 2) // [batch, seq, heads, hd]
        .reshape([batch, seq, heads * head_dim])
}

/// `x·w` for `x` `[rows, d_in]` and `w` `[d_in, d_out]`, as `x.matmul(w)`. On flex in f32 the
/// gemm crate's product runs as in burn's matmul, into a buffer of its own (burn's is
/// zero-filled, then copied again to meet an alignment: 5% of a GRPO step), and under
/// autodiff its backward is two products read through transposed strides.
pub fn linear(x: Tensor<2>, w: Tensor<2>) -> Tensor<2> {
    #[cfg(feature = "flex")]
    match flex::route(&[&x, &w]) {
        flex::Route::Plain => {
            return flex::from_plain(ops::linear_flex(flex::plain(x), flex::plain(w)));
        }
        flex::Route::Autodiff => {
            return flex::from_tracked(ops::linear(flex::tracked(x), flex::tracked(w)));
        }
        flex::Route::Composed => {}
    }
    x.matmul(w)
}

/// Moving tensors between burn's `Tensor` and flex's primitives.
#[cfg(feature = "flex")]
mod flex {
    use std::borrow::Cow;

    use burn::backend::Flex;
    use burn::backend::autodiff::Autodiff;
    use burn::backend::flex::FlexTensor;
    use burn::backend::tensor::FloatTensor;
    use burn::tensor::{DType, Device, GradientCheckpointingStrategy, Shape, Tensor, TensorData};

    /// Where an operation on some tensors runs.
    pub enum Route {
        /// Flex tensors, no autodiff: the kernel.
        Plain,
        /// Flex tensors under autodiff without checkpointing: the kernel and its backward.
        Autodiff,
        /// Anything else: burn's composition.
        Composed,
    }

    pub fn route<const D: usize>(tensors: &[&Tensor<D>]) -> Route {
        let device = tensors[0].device();
        if tensors.iter().any(|t| t.dtype() != DType::F32)
            || device.clone().inner() != Device::flex()
        {
            return Route::Composed;
        }
        if !device.is_autodiff() {
            return Route::Plain;
        }
        match device.gradient_checkpointing_strategy() {
            Some(GradientCheckpointingStrategy::Disabled) | None => Route::Autodiff,
            Some(_) => Route::Composed,
        }
    }

    pub fn plain<const D: usize>(t: Tensor<D>) -> FlexTensor {
        t.try_into_primitive::<Flex>()
            .expect("routed as a flex tensor")
    }

    pub fn tracked<const D: usize>(t: Tensor<D>) -> FloatTensor<Autodiff<Flex>> {
        t.try_into_primitive::<Autodiff<Flex>>()
            .expect("routed as a flex autodiff tensor")
    }

    pub fn from_plain<const D: usize>(t: FlexTensor) -> Tensor<D> {
        Tensor::from_primitive::<Flex>(t)
    }

    pub fn from_tracked<const D: usize>(t: FloatTensor<Autodiff<Flex>>) -> Tensor<D> {
        Tensor::from_primitive::<Autodiff<Flex>>(t)
    }

    /// A flex tensor's values in row-major order (a copy only when it is a strided view).
    pub fn values(t: &FlexTensor) -> Cow<'_, [f32]> {
        match t.as_slice::<f32>() {
            Some(slice) => Cow::Borrowed(slice),
            None => Cow::Owned(t.to_contiguous().as_slice::<f32>().unwrap().to_vec()),
        }
    }

    /// `t`, or a contiguous copy of it when it is a strided view.
    pub fn contiguous(t: &FlexTensor) -> FlexTensor {
        if t.as_slice::<f32>().is_some() {
            t.clone()
        } else {
            t.to_contiguous()
        }
    }

    /// A new contiguous flex tensor.
    pub fn tensor(values: Vec<f32>, shape: Shape) -> FlexTensor {
        FlexTensor::from_data(TensorData::new(values, shape))
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests;
