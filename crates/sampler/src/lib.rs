//! # grpo-sampler
//!
//! K completions per prompt for GRPO, from the same model code the trainer runs: each prompt
//! is prefilled once and its KV cache repeated K ways, all B·K rows decode together, finished
//! rows leave the batch, and the next token is chosen on the device (only the chosen ids and
//! their log-probs come back). Seeded: one random stream per (seed, prompt, sample), so a
//! completion does not depend on the other prompts of its batch.

mod config;
mod sampler;
mod select;
mod stop;

pub use config::SamplingConfig;
pub use sampler::{Completion, FinishReason, Rollouts, Sampler, Strategy};
pub use select::choose;

/// Why sampling could not start.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SamplerError {
    #[error("sampling config: `{field}` {message}")]
    InvalidConfig { field: String, message: String },
    #[error("prompt {index} encodes to no tokens")]
    EmptyPrompt { index: usize },
    #[error(
        "token id {id} is outside the model's vocabulary of {vocab}: tokenizer and model do not match"
    )]
    TokenOutOfVocabulary { id: u32, vocab: usize },
    #[error("{got} episodes for {expected} completions: one episode per completion")]
    EpisodeCount { expected: usize, got: usize },
    /// A shard stopped with a panic: on a worker's device, most often because the worker died
    /// and its connection closed.
    #[error("decoding on replica {replica} failed: {message}")]
    ShardFailed { replica: usize, message: String },
}
