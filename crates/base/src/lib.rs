//! # grpo-base
//!
//! Small things every grpo crate needs, kept in one place so that copies cannot drift:
//!
//! - [`SplitMix64`]: the one random stream — the data order, the procedural tasks and the
//!   sampler all draw from it, so a seed means the same run on every machine.
//! - [`AtomicFile`] and [`replace`]: files (and directories) that appear whole or not at all.
//! - [`toml_location`] / [`toml_line`] / [`line_at`]: where a TOML error points, for messages
//!   that name `file:line`.
//! - [`panic_message`]: what a caught panic said (a shard's thread that failed).
//!
//! It depends on `toml` alone (no burn), so the verifiers crate can use it too.

mod atomic;
mod panic;
mod rng;
mod toml_line;

pub use atomic::{AtomicFile, WriteError, replace, temp_path};
pub use panic::panic_message;
pub use rng::{SplitMix64, mix, stable_hash};
pub use toml_line::{line_at, toml_line, toml_location};
