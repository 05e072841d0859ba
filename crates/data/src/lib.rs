//! # grpo-data
//!
//! Prompts for GRPO. A row is a JSON object with a string `prompt` and any other fields
//! (`answer`, `numbers`, `target`, `tests`, …) that travel untouched to the verifiers.
//!
//! - [`JsonlReader`] streams rows from JSONL (or `.jsonl.gz`); every error names the file and
//!   line; malformed lines fail the read or are skipped and counted ([`OnMalformed`]).
//! - [`Dataset`] gives random access — in memory, or by byte offsets into a large file —
//!   and [`Epochs`] serves it in a seeded shuffle per epoch with a [`Cursor`] that a
//!   checkpoint saves and restores exactly.
//! - [`tasks`]: procedural arithmetic and countdown problems with generalization splits
//!   (unseen templates, longer operands, unseen operator compositions).
//! - [`read_gsm8k`] and [`read_humaneval`] read the real datasets.
//! - [`Deduplicator`]: exact and MinHash near-duplicate removal.
//!
//! ```
//! use grpo_data::tasks::{ArithmeticTask, Split, Task};
//! use grpo_data::{Dataset, Epochs};
//!
//! let rows = ArithmeticTask::default().generate(Split::Train, 100, 42)?;
//! assert!(rows[0].get("answer").is_some());
//! let data = Dataset::from_rows(rows);
//! let mut order = Epochs::new(data.len(), 42, true)?;
//! let batch = data.get_many(&order.next_batch(8))?;
//! let saved = order.cursor(); // goes into a checkpoint
//! assert_eq!(batch.len(), 8);
//! # let _ = saved;
//! # Ok::<(), grpo_data::DataError>(())
//! ```

mod dataset;
mod dedup;
mod epochs;
mod error;
mod jsonl;
mod readers;
mod row;
pub mod tasks;

pub use dataset::Dataset;
pub use dedup::{Decision, DedupConfig, DedupReport, Deduplicator, normalize};
pub use epochs::{Cursor, Epochs};
pub use error::{DataError, Result};
pub use jsonl::{
    Convert, JsonlReader, Located, OnMalformed, Skipped, read_jsonl, write_jsonl, write_row,
};
pub use readers::{read_gsm8k, read_humaneval};
pub use row::Row;
