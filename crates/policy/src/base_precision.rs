//! A frozen base held in half precision. Under LoRA the base weights never change, so they
//! can be stored in 2 bytes instead of 4 — what a PEFT user does loading the model with
//! `torch_dtype=torch.bfloat16` under f32 adapters.
//!
//! What is cast: every projection's weight, the token embedding and the LM head (the tensors
//! that hold nearly all the parameters). What stays f32: the norms, the biases, the adapters
//! (so the optimiser's state), and the residual stream between blocks. A projection whose
//! weight is in half precision runs in it — the input is rounded to the weight's dtype and the
//! output widened back to f32 (`model::base_product`) — so that the autodiff graph keeps the
//! half-precision input and the stored weight itself for the backward, not an f32 copy of the
//! weight, which an f32 product would hold for each projection and which would take back the
//! memory saved.

use std::collections::HashSet;

use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::tensor::{DType, FloatDType, Tensor};

use crate::error::{PolicyError, Result};
use crate::language_model::LanguageModel;
use crate::model::CausalLm;

impl CausalLm {
    /// This model with its frozen base weights in `dtype` (`FloatDType::BF16` or `F16`;
    /// `F32` widens them back). Only a model with LoRA adapters
    /// ([`with_lora`](CausalLm::with_lora)) may hold its base below f32: trained weights
    /// and their optimiser state stay f32. The device must support the dtype (flex does;
    /// ndarray does not).
    ///
    /// ```
    /// use grpo_policy::burn::tensor::{DType, Device, FloatDType};
    /// use grpo_policy::{CausalLm, LmConfig, LoraConfig};
    ///
    /// let device = Device::flex();
    /// let model = CausalLm::new(&LmConfig::small(64, 32, 2, 4, 64), &device).unwrap();
    /// assert!(model.clone().with_base_dtype(FloatDType::BF16).is_err(), "no adapters");
    /// let model = model
    ///     .with_lora(&LoraConfig::new(4, 8.0, &["q_proj", "v_proj"]))
    ///     .unwrap()
    ///     .with_base_dtype(FloatDType::BF16)
    ///     .unwrap();
    /// assert_eq!(model.base_dtype(), DType::BF16);
    /// ```
    pub fn with_base_dtype(self, dtype: FloatDType) -> Result<Self> {
        let invalid = |message: String| PolicyError::InvalidConfig {
            field: "base_dtype".into(),
            message,
        };
        if !matches!(dtype, FloatDType::F32 | FloatDType::BF16 | FloatDType::F16) {
            return Err(invalid(format!("is {dtype:?}; expected f32, bf16 or f16")));
        }
        if dtype != FloatDType::F32 && self.lora().is_none() {
            return Err(invalid(format!(
                "is {dtype:?}, which needs LoRA adapters: without them the base is what \
                 trains, and trained weights stay f32"
            )));
        }
        let device = self.device();
        if !device.supports_dtype(dtype) {
            return Err(invalid(format!(
                "is {dtype:?}, which the device {device:?} does not support"
            )));
        }
        Ok(self.cast_base(dtype))
    }

    /// The dtype the base weights are held in (f32 unless
    /// [`with_base_dtype`](CausalLm::with_base_dtype) or a half-precision checkpoint of ours
    /// set it).
    pub fn base_dtype(&self) -> DType {
        self.model.embed_tokens.weight.val().dtype()
    }

    /// Casts the base weights without the checks of `with_base_dtype` (merging widens a
    /// half-precision base before folding the f32 adapters into it).
    pub(crate) fn cast_base(self, dtype: FloatDType) -> Self {
        let mut ids: HashSet<ParamId> = HashSet::new();
        ids.insert(self.model.embed_tokens.weight.id);
        if let Some(head) = &self.lm_head {
            ids.insert(head.weight.id);
        }
        for layer in &self.model.layers {
            ids.extend(layer.projections().map(|(_, linear)| linear.weight.id));
        }
        self.map(&mut CastParams { ids, dtype })
    }
}

/// Casts the parameters named by id. burn's mapper detaches a weight's adapter before
/// `map_float` and re-attaches it after, so the adapter's factors (other ids) pass unchanged.
struct CastParams {
    ids: HashSet<ParamId>,
    dtype: FloatDType,
}

impl ModuleMapper for CastParams {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if !self.ids.contains(&param.id) {
            return param;
        }
        let dtype = self.dtype;
        param.map(|tensor| tensor.cast(dtype))
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, FloatDType, Tensor, TensorData};
    use half::bf16;

    use crate::model::base_product;

    fn round(v: f32) -> f32 {
        bf16::from_f32(v).to_f32()
    }

    /// A projection with a bf16 weight, worked by hand: `round(round(x)·W) + b`, and its
    /// input gradient `round(1·Wᵀ)`. The values keep every f32 sum exact (products of 8-bit
    /// mantissas, magnitudes within a factor 8), so only the bf16 roundings are at stake.
    #[test]
    fn a_half_precision_product_rounds_its_input_and_its_output() {
        let device = Device::flex().autodiff();
        let x = [[1.0 + 3.0 / 512.0, -2.7, 0.3], [1.9, 0.61, -1.3]];
        let w = [[0.77f32, -1.21], [0.5, 0.333], [-0.9, 1.1]];
        let w: Vec<f32> = w.iter().flatten().map(|&v| round(v)).collect();
        let bias = [0.25f32, -0.5];
        let input =
            Tensor::<2>::from_data(TensorData::new(x.concat(), [2, 3]), &device).require_grad();
        let weight = Tensor::<2>::from_data(TensorData::new(w.clone(), [3, 2]), &device)
            .cast(FloatDType::BF16);
        let b = Tensor::<1>::from_data(TensorData::new(bias.to_vec(), [2]), &device);
        let y = base_product(input.clone(), weight, Some(b));
        assert_eq!(y.dtype(), burn::tensor::DType::F32);
        let grads = y.clone().sum().backward();
        let got: Vec<f32> = y.into_data().try_to_vec().unwrap();
        let mut expected = Vec::new();
        for row in &x {
            for j in 0..2 {
                let sum: f32 = (0..3).map(|i| round(row[i]) * w[i * 2 + j]).sum();
                expected.push(round(sum) + bias[j]);
            }
        }
        assert_eq!(got, expected);
        let grad: Vec<f32> = input
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec()
            .unwrap();
        let row_sums: Vec<f32> = (0..3).map(|i| round(w[i * 2] + w[i * 2 + 1])).collect();
        assert_eq!(grad, [row_sums.clone(), row_sums].concat());
        // Not the f32 product: the roundings above changed the answer.
        let exact: f32 = (0..3).map(|i| x[0][i] * w[i * 2]).sum::<f32>() + bias[0];
        assert_ne!(got[0], exact);
    }
}
