//! # grpo-recipe
//!
//! A whole run from one TOML file — what `grpo train --config RUN.toml` and the examples do:
//! build or load a model, make the task's splits, warm up with SFT, run GRPO, optionally run
//! a compute-matched SFT control arm, evaluate every arm on every split, and write
//! `results.json`, `results.md`, metrics, completions and charts into the run directory.
//!
//! ```no_run
//! use grpo_recipe::Run;
//! use grpo_policy::burn::tensor::Device;
//!
//! let run = Run::from_file("examples/configs/math_rl.toml".as_ref())?;
//! let results = run.execute("runs/math_rl".as_ref(), &Device::flex(), false)?;
//! println!("{}", results.markdown());
//! # Ok::<(), grpo_recipe::RecipeError>(())
//! ```
//!
//! The file's sections are typed: [`RunConfig`] (with [`ModelConfig`] and [`TaskConfig`]),
//! `[sft]` an `SftConfig`, `[grpo]` a `GrpoConfig`, `[[verifiers]]` as in a `V.toml` — a
//! user's own verifier kinds come in through a [`Registry`](grpo_verifiers::Registry) and
//! [`Run::from_file_with`]. The file is parsed once; every error names the file, the line and
//! the key or section.

pub mod chart;
mod config;
mod error;
mod overrides;
mod run;
mod seeds;
pub mod stats;
mod task;

pub use config::{BaseDtype, ModelConfig, PassRateFilter, RunConfig};
pub use error::{RecipeError, Result};
pub use overrides::apply_overrides;
pub use run::{Filtered, Results, Run, load_model};
pub use seeds::{SeedResults, summarize};
pub use task::{EvalSet, Files, Generated, TaskConfig};
