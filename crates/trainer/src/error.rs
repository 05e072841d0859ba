//! The trainer's one error type.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrainerError {
    /// A setting that cannot work, named by its field.
    #[error("invalid {field}: {message}")]
    Config { field: String, message: String },
    #[error("{path}: {message}")]
    ConfigFile { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line of a file the trainer reads back (a metrics log) that it cannot parse.
    #[error("{}:{line}: {message}", path.display())]
    Malformed {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
    /// A tensor the trainer needs on the host (log-probs, loss statistics) could not be read
    /// back from the device.
    #[error("cannot read the {what} back from the device: {message}")]
    ReadBack { what: &'static str, message: String },
    /// Work on one of the run's devices failed: on a worker, most often because it died or its
    /// connection closed. The run resumes from its last checkpoint, on the same or fewer devices.
    #[error("device `{device}`: {message}")]
    Device { device: String, message: String },
    #[error(transparent)]
    Policy(#[from] grpo_policy::PolicyError),
    #[error(transparent)]
    Sampler(#[from] grpo_sampler::SamplerError),
    #[error(transparent)]
    Data(#[from] grpo_data::DataError),
    #[error(transparent)]
    Verifiers(#[from] grpo_verifiers::ConfigError),
    /// A supervised target that cannot be played through the environment.
    #[error("demonstration, for the row whose prompt begins {prompt:?}: {message}")]
    Demonstration { prompt: String, message: String },
    /// A row whose prompt is still a conversation: the trainers take text prompts.
    #[error(
        "a row's prompt is a conversation ({messages} messages, beginning {begins:?}): render it \
         with the model's chat template first (`ChatTemplate::render`; a run file's rows are \
         rendered by the recipe)"
    )]
    UnrenderedConversation { messages: usize, begins: String },
    /// The environment could not start an episode for a row.
    #[error("environment, for the row whose prompt begins {prompt:?}: {source}")]
    Environment {
        prompt: String,
        #[source]
        source: grpo_environments::EnvironmentError,
    },
}

impl TrainerError {
    /// The values of `tensor` on the host, or an error naming `what` they are.
    pub(crate) fn read_back<const D: usize>(
        tensor: grpo_policy::burn::tensor::Tensor<D>,
        what: &'static str,
    ) -> Result<Vec<f32>> {
        tensor
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| TrainerError::ReadBack {
                what,
                message: format!("{e:?}"),
            })
    }

    pub(crate) fn config(field: &str, message: impl Into<String>) -> Self {
        TrainerError::Config {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainerError::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<grpo_base::WriteError> for TrainerError {
    fn from(error: grpo_base::WriteError) -> Self {
        TrainerError::io(error.path, error.source)
    }
}

pub type Result<T, E = TrainerError> = std::result::Result<T, E>;
