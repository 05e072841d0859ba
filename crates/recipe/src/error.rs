//! The recipe's one error type: every variant names the file (and line) or section at fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecipeError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Where in the run file (`run.toml:12`, or `run.toml:12: [grpo]`) and what is wrong.
    #[error("{location}: {message}")]
    Config { location: String, message: String },
    /// A chart that could not be drawn.
    #[error("{}: {message}", path.display())]
    Chart { path: PathBuf, message: String },
    #[error(transparent)]
    Verifiers(#[from] grpo_verifiers::ConfigError),
    #[error(transparent)]
    Data(#[from] grpo_data::DataError),
    #[error(transparent)]
    Policy(#[from] grpo_policy::PolicyError),
    #[error(transparent)]
    Trainer(#[from] grpo_trainer::TrainerError),
}

impl From<grpo_base::WriteError> for RecipeError {
    fn from(error: grpo_base::WriteError) -> Self {
        RecipeError::io(error.path, error.source)
    }
}

impl RecipeError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RecipeError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn config(location: impl Into<String>, message: impl std::fmt::Display) -> Self {
        RecipeError::Config {
            location: location.into(),
            message: message.to_string(),
        }
    }
}

pub type Result<T, E = RecipeError> = std::result::Result<T, E>;
