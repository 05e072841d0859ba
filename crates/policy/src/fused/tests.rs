//! Each fused operation against burn's composition of the same formula (values and gradients,
//! with autodiff and without) and its gradients against central finite differences.

use burn::tensor::activation::{silu, softmax};
use burn::tensor::{Device, Distribution, Tensor, TensorData};

use super::{attention, linear, rms_norm, rotary, softmax_last, swiglu};

fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.5), device)
}

fn close(actual: &Tensor<1>, expected: &Tensor<1>, tolerance: f32, what: &str) {
    let a = actual.to_data().try_into_vec::<f32>().unwrap();
    let e = expected.to_data().try_into_vec::<f32>().unwrap();
    assert_eq!(a.len(), e.len(), "{what}: sizes differ");
    for (i, (a, e)) in a.iter().zip(&e).enumerate() {
        let scale = e.abs().max(1.0);
        assert!(
            (a - e).abs() <= tolerance * scale,
            "{what}[{i}]: fused {a}, reference {e}"
        );
    }
}

fn flat<const D: usize>(t: Tensor<D>) -> Tensor<1> {
    let n = t.shape().num_elements();
    t.reshape([n])
}

/// One random tensor per shape, on `device`.
fn random_inputs<const D: usize, const N: usize>(
    shapes: [Vec<usize>; N],
    device: &Device,
) -> [Tensor<D>; N] {
    shapes.map(|shape| {
        let dims: [usize; D] = shape.try_into().unwrap();
        random(dims, device)
    })
}

/// A random weighting, so that the loss `Σ w·f(x)` has a gradient that is no constant.
fn weighted<const D: usize>(out: Tensor<D>, weights: &Tensor<D>) -> Tensor<1> {
    (out * weights.clone()).sum()
}

/// `f` and `reference` agree in value, and their gradients with respect to every input agree,
/// on flex with autodiff.
fn same_as_composition<const D: usize, const N: usize>(
    shapes: [Vec<usize>; N],
    f: impl Fn(&[Tensor<D>; N]) -> Tensor<D>,
    reference: impl Fn(&[Tensor<D>; N]) -> Tensor<D>,
    what: &str,
) {
    let device = Device::flex().autodiff();
    let inputs = random_inputs::<D, N>(shapes, &device);
    let fused_inputs = inputs.clone().map(|t| t.require_grad());
    let reference_inputs = inputs.clone().map(|t| t.require_grad());
    let fused = f(&fused_inputs);
    let expected = reference(&reference_inputs);
    let weights = random(expected.dims(), &device);
    close(&flat(fused.clone()), &flat(expected.clone()), 1e-5, what);

    let fused_grads = weighted(fused, &weights).backward();
    let reference_grads = weighted(expected, &weights).backward();
    for (i, (a, b)) in fused_inputs.iter().zip(&reference_inputs).enumerate() {
        let a = a.grad(&fused_grads).expect("fused gradient");
        let b = b.grad(&reference_grads).expect("reference gradient");
        close(&flat(a), &flat(b), 1e-5, &format!("{what}: ∂/∂input {i}"));
    }

    // Without autodiff, on plain flex tensors: the same values.
    let plain = Device::flex();
    let inputs = inputs.map(|t| Tensor::from_data(t.to_data(), &plain));
    close(&flat(f(&inputs)), &flat(reference(&inputs)), 1e-5, what);
}

/// The autodiff gradient of `Σ w·f(x)` against central differences `(L(x+h) − L(x−h)) / 2h`
/// in every coordinate of every input.
fn matches_finite_differences<const D: usize, const N: usize>(
    shapes: [Vec<usize>; N],
    f: impl Fn(&[Tensor<D>; N]) -> Tensor<D>,
    what: &str,
) {
    let device = Device::flex().autodiff();
    let inputs = random_inputs::<D, N>(shapes, &device);
    let tracked = inputs.clone().map(|t| t.require_grad());
    let out = f(&tracked);
    let weights = random(out.dims(), &device);
    let grads = weighted(out, &weights).backward();
    let loss = |inputs: &[Tensor<D>; N]| -> f64 {
        weighted(f(inputs), &weights).into_scalar::<f32>() as f64
    };
    let h = 1e-2f32;
    for (which, input) in inputs.iter().enumerate() {
        let analytic = tracked[which]
            .grad(&grads)
            .unwrap()
            .to_data()
            .try_into_vec::<f32>()
            .unwrap();
        let values = input.to_data().try_into_vec::<f32>().unwrap();
        for (i, &g) in analytic.iter().enumerate() {
            let shifted = |delta: f32| {
                let mut moved = values.clone();
                moved[i] += delta;
                let mut inputs = inputs.clone();
                inputs[which] = Tensor::from_data(TensorData::new(moved, input.shape()), &device);
                loss(&inputs)
            };
            let numeric = (shifted(h) - shifted(-h)) / (2.0 * h as f64);
            assert!(
                (numeric - g as f64).abs() <= 2e-2 * numeric.abs().max(1.0),
                "{what}: ∂/∂input {which}[{i}] analytic {g}, central difference {numeric}"
            );
        }
    }
}

#[test]
fn swiglu_is_silu_of_the_gate_times_up() {
    let shapes = || [vec![3, 5, 7], vec![3, 5, 7]];
    same_as_composition(
        shapes(),
        |[g, u]: &[Tensor<3>; 2]| swiglu(g.clone(), u.clone()),
        |[g, u]: &[Tensor<3>; 2]| silu(g.clone()) * u.clone(),
        "swiglu",
    );
    matches_finite_differences(
        shapes(),
        |[g, u]: &[Tensor<3>; 2]| swiglu(g.clone(), u.clone()),
        "swiglu",
    );
}

#[test]
fn rms_norm_is_burns_rms_norm() {
    let epsilon = 1e-6;
    let reference = |[x, gamma]: &[Tensor<2>; 2]| {
        // burn's RmsNorm::forward, with γ as a row
        let rms = (x.clone().square().mean_dim(1) + epsilon).sqrt();
        (x.clone() / rms) * gamma.clone()
    };
    let fused = |[x, gamma]: &[Tensor<2>; 2]| {
        let [_, d] = gamma.dims();
        rms_norm(x.clone(), gamma.clone().reshape([d]), epsilon)
    };
    same_as_composition([vec![6, 16], vec![1, 16]], fused, reference, "rms_norm");
    matches_finite_differences([vec![3, 8], vec![1, 8]], fused, "rms_norm");
}

#[test]
fn rms_norm_reads_a_strided_view() {
    let device = Device::flex();
    let x = random([4, 6], &device);
    let gamma = random([4], &device);
    let view = x.clone().transpose(); // [6, 4], not contiguous
    let expected = {
        let rms = (view.clone().square().mean_dim(1) + 1e-5).sqrt();
        (view.clone() / rms) * gamma.clone().unsqueeze()
    };
    close(
        &flat(rms_norm(view, gamma, 1e-5)),
        &flat(expected),
        1e-5,
        "rms_norm of a transposed view",
    );
}

/// `x` `[batch, seq, heads·head_dim]` rotated by tables for positions 3, 4, … (and 7, 8, …
/// in the second row, as a left-padded batch has), on `x`'s device.
fn rotated(x: &Tensor<3>, heads: usize, fused: bool) -> Tensor<4> {
    let [batch, seq, width] = x.dims();
    let positions: Vec<usize> = (0..batch)
        .flat_map(|b| (0..seq).map(move |s| 3 + 4 * b + s))
        .collect();
    let (cos, sin) = crate::rope::tables(&positions, batch, width / heads, 10_000.0, &x.device());
    if fused {
        rotary(x.clone(), heads, &cos, &sin)
    } else {
        let heads_first = x
            .clone()
            .reshape([batch, seq, heads, width / heads])
            .swap_dims(1, 2);
        crate::rope::apply(heads_first, &cos, &sin)
    }
}

#[test]
fn rotary_is_rope_of_the_heads() {
    let as_4d = |t: Tensor<4>| {
        let [a, b, c, d] = t.dims();
        t.reshape([a, b, c * d])
    };
    same_as_composition(
        [vec![2, 3, 12]],
        |[x]: &[Tensor<3>; 1]| as_4d(rotated(x, 3, true)),
        |[x]: &[Tensor<3>; 1]| as_4d(rotated(x, 3, false)),
        "rotary",
    );
    matches_finite_differences(
        [vec![2, 2, 8]],
        |[x]: &[Tensor<3>; 1]| as_4d(rotated(x, 2, true)),
        "rotary",
    );
}

#[test]
fn a_masked_softmax_is_burns_and_its_masked_entries_are_zero() {
    let device = Device::flex();
    let scores = random([2, 3, 5], &device);
    // A causal mask: entry j of row i is −∞ above the diagonal.
    let mask: Vec<f32> = (0..2 * 3 * 5)
        .map(|at| {
            if at % 5 > (at / 5) % 3 {
                f32::NEG_INFINITY
            } else {
                0.0
            }
        })
        .collect();
    let masked = scores + Tensor::from_data(TensorData::new(mask.clone(), [2, 3, 5]), &device);
    let fused = flat(softmax_last(masked.clone()));
    close(&fused, &flat(softmax(masked, 2)), 1e-5, "masked softmax");
    let fused = fused.into_data().try_into_vec::<f32>().unwrap();
    for (p, m) in fused.iter().zip(&mask) {
        assert!(*m == 0.0 || *p == 0.0, "a masked entry has probability {p}");
    }
}

#[test]
fn flex_f32_tensors_take_the_kernels_and_others_the_composition() {
    use super::flex::{Route, route};
    let on = |device: &Device| random([2, 3], device);
    assert!(matches!(route(&[&on(&Device::flex())]), Route::Plain));
    assert!(matches!(
        route(&[&on(&Device::flex().autodiff())]),
        Route::Autodiff
    ));
    let checkpointed = Device::flex().autodiff().gradient_checkpointing();
    assert!(matches!(route(&[&on(&checkpointed)]), Route::Composed));
    let half = on(&Device::flex()).cast(burn::tensor::FloatDType::F16);
    assert!(matches!(route(&[&half]), Route::Composed));
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    {
        assert!(matches!(route(&[&on(&Device::ndarray())]), Route::Composed));
    }
}

#[test]
fn broadcast_operands_run_the_composition() {
    let device = Device::flex();
    let (g, u) = (random([3, 4], &device), random([1, 4], &device));
    let expected = silu(g.clone()) * u.clone();
    close(
        &flat(swiglu(g, u)),
        &flat(expected),
        1e-6,
        "swiglu of a broadcast row",
    );

    // Tables shared by every row ([1, 1, seq, head_dim]) broadcast in rope::apply.
    let x = random([2, 3, 8], &device);
    let (cos, sin) = crate::rope::tables(&[0, 1, 2], 1, 4, 10_000.0, &device);
    let heads_first = x.clone().reshape([2, 3, 2, 4]).swap_dims(1, 2);
    let expected = crate::rope::apply(heads_first, &cos, &sin);
    close(
        &flat(rotary(x, 2, &cos, &sin)),
        &flat(expected),
        1e-6,
        "rotary with shared tables",
    );
}

#[test]
fn a_half_precision_tensor_runs_the_composition() {
    // A half-precision flex tensor is routed to burn's composition (the kernels are f32).
    let device = Device::flex();
    let g = random([2, 3], &device);
    let u = random([2, 3], &device);
    let half = |t: &Tensor<2>| t.clone().cast(burn::tensor::FloatDType::F16);
    let fused = swiglu(half(&g), half(&u)).cast(burn::tensor::FloatDType::F32);
    close(&flat(fused), &flat(silu(g) * u), 1e-2, "swiglu in f16");
}

/// The mask of 3 new positions after 2 held ones, for two rows, the second with one pad
/// position: `[2, 1, 3, 5]`, as the model builds it.
fn attention_mask(device: &Device) -> Tensor<4> {
    let mut cache = crate::cache::KvCache::new(1, vec![0, 1]);
    cache.advance(2);
    cache.mask(3, device)
}

/// Attention as the textbook writes it: each key/value head repeated to the query heads it
/// serves (Hugging Face's `repeat_kv`), `softmax(q·kᵀ + mask)·v`, heads side by side,
/// returned as `[batch, seq, heads, head_dim]`.
fn textbook_attention([q, k, v]: &[Tensor<4>; 3]) -> Tensor<4> {
    let [batch, heads, _, head_dim] = q.dims();
    let [_, kv_heads, total, _] = k.dims();
    let repeat = |t: &Tensor<4>| {
        t.clone()
            .unsqueeze_dim::<5>(2)
            .expand([batch, kv_heads, heads / kv_heads, total, head_dim])
            .reshape([batch, heads, total, head_dim])
    };
    let scores = q.clone().matmul(repeat(k).swap_dims(2, 3)) + attention_mask(&q.device());
    softmax(scores, 3).matmul(repeat(v)).swap_dims(1, 2)
}

fn fused_attention([q, k, v]: &[Tensor<4>; 3]) -> Tensor<4> {
    let [batch, heads, seq, head_dim] = q.dims();
    let mask = attention_mask(&q.device());
    attention(q.clone(), k.clone(), v.clone(), &mask).reshape([batch, seq, heads, head_dim])
}

#[test]
fn attention_is_the_textbook_formula() {
    // Four query heads on two key/value heads (grouped-query attention), and one head each.
    for kv_heads in [2, 4] {
        same_as_composition(
            [
                vec![2, 4, 3, 8],
                vec![2, kv_heads, 5, 8],
                vec![2, kv_heads, 5, 8],
            ],
            fused_attention,
            textbook_attention,
            &format!("attention, {kv_heads} key/value heads"),
        );
    }
    matches_finite_differences(
        [vec![2, 2, 3, 4], vec![2, 1, 5, 4], vec![2, 1, 5, 4]],
        fused_attention,
        "attention",
    );
}

#[test]
fn attention_reads_strided_values() {
    // Values split into heads are a transposed view, as the model makes them.
    let device = Device::flex().autodiff();
    let [q, k, v_rows] =
        random_inputs::<3, 3>([vec![4, 3, 4], vec![4, 5, 4], vec![2, 5, 8]], &device);
    let run = |f: fn(&[Tensor<4>; 3]) -> Tensor<4>, weights: &Tensor<4>| {
        let v_rows = v_rows.clone().require_grad();
        let v = v_rows.clone().reshape([2, 5, 2, 4]).swap_dims(1, 2);
        let inputs = [
            q.clone().reshape([2, 2, 3, 4]),
            k.clone().reshape([2, 2, 5, 4]),
            v,
        ];
        let out = f(&inputs);
        let grad = v_rows
            .grad(&weighted(out.clone(), weights).backward())
            .unwrap();
        (out, grad)
    };
    let weights = random([2, 3, 2, 4], &device);
    let (fused, fused_grad) = run(fused_attention, &weights);
    let (expected, expected_grad) = run(textbook_attention, &weights);
    close(
        &flat(fused),
        &flat(expected),
        1e-5,
        "attention of strided values",
    );
    close(
        &flat(fused_grad),
        &flat(expected_grad),
        1e-5,
        "∂/∂v through the view",
    );
}

#[test]
fn linear_is_matmul() {
    // Wide enough (40·300·300 > 192³) that gemm splits the product over threads too.
    for [rows, d_in, d_out] in [[5, 7, 3], [40, 300, 300]] {
        same_as_composition(
            [vec![rows, d_in], vec![d_in, d_out]],
            |[x, w]: &[Tensor<2>; 2]| linear(x.clone(), w.clone()),
            |[x, w]: &[Tensor<2>; 2]| x.clone().matmul(w.clone()),
            &format!("linear {rows}×{d_in}·{d_in}×{d_out}"),
        );
    }
    matches_finite_differences(
        [vec![3, 4], vec![4, 2]],
        |[x, w]: &[Tensor<2>; 2]| linear(x.clone(), w.clone()),
        "linear",
    );
    // A tied head multiplies by the embedding's transposed view, and a flipped view has a
    // negative stride.
    same_as_composition(
        [vec![4, 6], vec![5, 6]],
        |[x, e]: &[Tensor<2>; 2]| linear(x.clone(), e.clone().transpose()),
        |[x, e]: &[Tensor<2>; 2]| x.clone().matmul(e.clone().transpose()),
        "linear by a transposed view",
    );
    same_as_composition(
        [vec![4, 6], vec![6, 5]],
        |[x, w]: &[Tensor<2>; 2]| linear(x.clone().flip([1]), w.clone()),
        |[x, w]: &[Tensor<2>; 2]| x.clone().flip([1]).matmul(w.clone()),
        "linear of a flipped view",
    );
}
