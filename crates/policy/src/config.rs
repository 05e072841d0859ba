//! The model's shape: a Hugging Face `config.json` of a Llama or Qwen2 model, read as it is.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{PolicyError, Result};

/// Which Hugging Face architecture the weights follow. The two differ only in defaults:
/// Qwen2 always has q/k/v biases; Llama has them when `attention_bias` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelType {
    Llama,
    Qwen2,
}

/// A causal LM's configuration, field for field as in Hugging Face's `LlamaConfig` /
/// `Qwen2Config` (fields we do not use are ignored when reading).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmConfig {
    pub model_type: ModelType,
    pub vocab_size: usize,
    /// d_model.
    pub hidden_size: usize,
    /// SwiGLU width.
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// Grouped-query attention: fewer key/value heads than query heads (default: as many).
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Per-head width (default: hidden_size / num_attention_heads).
    #[serde(default)]
    pub head_dim: Option<usize>,
    #[serde(default = "default_rms_norm_eps")]
    pub rms_norm_eps: f64,
    /// The RoPE base. transformers 4 writes it at the top level; transformers 5 inside
    /// `rope_parameters` (read by [`LmConfig::from_file`] into this field).
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    #[serde(default = "default_max_position_embeddings")]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Standard deviation of the random initial weights (Hugging Face's `_init_weights`:
    /// normal(0, initializer_range) for linear and embedding weights, zero biases).
    #[serde(default = "default_initializer_range")]
    pub initializer_range: f64,
    /// Llama's switch for q/k/v/o biases (Qwen2 has q/k/v biases regardless).
    #[serde(default)]
    pub attention_bias: bool,
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    #[serde(default)]
    pub eos_token_id: Option<TokenIds>,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    /// Only `null` is supported: scaled RoPE variants would silently give wrong logits.
    #[serde(default, skip_serializing)]
    pub rope_scaling: Option<serde_json::Value>,
    /// transformers 5's home of `rope_theta` and the RoPE type (only `default` is supported).
    #[serde(default, skip_serializing)]
    pub rope_parameters: Option<RopeParameters>,
    /// Qwen2's sliding-window attention; only `false` is supported.
    #[serde(default, skip_serializing)]
    pub use_sliding_window: bool,
    #[serde(default = "default_activation", skip_serializing)]
    pub hidden_act: String,
}

/// transformers 5's `rope_parameters` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RopeParameters {
    #[serde(default)]
    pub rope_theta: Option<f64>,
    #[serde(default)]
    pub rope_type: Option<String>,
}

/// `eos_token_id` is a number or a list of numbers in Hugging Face configs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    One(u32),
    Many(Vec<u32>),
}

impl TokenIds {
    pub fn to_vec(&self) -> Vec<u32> {
        match self {
            TokenIds::One(id) => vec![*id],
            TokenIds::Many(ids) => ids.clone(),
        }
    }
}

fn default_initializer_range() -> f64 {
    0.02
}

fn default_rms_norm_eps() -> f64 {
    1e-6
}
fn default_rope_theta() -> f64 {
    10_000.0
}
fn default_max_position_embeddings() -> usize {
    2048
}
fn default_activation() -> String {
    "silu".into()
}

impl LmConfig {
    /// A small Llama-shaped model for training from scratch (tied embeddings, no biases).
    ///
    /// The benchmark workload of DESIGN.md is `LmConfig::small(vocab, 256, 4, 8, 680)`.
    pub fn small(
        vocab_size: usize,
        hidden_size: usize,
        layers: usize,
        heads: usize,
        intermediate_size: usize,
    ) -> Self {
        LmConfig {
            model_type: ModelType::Llama,
            vocab_size,
            hidden_size,
            intermediate_size,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            num_key_value_heads: Some(heads),
            head_dim: None,
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            max_position_embeddings: 4096,
            tie_word_embeddings: true,
            initializer_range: default_initializer_range(),
            attention_bias: false,
            bos_token_id: None,
            eos_token_id: None,
            pad_token_id: None,
            rope_scaling: None,
            rope_parameters: None,
            use_sliding_window: false,
            hidden_act: default_activation(),
        }
    }

    /// Reads and validates a `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_owned(),
            source,
        })?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| PolicyError::InvalidFile {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        let model_type = value
            .get("model_type")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        if !matches!(model_type, "llama" | "qwen2") {
            return Err(PolicyError::UnsupportedModelType {
                path: path.to_owned(),
                model_type: model_type.to_owned(),
            });
        }
        let mut config: LmConfig =
            serde_json::from_value(value).map_err(|e| PolicyError::InvalidFile {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        if let Some(theta) = config.rope_parameters.as_ref().and_then(|p| p.rope_theta) {
            config.rope_theta = theta;
        }
        config.validate().map_err(|e| PolicyError::InvalidFile {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        Ok(config)
    }

    /// Checks the shapes fit together.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field: &str, message: String| {
            Err(PolicyError::InvalidConfig {
                field: field.to_owned(),
                message,
            })
        };
        if self.rope_scaling.as_ref().is_some_and(|v| !v.is_null()) {
            return invalid(
                "rope_scaling",
                "is set; scaled RoPE is not supported".into(),
            );
        }
        if let Some(kind) = self
            .rope_parameters
            .as_ref()
            .and_then(|p| p.rope_type.as_deref())
            && kind != "default"
        {
            return invalid(
                "rope_parameters.rope_type",
                format!("is `{kind}`; only `default` RoPE is supported"),
            );
        }
        if self.use_sliding_window {
            return invalid(
                "use_sliding_window",
                "is true; sliding-window attention is not supported".into(),
            );
        }
        if self.hidden_act != "silu" {
            return invalid(
                "hidden_act",
                format!(
                    "is `{}`; only `silu` (SwiGLU) is supported",
                    self.hidden_act
                ),
            );
        }
        for (field, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.kv_heads()),
        ] {
            if value == 0 {
                return invalid(field, "must be positive".into());
            }
        }
        if self.head_dim.is_none() && !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return invalid(
                "num_attention_heads",
                format!(
                    "({}) must divide hidden_size ({})",
                    self.num_attention_heads, self.hidden_size
                ),
            );
        }
        if !self.num_attention_heads.is_multiple_of(self.kv_heads()) {
            return invalid(
                "num_key_value_heads",
                format!(
                    "({}) must divide num_attention_heads ({})",
                    self.kv_heads(),
                    self.num_attention_heads
                ),
            );
        }
        if !self.head_size().is_multiple_of(2) {
            return invalid(
                "head_dim",
                format!("({}) must be even for rotary embeddings", self.head_size()),
            );
        }
        if !(self.rms_norm_eps > 0.0 && self.rope_theta > 0.0) {
            return invalid("rms_norm_eps", "and rope_theta must be positive".into());
        }
        Ok(())
    }

    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn head_size(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Whether q/k/v projections carry a bias.
    pub fn qkv_bias(&self) -> bool {
        self.model_type == ModelType::Qwen2 || self.attention_bias
    }

    /// Whether the output projection carries a bias (Llama's `attention_bias` only).
    pub fn o_bias(&self) -> bool {
        self.model_type == ModelType::Llama && self.attention_bias
    }

    /// The number of parameters (tied embeddings counted once).
    pub fn parameter_count(&self) -> usize {
        let (d, h, kv, hd, f, v) = (
            self.hidden_size,
            self.num_attention_heads,
            self.kv_heads(),
            self.head_size(),
            self.intermediate_size,
            self.vocab_size,
        );
        let qkv_bias = if self.qkv_bias() {
            (h + 2 * kv) * hd
        } else {
            0
        };
        let o_bias = if self.o_bias() { d } else { 0 };
        let attention = d * h * hd + 2 * d * kv * hd + h * hd * d + qkv_bias + o_bias;
        let mlp = 3 * d * f;
        let layer = attention + mlp + 2 * d;
        let head = if self.tie_word_embeddings { 0 } else { d * v };
        v * d + self.num_hidden_layers * layer + d + head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Qwen2.5-0.5B-Instruct's `config.json` (written by transformers 4).
    const QWEN25_05B: &str = r#"{"architectures":["Qwen2ForCausalLM"],"attention_dropout":0.0,"bos_token_id":151643,
        "eos_token_id":151645,"hidden_act":"silu","hidden_size":896,"initializer_range":0.02,"intermediate_size":4864,
        "max_position_embeddings":32768,"max_window_layers":21,"model_type":"qwen2","num_attention_heads":14,
        "num_hidden_layers":24,"num_key_value_heads":2,"rms_norm_eps":1e-06,"rope_theta":1000000.0,"sliding_window":32768,
        "tie_word_embeddings":true,"torch_dtype":"bfloat16","transformers_version":"4.43.1","use_cache":true,
        "use_sliding_window":false,"vocab_size":151936}"#;

    fn read(text: &str) -> Result<LmConfig> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, text).unwrap();
        LmConfig::from_file(&path)
    }

    #[test]
    fn reads_a_real_qwen2_config() {
        let config = read(QWEN25_05B).unwrap();
        assert_eq!(config.model_type, ModelType::Qwen2);
        assert_eq!((config.kv_heads(), config.head_size()), (2, 64));
        assert_eq!(config.rope_theta, 1e6);
        assert!(config.qkv_bias() && !config.o_bias() && config.tie_word_embeddings);
        assert_eq!(config.eos_token_id, Some(TokenIds::One(151645)));
        // The published parameter count of Qwen2.5-0.5B.
        assert_eq!(config.parameter_count(), 494_032_768);
    }

    #[test]
    fn reads_rope_theta_from_transformers_5_rope_parameters() {
        let text = QWEN25_05B.replace(
            r#""rope_theta":1000000.0"#,
            r#""rope_parameters":{"rope_theta":500000.0,"rope_type":"default"}"#,
        );
        assert_eq!(read(&text).unwrap().rope_theta, 5e5);
    }

    #[test]
    fn refuses_what_it_would_get_wrong() {
        let error = |text: String| read(&text).unwrap_err().to_string();
        let scaled = QWEN25_05B.replace(
            r#""rope_theta""#,
            r#""rope_scaling":{"rope_type":"llama3","factor":32.0},"rope_theta""#,
        );
        assert!(error(scaled).contains("rope_scaling"));
        let yarn = QWEN25_05B.replace(
            r#""rope_theta":1000000.0"#,
            r#""rope_parameters":{"rope_type":"yarn"}"#,
        );
        assert!(error(yarn).contains("rope_type"));
        let sliding = QWEN25_05B.replace(
            r#""use_sliding_window":false"#,
            r#""use_sliding_window":true"#,
        );
        assert!(error(sliding).contains("use_sliding_window"));
        let gpt2 = QWEN25_05B.replace(r#""model_type":"qwen2""#, r#""model_type":"gpt2""#);
        assert!(error(gpt2).contains("gpt2"));
        let heads = QWEN25_05B.replace(r#""num_key_value_heads":2"#, r#""num_key_value_heads":3"#);
        assert!(error(heads).contains("num_key_value_heads"));
        let not_json = error("{".into());
        assert!(not_json.contains("config.json"), "{not_json}");
    }
}
