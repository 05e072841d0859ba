//! # grpo-verifiers
//!
//! Reward functions for GRPO, and everything needed to write your own. This crate does not
//! depend on burn: a verifier author builds it in seconds.
//!
//! - [`Verifier`]: the one trait. `verify(&Sample) -> Result<Score, VerifyError>`, where `Err`
//!   means *unscorable* (a broken gold, a crashed plugin) — never the same as a zero reward.
//! - Built-ins: the [arithmetic checker](arithmetic), the [regex matcher](regex_matcher)
//!   (with DeepSeek-R1's format check), [combinators](combinators) (weighted sum, gate, max)
//!   and [external-process plugins](external) in any language.
//! - [`VerifierSet`]: the weighted sum a `V.toml` describes; scores batches in parallel with
//!   panics caught and a per-sample time budget.
//!
//! ## Guarantees for untrusted completions
//! Completions are written by a model being optimised to get reward. The built-in verifiers
//! never panic on any input and return in time bounded by the input's length: extraction is a
//! linear scan, regexes run on the `regex` crate (no backtracking), numbers are exact
//! rationals capped at 16 384 bits, and `10^10^10` is refused rather than computed.
//!
//! ```
//! use grpo_verifiers::{Sample, Verifier, VerifierSet};
//!
//! let set = VerifierSet::from_toml_str(r#"
//!     [[verifiers]]
//!     kind = "arithmetic"
//! "#, "inline").unwrap();
//! let row = serde_json::json!({"answer": "1000"});
//! let eval = set.evaluate(&Sample::new("", r"So the total is \boxed{1,000}.", row.as_object().unwrap()));
//! assert_eq!(eval.reward, Ok(1.0));
//! ```

pub mod arithmetic;
pub mod combinators;
mod config;
pub mod external;
mod guard;
pub mod regex_matcher;
pub mod unit_test;
mod verifier;

pub use combinators::{Evaluation, Member, VerifierSet};
pub use config::{COMBINATORS, ConfigError, Registry};
pub use verifier::{MemberScore, Sample, Score, Verifier, VerifyError};
