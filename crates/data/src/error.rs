//! The one error type of the crate: every variant names the file (and line) it is about.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line that is not a JSON object with a string `prompt` (or a reader's own fields).
    #[error("{path}:{line}: {message}")]
    Line {
        path: PathBuf,
        line: u64,
        message: String,
    },
    /// A task or dedup setting that cannot work, named by its field.
    #[error("invalid {field}: {message}")]
    Config {
        field: &'static str,
        message: String,
    },
    /// A restored cursor that does not fit the dataset it is restored on.
    #[error("cursor does not fit this dataset: {0}")]
    Cursor(String),
}

impl From<grpo_base::WriteError> for DataError {
    fn from(error: grpo_base::WriteError) -> Self {
        DataError::io(error.path, error.source)
    }
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn line(path: impl Into<PathBuf>, line: u64, message: impl Into<String>) -> Self {
        DataError::Line {
            path: path.into(),
            line,
            message: message.into(),
        }
    }

    pub(crate) fn config(field: &'static str, message: impl Into<String>) -> Self {
        DataError::Config {
            field,
            message: message.into(),
        }
    }
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;
