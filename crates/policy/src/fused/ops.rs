//! The fused operations on flex tensors, and their nodes in burn's autodiff graph: the forward
//! runs the kernel and keeps what the backward reads (inputs, or attention's probabilities); the
//! backward runs the gradient kernel once and registers each tracked parent's gradient.

use burn::backend::Flex;
use burn::backend::TensorMetadata;
use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::tensor::Shape;

use super::flex::{contiguous, tensor as flex_tensor, values};
use super::kernels;

pub(super) fn swiglu_flex(gate: &FlexTensor, up: &FlexTensor) -> FlexTensor {
    flex_tensor(kernels::swiglu(&values(gate), &values(up)), gate.shape())
}

pub(super) fn swiglu(
    gate: FloatTensor<Autodiff<Flex>>,
    up: FloatTensor<Autodiff<Flex>>,
) -> FloatTensor<Autodiff<Flex>> {
    #[derive(Debug)]
    struct SwigluBackward;

    impl Backward<Flex, 2> for SwigluBackward {
        type State = (FlexTensor, FlexTensor);

        fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
            let (gate, up) = ops.state;
            let grad = grads.consume::<Flex>(&ops.node);
            let (grad_gate, grad_up) =
                kernels::swiglu_backward(&values(&gate), &values(&up), &values(&grad));
            let [gate_node, up_node] = ops.parents;
            if let Some(node) = gate_node {
                grads.register::<Flex>(node.id, flex_tensor(grad_gate, gate.shape()));
            }
            if let Some(node) = up_node {
                grads.register::<Flex>(node.id, flex_tensor(grad_up, up.shape()));
            }
        }
    }

    let output = swiglu_flex(gate.primitive(), up.primitive());
    match SwigluBackward
        .prepare::<NoCheckpointing>([gate.node(), up.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let state = (gate.into_primitive(), up.into_primitive());
            prep.finish(state, output)
        }
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

/// `(y, r)`: the normalised rows and each row's `1/rms`, `[rows]`.
pub(super) fn rms_norm_flex(
    x: &FlexTensor,
    gamma: &FlexTensor,
    epsilon: f64,
) -> (FlexTensor, Vec<f32>) {
    let (y, inverse_rms) = kernels::rms_norm(&values(x), &values(gamma), epsilon);
    (flex_tensor(y, x.shape()), inverse_rms)
}

pub(super) fn rms_norm(
    x: FloatTensor<Autodiff<Flex>>,
    gamma: FloatTensor<Autodiff<Flex>>,
    epsilon: f64,
) -> FloatTensor<Autodiff<Flex>> {
    #[derive(Debug)]
    struct RmsNormBackward;

    impl Backward<Flex, 2> for RmsNormBackward {
        type State = (FlexTensor, FlexTensor, Vec<f32>);

        fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
            let (x, gamma, inverse_rms) = ops.state;
            let grad = grads.consume::<Flex>(&ops.node);
            let (grad_x, grad_gamma) = kernels::rms_norm_backward(
                &values(&x),
                &values(&gamma),
                &inverse_rms,
                &values(&grad),
            );
            let [x_node, gamma_node] = ops.parents;
            if let Some(node) = x_node {
                grads.register::<Flex>(node.id, flex_tensor(grad_x, x.shape()));
            }
            if let Some(node) = gamma_node {
                grads.register::<Flex>(node.id, flex_tensor(grad_gamma, gamma.shape()));
            }
        }
    }

    let (output, inverse_rms) = rms_norm_flex(x.primitive(), gamma.primitive(), epsilon);
    match RmsNormBackward
        .prepare::<NoCheckpointing>([x.node(), gamma.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let state = (x.into_primitive(), gamma.into_primitive(), inverse_rms);
            prep.finish(state, output)
        }
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

pub(super) fn softmax_last_flex(x: &FlexTensor) -> FlexTensor {
    let shape = x.shape();
    let n = shape[shape.num_dims() - 1];
    flex_tensor(kernels::softmax(&values(x), n), shape)
}

/// The rotary tables `[batch, 1, seq, head_dim]` and the projection's
/// `[batch, seq, heads, head_dim]`, as [`kernels::rotary`] takes them.
#[derive(Clone, Debug)]
pub(super) struct RotaryTables {
    pub cos: FlexTensor,
    pub signed_sin: FlexTensor,
    pub dims: [usize; 4],
}

pub(super) fn rotary_flex(x: &FlexTensor, tables: &RotaryTables) -> FlexTensor {
    let [batch, seq, heads, head_dim] = tables.dims;
    let out = kernels::rotary(
        &values(x),
        &values(&tables.cos),
        &values(&tables.signed_sin),
        tables.dims,
    );
    flex_tensor(out, Shape::new([batch, heads, seq, head_dim]))
}

pub(super) fn rotary(
    x: FloatTensor<Autodiff<Flex>>,
    tables: RotaryTables,
) -> FloatTensor<Autodiff<Flex>> {
    #[derive(Debug)]
    struct RotaryBackward;

    impl Backward<Flex, 1> for RotaryBackward {
        type State = (RotaryTables, Shape);

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
            let (tables, input_shape) = ops.state;
            let grad = grads.consume::<Flex>(&ops.node);
            let [x_node] = ops.parents;
            if let Some(node) = x_node {
                let grad_x = kernels::rotary_backward(
                    &values(&grad),
                    &values(&tables.cos),
                    &values(&tables.signed_sin),
                    tables.dims,
                );
                grads.register::<Flex>(node.id, flex_tensor(grad_x, input_shape));
            }
        }
    }

    let output = rotary_flex(x.primitive(), &tables);
    let input_shape = x.primitive().shape();
    match RotaryBackward
        .prepare::<NoCheckpointing>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((tables, input_shape), output),
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

/// The context `[batch, seq, heads·head_dim]` and the probabilities ([`kernels::attention`]).
pub(super) fn attention_flex(
    q: &FlexTensor,
    k: &FlexTensor,
    v: &FlexTensor,
    mask: &FlexTensor,
    dims: kernels::AttentionDims,
) -> (FlexTensor, Vec<f32>) {
    let (context, probabilities) =
        kernels::attention(&values(q), &values(k), &values(v), &values(mask), dims);
    let shape = Shape::new([dims.batch, dims.seq, dims.heads * dims.head_dim]);
    (flex_tensor(context, shape), probabilities)
}

pub(super) fn attention(
    q: FloatTensor<Autodiff<Flex>>,
    k: FloatTensor<Autodiff<Flex>>,
    v: FloatTensor<Autodiff<Flex>>,
    mask: &FlexTensor,
    dims: kernels::AttentionDims,
) -> FloatTensor<Autodiff<Flex>> {
    #[derive(Debug)]
    struct AttentionBackward;

    impl Backward<Flex, 3> for AttentionBackward {
        /// q, k and v (contiguous), the probabilities, the sizes.
        type State = ([FlexTensor; 3], Vec<f32>, kernels::AttentionDims);

        fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
            let ([q, k, v], probabilities, dims) = ops.state;
            let grad = grads.consume::<Flex>(&ops.node);
            let (grad_q, grad_k, grad_v) = kernels::attention_backward(
                &values(&q),
                &values(&k),
                &values(&v),
                &probabilities,
                &values(&grad),
                dims,
            );
            let gradients = [
                (grad_q, q.shape()),
                (grad_k, k.shape()),
                (grad_v, v.shape()),
            ];
            for (node, (grad, shape)) in ops.parents.into_iter().zip(gradients) {
                if let Some(node) = node {
                    grads.register::<Flex>(node.id, flex_tensor(grad, shape));
                }
            }
        }
    }

    let [q_in, k_in, v_in] = [&q, &k, &v].map(|t| contiguous(t.primitive()));
    let (output, probabilities) = attention_flex(&q_in, &k_in, &v_in, mask, dims);
    match AttentionBackward
        .prepare::<NoCheckpointing>([q.node(), k.node(), v.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(([q_in, k_in, v_in], probabilities, dims), output),
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

/// A 2-D tensor as a [`kernels::Matrix`] over its buffer, read in place with its strides.
fn matrix(t: &FlexTensor) -> kernels::Matrix<'_> {
    let layout = t.layout();
    let (shape, strides) = (layout.shape(), layout.strides());
    let stride = |axis: usize| usize::try_from(strides[axis]).expect("made readable");
    let values = &t.storage::<f32>()[layout.start_offset()..];
    kernels::Matrix::strided(values, shape[0], shape[1], stride(0), stride(1))
}

/// `t`, or a contiguous copy of it if a stride is negative (a flipped view).
fn readable(t: FlexTensor) -> FlexTensor {
    if t.layout().strides().iter().all(|&s| s >= 0) {
        t
    } else {
        t.to_contiguous()
    }
}

/// `x·w` for `x` `[rows, d_in]`, `w` `[d_in, d_out]`.
pub(super) fn linear_flex(x: FlexTensor, w: FlexTensor) -> FlexTensor {
    product(&readable(x), &readable(w))
}

/// `x·w` of two [`readable`] matrices.
fn product(x: &FlexTensor, w: &FlexTensor) -> FlexTensor {
    let (a, b) = (matrix(x), matrix(w));
    let shape = Shape::new([a.rows(), b.cols()]);
    flex_tensor(kernels::matmul(a, b), shape)
}

/// `x·w` under autodiff: `∂L/∂x = ∂L/∂y·wᵀ` and `∂L/∂w = xᵀ·∂L/∂y`, each one product read
/// through transposed strides (no copy).
pub(super) fn linear(
    x: FloatTensor<Autodiff<Flex>>,
    w: FloatTensor<Autodiff<Flex>>,
) -> FloatTensor<Autodiff<Flex>> {
    #[derive(Debug)]
    struct LinearBackward;

    impl Backward<Flex, 2> for LinearBackward {
        type State = (FlexTensor, FlexTensor);

        fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
            let (x, w) = ops.state;
            let grad = readable(grads.consume::<Flex>(&ops.node));
            let [x_node, w_node] = ops.parents;
            if let Some(node) = x_node {
                let grad_x = kernels::matmul(matrix(&grad), matrix(&w).transposed());
                grads.register::<Flex>(node.id, flex_tensor(grad_x, x.shape()));
            }
            if let Some(node) = w_node {
                let grad_w = kernels::matmul(matrix(&x).transposed(), matrix(&grad));
                grads.register::<Flex>(node.id, flex_tensor(grad_w, w.shape()));
            }
        }
    }

    let (x_in, w_in) = (
        readable(x.primitive().clone()),
        readable(w.primitive().clone()),
    );
    let output = product(&x_in, &w_in);
    match LinearBackward
        .prepare::<NoCheckpointing>([x.node(), w.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((x_in, w_in), output),
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}
