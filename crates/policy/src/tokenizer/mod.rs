//! Tokenizers: text ↔ token ids.

mod bytes;
mod chat;
mod hf;
mod python_json;

pub use bytes::ByteTokenizer;
pub use chat::{ChatMessage, ChatTemplate};
pub use hf::HfTokenizer;

/// What the sampler and trainer need of a tokenizer.
pub trait Tokenizer: Send + Sync {
    /// Token ids of `text`, special tokens not added.
    fn encode(&self, text: &str) -> Vec<u32>;
    /// Text of `ids`, special tokens left out.
    fn decode(&self, ids: &[u32]) -> String;
    fn vocab_size(&self) -> usize;
    fn bos_id(&self) -> Option<u32>;
    /// Tokens that end a completion (a model may have several).
    fn eos_ids(&self) -> &[u32];
    /// The id used to pad batches.
    fn pad_id(&self) -> u32;
}
