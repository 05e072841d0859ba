//! What can go wrong building, loading or saving a policy.

use std::path::PathBuf;

/// An error of the policy crate; each names the file, field or tensor at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    InvalidFile { path: PathBuf, message: String },
    #[error("model config: `{field}` {message}")]
    InvalidConfig { field: String, message: String },
    #[error("LoRA: `{field}` {message}")]
    InvalidLora { field: String, message: String },
    #[error("{}: model_type `{model_type}` is not supported (supported: llama, qwen2)", path.display())]
    UnsupportedModelType { path: PathBuf, model_type: String },
    #[error("{}: tensor `{tensor}` is missing", path.display())]
    MissingTensor { path: PathBuf, tensor: String },
    #[error("{}: tensor `{tensor}` has shape {found:?}, the model expects {expected:?}", path.display())]
    ShapeMismatch {
        path: PathBuf,
        tensor: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("{}: {message}", path.display())]
    Checkpoint { path: PathBuf, message: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A device name that names none, or a worker that cannot be reached or served.
    #[error("device `{name}`: {message}")]
    Device { name: String, message: String },
    /// A chat template that does not compile, or that refused a conversation.
    #[error("chat template: {0}")]
    ChatTemplate(String),
}

impl From<grpo_base::WriteError> for PolicyError {
    fn from(error: grpo_base::WriteError) -> Self {
        PolicyError::Write {
            path: error.path,
            source: error.source,
        }
    }
}

pub type Result<T, E = PolicyError> = std::result::Result<T, E>;
