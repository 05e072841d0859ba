//! A byte-level tokenizer that needs no files: one token per byte, plus BOS, EOS and PAD.

use super::Tokenizer;

/// Ids 0–255 are bytes; 256 is BOS, 257 EOS, 258 PAD. Any text round-trips exactly.
///
/// ```
/// use grpo_policy::{ByteTokenizer, Tokenizer};
///
/// let tokenizer = ByteTokenizer;
/// let ids = tokenizer.encode("12+7=");
/// assert_eq!(ids, vec![49, 50, 43, 55, 61]);
/// assert_eq!(tokenizer.decode(&[49, 57, ByteTokenizer::EOS]), "19");
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ByteTokenizer;

impl ByteTokenizer {
    pub const BOS: u32 = 256;
    pub const EOS: u32 = 257;
    pub const PAD: u32 = 258;
    pub const VOCAB_SIZE: usize = 259;
}

impl Tokenizer for ByteTokenizer {
    fn encode(&self, text: &str) -> Vec<u32> {
        text.bytes().map(u32::from).collect()
    }

    fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids.iter().filter_map(|&id| u8::try_from(id).ok()).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn vocab_size(&self) -> usize {
        Self::VOCAB_SIZE
    }

    fn bos_id(&self) -> Option<u32> {
        Some(Self::BOS)
    }

    fn eos_ids(&self) -> &[u32] {
        &[Self::EOS]
    }

    fn pad_id(&self) -> u32 {
        Self::PAD
    }
}
