//! # grpo-trainer
//!
//! GRPO on burn: [`advantages`] and the [`loss`] family as pure, separately tested functions,
//! and the training loop around them.

pub mod advantages;
mod config;
mod error;
pub mod loss;

pub use config::{
    AdvantageEstimator, GrpoConfig, ImportanceSamplingLevel, KlEstimator, LossType, Schedule,
    ScaleRewards,
};
pub use error::{Result, TrainerError};
