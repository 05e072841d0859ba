//! # grpo
//!
//! Reinforcement learning of language models from verifiable rewards (GRPO and its
//! descendants), on burn. This facade re-exports the workspace's crates; each can also be
//! used on its own:
//!
//! - [`verifiers`] (`grpo-verifiers`): reward functions — the [`verifiers::Verifier`] trait,
//!   the arithmetic checker, the regex matcher, combinators and external-process plugins.
//!   It does not depend on burn.
//! - [`policy`] (`grpo-policy`): the model — the [`policy::LanguageModel`] trait the sampler
//!   and trainers take, a Llama/Qwen2 causal LM on burn with a KV cache, log-prob helpers,
//!   tokenizers and Hugging Face checkpoint loading.
//! - [`sampler`] (`grpo-sampler`): K completions per prompt, KV-cached and seeded.
//! - [`environments`] (`grpo-environments`): multi-turn episodes — the
//!   [`environments::Environment`] trait, tool calling with a calculator, a sandboxed Python
//!   tool and your own [`environments::Tool`]s. It does not depend on burn.
//! - [`data`] (`grpo-data`): prompt datasets, procedural tasks with generalization splits,
//!   GSM8K/HumanEval readers, dedup.
//! - [`trainer`] (`grpo-trainer`): advantages, the GRPO loss family, the training loop, SFT
//!   warm-up, checkpoints, metrics, evaluation.
//! - [`recipe`] (`grpo-recipe`): a whole run from one TOML file — warm-up, GRPO, a
//!   compute-matched SFT control arm, evaluation per split, results and charts.
//! - [`base`] (`grpo-base`): what every crate shares — the seeded random stream, atomic
//!   writes, TOML error lines.
//!
//! The `grpo` binary is the command line (`grpo train --config RUN.toml`, `grpo score
//! --verifiers V.toml INPUT.jsonl`, …); [`device`] is how it and the examples pick a backend.

pub mod device;

pub use grpo_base as base;
pub use grpo_data as data;
pub use grpo_environments as environments;
pub use grpo_policy as policy;
pub use grpo_recipe as recipe;
pub use grpo_sampler as sampler;
pub use grpo_trainer as trainer;
pub use grpo_verifiers as verifiers;

/// The README's Rust examples, compiled and run as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
