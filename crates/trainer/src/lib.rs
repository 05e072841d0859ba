//! # grpo-trainer
//!
//! GRPO on burn. The pieces, each usable alone:
//!
//! - [`advantages`]: group-relative advantages (GRPO, RLOO, REINFORCE++-baseline) with
//!   unscorable samples left out of the statistics;
//! - [`loss`]: the clipped policy-gradient loss family — `loss_type` grpo | bnpo | dapo |
//!   dr_grpo, token- or sequence-level (GSPO) ratios, dual clip, KL k1 | k2 | k3;
//! - [`GrpoTrainer`]: the loop — sample, score, advantages, dynamic sampling, μ micro-batched
//!   passes, clipped AdamW — with metrics (TRL's names), a completions log, crash-safe
//!   checkpoints that resume exactly, and evaluation (pass@1, pass@k, reward);
//! - [`SftTrainer`]: the supervised warm-up, on the same model, optimiser and checkpoints.

pub mod advantages;
mod allocator;
mod checkpoint;
pub mod compute;
mod config;
mod demonstration;
mod episodes;
mod error;
mod eval;
mod grpo;
pub mod loss;
mod metrics;
mod optim;
mod packing;
mod progress;
mod run;
mod sft;
mod shards;
mod watchdog;

pub use allocator::keep_freed_memory;
pub use checkpoint::latest as latest_checkpoint;
pub use config::{
    AdvantageEstimator, GrpoConfig, ImportanceSamplingLevel, KlEstimator, LossType, ScaleRewards,
    Schedule,
};
pub use error::{Result, TrainerError};
pub use eval::{
    EvalResult, EvalSettings, PassRates, check_pass_band, evaluate, pass_at_k, pass_rates,
};
pub use grpo::{Batch, GrpoTrainer, TrainRow};
pub use metrics::{Metrics, read_metrics};
pub use sft::{MixedTarget, SftConfig, SftTrainer};
