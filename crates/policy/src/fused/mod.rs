//! Fused element-wise operations for the flex backend, each with its own backward.
//!
//! burn composes SwiGLU, RMSNorm, the rotary embedding and the softmax's backward out of
//! primitives: under autodiff each primitive is a pass over the tensor, a fresh allocation and
//! a node in the graph. On the CPU these passes run on one thread each, while the matrix
//! products use all cores. Here each is one pass forward and one backward ([`kernels`]),
//! registered with burn's autodiff as one node (`ops`).
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

use burn::tensor::Tensor;
use burn::tensor::activation::{silu, softmax};

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

/// `softmax(x)` over the last axis: one pass whose `exp` vectorises (flex's own fused softmax
/// calls the C library's per element), and a backward of one pass, `y ⊙ (dy − Σ dy·y)`,
/// instead of the decomposition's five.
pub fn softmax_last<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    match flex::route(&[&x]) {
        flex::Route::Plain => {
            return flex::from_plain(ops::softmax_last_flex(&flex::plain(x)));
        }
        flex::Route::Autodiff => {
            return flex::from_tracked(ops::softmax_last(flex::tracked(x)));
        }
        flex::Route::Composed => {}
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

    /// A new contiguous flex tensor.
    pub fn tensor(values: Vec<f32>, shape: Shape) -> FlexTensor {
        FlexTensor::from_data(TensorData::new(values, shape))
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests;
