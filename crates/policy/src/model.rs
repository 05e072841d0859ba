//! The causal LM: Llama / Qwen2, in one screen per block.
//!
//! Field names follow Hugging Face's module tree (`model.layers.0.self_attn.q_proj`), so a
//! checkpoint's tensor names are this struct's parameter paths and load without renaming.

use std::path::Path;

use burn::module::Module;
use burn::nn::Initializer;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig, RmsNorm, RmsNormConfig};
use burn::tensor::{DType, Device, FloatDType, Int, Tensor};

use crate::cache::KvCache;
use crate::config::LmConfig;
use crate::fused;
use crate::language_model::{LanguageModel, ModelCache};
use crate::lora::LoraConfig;
use crate::rope;

/// A decoder-only language model (a burn [`Module`]).
#[derive(Module, Debug)]
pub struct CausalLm {
    pub model: Decoder,
    /// `None` when the head is tied to the token embedding.
    pub lm_head: Option<Linear>,
    #[module(skip)]
    config: LmConfig,
    /// Set when LoRA adapters are attached ([`CausalLm::with_lora`]).
    #[module(skip)]
    lora: Option<LoraConfig>,
    /// The adapters are skipped: the frozen base's forward (the GRPO reference).
    #[module(skip)]
    adapters_off: bool,
}

/// The transformer trunk.
#[derive(Module, Debug)]
pub struct Decoder {
    pub embed_tokens: Embedding,
    pub layers: Vec<DecoderLayer>,
    pub norm: RmsNorm,
}

/// Pre-norm block: `x + attn(norm(x))`, then `x + mlp(norm(x))`.
#[derive(Module, Debug)]
pub struct DecoderLayer {
    pub self_attn: Attention,
    pub mlp: Mlp,
    pub input_layernorm: RmsNorm,
    pub post_attention_layernorm: RmsNorm,
}

/// Grouped-query attention with rotary positions.
#[derive(Module, Debug)]
pub struct Attention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

/// SwiGLU: `down(silu(gate(x)) · up(x))` (Shazeer 2020, eq. 6).
#[derive(Module, Debug)]
pub struct Mlp {
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
}

/// Hugging Face's initialisation: weights normal(0, `initializer_range`), biases zero. (burn's
/// defaults — Kaiming-uniform linears, N(0, 1) embeddings — make a tied head's logits so large
/// that a fresh model samples one token almost surely, and RL from scratch never explores.)
fn linear(d_in: usize, d_out: usize, bias: bool, std: f64, device: &Device) -> Linear {
    let mut layer = LinearConfig::new(d_in, d_out)
        .with_bias(bias)
        .with_initializer(Initializer::Normal { mean: 0.0, std })
        .init(device);
    layer.bias = layer.bias.map(|b| b.map(|t| t.zeros_like()));
    layer
}

impl CausalLm {
    /// A randomly initialised model of the given shape (validated).
    pub fn new(config: &LmConfig, device: &Device) -> crate::Result<Self> {
        config.validate()?;
        let (d, hd) = (config.hidden_size, config.head_size());
        let std = config.initializer_range;
        let linear = |d_in, d_out, bias| linear(d_in, d_out, bias, std, device);
        let (heads, kv_heads) = (config.num_attention_heads, config.kv_heads());
        let norm = || {
            RmsNormConfig::new(d)
                .with_epsilon(config.rms_norm_eps)
                .init(device)
        };
        let layers = (0..config.num_hidden_layers)
            .map(|_| DecoderLayer {
                self_attn: Attention {
                    q_proj: linear(d, heads * hd, config.qkv_bias()),
                    k_proj: linear(d, kv_heads * hd, config.qkv_bias()),
                    v_proj: linear(d, kv_heads * hd, config.qkv_bias()),
                    o_proj: linear(heads * hd, d, config.o_bias()),
                    heads,
                    kv_heads,
                    head_dim: hd,
                },
                mlp: Mlp {
                    gate_proj: linear(d, config.intermediate_size, false),
                    up_proj: linear(d, config.intermediate_size, false),
                    down_proj: linear(config.intermediate_size, d, false),
                },
                input_layernorm: norm(),
                post_attention_layernorm: norm(),
            })
            .collect();
        Ok(CausalLm {
            model: Decoder {
                embed_tokens: EmbeddingConfig::new(config.vocab_size, d)
                    .with_initializer(Initializer::Normal { mean: 0.0, std })
                    .init(device),
                layers,
                norm: norm(),
            },
            lm_head: (!config.tie_word_embeddings).then(|| linear(d, config.vocab_size, false)),
            config: config.clone(),
            lora: None,
            adapters_off: false,
        })
    }

    pub fn config(&self) -> &LmConfig {
        &self.config
    }

    /// The configuration of the attached LoRA adapters, if any.
    pub fn lora(&self) -> Option<&LoraConfig> {
        self.lora.as_ref()
    }

    pub(crate) fn with_lora_config(mut self, lora: Option<LoraConfig>) -> Self {
        self.lora = lora;
        self
    }
}

impl LanguageModel for CausalLm {
    type Cache = KvCache;

    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    /// The device the weights live on.
    fn device(&self) -> Device {
        self.model.embed_tokens.weight.val().device()
    }

    /// With adapters: this model with them switched off, sharing every tensor (no copy of
    /// the weights) — the frozen base, PEFT's `disable_adapter()`.
    fn without_adapters(&self) -> Option<Self> {
        self.lora.as_ref()?;
        let mut base = self.clone();
        base.adapters_off = true;
        Some(base)
    }

    fn new_cache(&self, padding: Vec<usize>) -> KvCache {
        KvCache::new(self.config.num_hidden_layers, padding)
    }

    /// Room for `capacity` positions per row, written in place while decoding (see
    /// [`KvCache::with_capacity`]).
    fn new_decoding_cache(&self, padding: Vec<usize>, capacity: usize) -> KvCache {
        KvCache::with_capacity(self.config.num_hidden_layers, padding, capacity)
    }

    /// The final-norm hidden states `[batch, seq, d_model]` (the LM head not applied), for
    /// callers that need logits at a few positions only.
    fn forward_hidden(&self, tokens: Tensor<2, Int>, cache: &mut KvCache) -> Tensor<3> {
        let [batch, seq] = tokens.dims();
        assert_eq!(
            batch,
            cache.batch_size(),
            "tokens and cache disagree on the batch size"
        );
        let device = tokens.device();
        let head_size = self.config.head_size();
        let (cos, sin) = rope::tables(
            &cache.positions(seq),
            batch,
            head_size,
            self.config.rope_theta,
            &device,
        );
        // Rotating with tables scaled by the attention's 1/√d gives q/√d: the scale costs a
        // pass over the small tables instead of one over q.
        let scale = 1.0 / (head_size as f32).sqrt();
        let rotary = Rotary {
            queries: (cos.clone().mul_scalar(scale), sin.clone().mul_scalar(scale)),
            keys: (cos, sin),
        };
        let mask = cache.mask(seq, &device);
        let adapters = !self.adapters_off;
        let mut x = self.model.embed_tokens.forward(tokens); // [batch, seq, d_model]
        if x.dtype() != DType::F32 {
            // A table held in half precision: the residual stream stays f32.
            x = x.cast(FloatDType::F32);
        }
        for (index, layer) in self.model.layers.iter().enumerate() {
            let attended = layer.self_attn.forward(
                normalize(&layer.input_layernorm, x.clone()),
                &rotary,
                &mask,
                cache,
                index,
                adapters,
            );
            x = x + attended;
            let normed = normalize(&layer.post_attention_layernorm, x.clone());
            x = x + layer.mlp.forward(normed, adapters);
        }
        cache.advance(seq);
        normalize(&self.model.norm, x)
    }

    /// The LM head: `[batch, seq, d_model]` → `[batch, seq, vocab]`.
    fn logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        match &self.lm_head {
            Some(head) => project(head, hidden, false),
            // Tied: the embedding matrix [vocab, d_model], transposed.
            None => as_rows(hidden, |x| {
                base_product(x, self.model.embed_tokens.weight.val().transpose(), None)
            }),
        }
    }

    fn save(&self, dir: &Path) -> crate::Result<()> {
        CausalLm::save(self, dir)
    }

    fn load(dir: &Path, device: &Device) -> crate::Result<Self> {
        CausalLm::load(dir, device)
    }
}

/// The rotary tables `(cos, signed sin)` of one forward, `[batch, 1, seq, head_dim]` each.
struct Rotary {
    keys: (Tensor<4>, Tensor<4>),
    /// The keys' tables × 1/√head_dim.
    queries: (Tensor<4>, Tensor<4>),
}

impl DecoderLayer {
    /// The layer's seven projections by their path inside it (Hugging Face's names).
    pub(crate) fn projections(&self) -> [(&'static str, &Linear); 7] {
        let (attn, mlp) = (&self.self_attn, &self.mlp);
        [
            ("self_attn.q_proj", &attn.q_proj),
            ("self_attn.k_proj", &attn.k_proj),
            ("self_attn.v_proj", &attn.v_proj),
            ("self_attn.o_proj", &attn.o_proj),
            ("mlp.gate_proj", &mlp.gate_proj),
            ("mlp.up_proj", &mlp.up_proj),
            ("mlp.down_proj", &mlp.down_proj),
        ]
    }
}

impl Attention {
    /// `x`: `[batch, seq, d_model]` → `[batch, seq, d_model]`; appends this layer's keys and
    /// values to `cache`.
    fn forward(
        &self,
        x: Tensor<3>,
        rotary: &Rotary,
        mask: &Tensor<4>,
        cache: &mut KvCache,
        layer: usize,
        adapters: bool,
    ) -> Tensor<3> {
        let [batch, seq, _] = x.dims();
        let project = |linear: &Linear, x: Tensor<3>| project(linear, x, adapters);
        let (h, kv, hd) = (self.heads, self.kv_heads, self.head_dim);
        // [batch, seq, heads·head_dim] → [batch, heads, seq, head_dim]
        let split = |t: Tensor<3>, heads: usize| t.reshape([batch, seq, heads, hd]).swap_dims(1, 2);
        let (cos, sin) = &rotary.queries;
        let q = fused::rotary(project(&self.q_proj, x.clone()), h, cos, sin); // q/√d
        let (cos, sin) = &rotary.keys;
        let k = fused::rotary(project(&self.k_proj, x.clone()), kv, cos, sin);
        let v = split(project(&self.v_proj, x), kv);
        let (k, v) = cache.extend(layer, k, v); // [batch, kv_heads, total, head_dim]
        // softmax(q·kᵀ/√d + mask)·v (Vaswani et al. 2017, eq. 1)
        let context = fused::attention(q, k, v, mask); // [batch, seq, heads·head_dim]
        project(&self.o_proj, context)
    }
}

impl Mlp {
    fn forward(&self, x: Tensor<3>, adapters: bool) -> Tensor<3> {
        let gate = project(&self.gate_proj, x.clone(), adapters);
        let up = project(&self.up_proj, x, adapters);
        project(&self.down_proj, fused::swiglu(gate, up), adapters)
    }
}

/// `norm(x)`, burn's `RmsNorm::forward` as one fused pass where the backend has it.
fn normalize(norm: &RmsNorm, x: Tensor<3>) -> Tensor<3> {
    fused::rms_norm(x, norm.gamma.val(), norm.epsilon)
}

/// A projection `[batch, seq, d_in]` → `[batch, seq, d_out]`: `x·W₀ + b`, plus the LoRA
/// update `scale·(x·A)·B` when the weight has an adapter and `adapters` is on (Hu et al.
/// 2021, eq. 3). The update is applied to `x`, never folded into `W₀` (burn's `Param::val`
/// would), so no weight-sized tensor or gradient is formed — see `lora.rs`.
fn project(linear: &Linear, x: Tensor<3>, adapters: bool) -> Tensor<3> {
    let weight = &linear.weight;
    let bias = linear.bias.as_ref().map(|b| b.val());
    as_rows(x, |x| {
        let base = base_product(x.clone(), weight.base(), bias);
        match weight.adapter().filter(|_| adapters) {
            None => base,
            Some(lora) => {
                let low = x.matmul(lora.a.val()); // [rows, r]
                base + low.matmul(lora.b.val().mul_scalar(lora.scale))
            }
        }
    })
}

/// `x·W + b` for `x` `[rows, d_in]`, `W` `[d_in, n]`. A weight held in half precision
/// ([`CausalLm::with_base_dtype`]) multiplies `x` rounded to its dtype, and the product is
/// widened back to `x`'s (see `base_precision.rs` for why not the other way round); the bias
/// stays in `x`'s dtype.
pub(crate) fn base_product(x: Tensor<2>, weight: Tensor<2>, bias: Option<Tensor<1>>) -> Tensor<2> {
    let dtype = x.dtype();
    let product = if weight.dtype() == dtype {
        fused::linear(x, weight)
    } else {
        let narrow = x.cast(FloatDType::from(weight.dtype()));
        fused::linear(narrow, weight).cast(FloatDType::from(dtype))
    }; // [rows, n]
    match bias {
        Some(bias) => product + bias.unsqueeze_dim(0),
        None => product,
    }
}

/// `x` `[batch, seq, d]` through `f` as one `[batch·seq, d]` matrix. burn keeps a 3-D product
/// with a shared weight batched when `seq` fills its row tiles, and under autodiff the
/// backward of that broadcast forms one weight-sized gradient per batch row before summing
/// them: 4.4 GB at once for the tied head of a 0.5 B model on 8 rows. As rows, the weight's
/// gradient is one `[d, n]` product.
fn as_rows(x: Tensor<3>, f: impl FnOnce(Tensor<2>) -> Tensor<2>) -> Tensor<3> {
    let [batch, seq, d] = x.dims();
    let y = f(x.reshape([batch * seq, d])); // [batch·seq, n]
    let n = y.dims()[1];
    y.reshape([batch, seq, n])
}
