//! A Hugging Face `tokenizer.json` tokenizer, with the model's special ids from its config files.

use std::path::Path;

use super::Tokenizer;
use crate::config::TokenIds;
use crate::error::{PolicyError, Result};

/// A `tokenizer.json` tokenizer (the `tokenizers` crate).
pub struct HfTokenizer {
    inner: tokenizers::Tokenizer,
    bos: Option<u32>,
    eos: Vec<u32>,
    pad: u32,
}

impl std::fmt::Debug for HfTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HfTokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("pad", &self.pad)
            .finish()
    }
}

/// The special-token fields of `config.json` / `generation_config.json`.
#[derive(serde::Deserialize, Default)]
struct SpecialIds {
    bos_token_id: Option<u32>,
    eos_token_id: Option<TokenIds>,
    pad_token_id: Option<u32>,
}

fn special_ids(path: &Path) -> Result<SpecialIds> {
    if !path.exists() {
        return Ok(SpecialIds::default());
    }
    let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| PolicyError::InvalidFile {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

impl HfTokenizer {
    /// Loads `dir/tokenizer.json`; BOS/EOS/PAD come from `generation_config.json`, else
    /// `config.json` (the generation config is what `generate()` uses). Without a PAD id, the
    /// first EOS pads (padding is masked, so its id does not matter).
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        let inner =
            tokenizers::Tokenizer::from_file(&path).map_err(|e| PolicyError::InvalidFile {
                path: path.clone(),
                message: e.to_string(),
            })?;
        let generation = special_ids(&dir.join("generation_config.json"))?;
        let model = special_ids(&dir.join("config.json"))?;
        let eos = generation
            .eos_token_id
            .or(model.eos_token_id)
            .map(|ids| ids.to_vec())
            .unwrap_or_default();
        if eos.is_empty() {
            return Err(PolicyError::InvalidFile {
                path: dir.join("config.json"),
                message: "no `eos_token_id` (in it or in generation_config.json)".into(),
            });
        }
        let pad = generation
            .pad_token_id
            .or(model.pad_token_id)
            .unwrap_or(eos[0]);
        Ok(HfTokenizer {
            inner,
            bos: generation.bos_token_id.or(model.bos_token_id),
            eos,
            pad,
        })
    }
}

impl Tokenizer for HfTokenizer {
    fn encode(&self, text: &str) -> Vec<u32> {
        // Encoding plain text with a loaded tokenizer does not fail; an empty list is the
        // honest answer if it ever did.
        self.inner
            .encode(text, false)
            .map(|encoding| encoding.get_ids().to_vec())
            .unwrap_or_default()
    }

    fn decode(&self, ids: &[u32]) -> String {
        self.inner.decode(ids, true).unwrap_or_default()
    }

    fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    fn eos_ids(&self) -> &[u32] {
        &self.eos
    }

    fn pad_id(&self) -> u32 {
        self.pad
    }
}
