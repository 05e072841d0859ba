//! What to sample: how many completions, how random, how long, when to stop.

use serde::{Deserialize, Serialize};

use crate::SamplerError;

/// Sampling settings (TRL's names where TRL has them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingConfig {
    /// K: completions per prompt (GRPO's group size).
    pub num_generations: usize,
    /// Softmax temperature; 0 means greedy.
    pub temperature: f32,
    /// Keep only the k most likely tokens (0: off).
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches `top_p` (1: off).
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` × the most likely one (0: off).
    pub min_p: f32,
    pub max_new_tokens: usize,
    /// Token ids that end a completion, besides the tokenizer's EOS ids.
    pub stop_token_ids: Vec<u32>,
    /// Strings that end a completion; the text is cut before them.
    pub stop_strings: Vec<String>,
    pub seed: u64,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        SamplingConfig {
            num_generations: 8,
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            max_new_tokens: 256,
            stop_token_ids: Vec::new(),
            stop_strings: Vec::new(),
            seed: 0,
        }
    }
}

impl SamplingConfig {
    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<(), SamplerError> {
        let invalid = |field: &str, message: String| {
            Err(SamplerError::InvalidConfig {
                field: field.to_owned(),
                message,
            })
        };
        if self.num_generations == 0 {
            return invalid("num_generations", "must be at least 1".into());
        }
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return invalid(
                "temperature",
                format!("must be a finite number ≥ 0, got {}", self.temperature),
            );
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return invalid("top_p", format!("must be in (0, 1], got {}", self.top_p));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return invalid("min_p", format!("must be in [0, 1], got {}", self.min_p));
        }
        if self.max_new_tokens == 0 {
            return invalid("max_new_tokens", "must be at least 1".into());
        }
        if self.stop_strings.iter().any(String::is_empty) {
            return invalid("stop_strings", "must not contain an empty string".into());
        }
        Ok(())
    }

    /// Whether any truncation filter is on.
    pub(crate) fn filters(&self) -> bool {
        self.top_k > 0 || self.top_p < 1.0 || self.min_p > 0.0
    }
}
