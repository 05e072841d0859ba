//! # grpo-policy
//!
//! The policy GRPO trains: the [`LanguageModel`] trait the sampler and the trainers take, and
//! its built-in implementor [`CausalLm`] — a Llama/Qwen2-shaped causal language model on burn,
//! with a KV cache for sampling — plus log-prob helpers for the loss, tokenizers, and Hugging
//! Face checkpoint loading. One code path runs on every burn backend compiled in: pass a `&Device`
//! (`Device::flex()`, `Device::ndarray()`, `Device::wgpu(..)`, and `.autodiff()` to train).

mod base_precision;
mod cache;
mod checkpoint;
mod config;
mod device;
mod error;
mod fused;
mod language_model;
mod logprobs;
mod lora;
mod model;
mod rope;
mod tokenizer;

pub use cache::{KvCache, row_index};
pub use config::{LmConfig, ModelType, RopeParameters, TokenIds};
pub use device::{check_device_name, device_by_name, serve_device};
pub use error::{PolicyError, Result};
pub use language_model::{LanguageModel, ModelCache};
pub use logprobs::{CompletionLogits, GroupedCompletions, entropy, logsumexp, token_logprobs};
pub use lora::{LORA_TARGETS, LoraConfig, TargetModules};
pub use model::{Attention, CausalLm, Decoder, DecoderLayer, Mlp};
pub use tokenizer::{ByteTokenizer, ChatMessage, ChatTemplate, HfTokenizer, Tokenizer};

/// burn, as this crate uses it (so downstream crates name the same version).
pub use burn;
