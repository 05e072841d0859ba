//! # grpo
//!
//! Reinforcement learning of language models from verifiable rewards (GRPO and its
//! descendants), on burn. This facade re-exports the workspace's crates; each can also be
//! used on its own:
//!
//! - [`verifiers`] (`grpo-verifiers`): reward functions — the [`verifiers::Verifier`] trait,
//!   the arithmetic checker, the regex matcher, combinators and external-process plugins.
//!   It does not depend on burn.
//! - [`policy`] (`grpo-policy`): the model — a Llama/Qwen2 causal LM on burn with a KV
//!   cache, log-prob helpers, tokenizers and Hugging Face checkpoint loading.
//!
//! The `grpo` binary is the command line: `grpo score --verifiers V.toml INPUT.jsonl`.

pub use grpo_policy as policy;
pub use grpo_sampler as sampler;
pub use grpo_verifiers as verifiers;
