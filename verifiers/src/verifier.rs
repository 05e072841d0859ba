//! The one trait every reward function implements, and the values it passes around.

use std::time::Duration;

use serde_json::{Map, Value};

/// One completion to score, together with the dataset row it answers.
///
/// `fields` is the whole dataset row (`answer`, `tests`, `numbers`, `target`, …): the trainer
/// passes it through untouched, so a verifier reads whatever fields it needs.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    pub prompt: &'a str,
    pub completion: &'a str,
    pub fields: &'a Map<String, Value>,
}

impl<'a> Sample<'a> {
    pub fn new(prompt: &'a str, completion: &'a str, fields: &'a Map<String, Value>) -> Self {
        Sample {
            prompt,
            completion,
            fields,
        }
    }

    /// The row's field `name`, or [`VerifyError::MissingField`] (a `null` counts as missing).
    pub fn field(&self, name: &str) -> Result<&'a Value, VerifyError> {
        match self.fields.get(name) {
            None | Some(Value::Null) => Err(VerifyError::MissingField {
                field: name.to_owned(),
            }),
            Some(value) => Ok(value),
        }
    }
}

/// What a verifier says about a sample it could score.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// The reward; finite.
    pub reward: f32,
    /// Whether the completion is right, for verifiers that have such a notion (accuracy
    /// metrics are computed over the samples where this is `Some`).
    pub correct: Option<bool>,
    /// Why, in words a person reads in a completions log.
    pub details: String,
    /// The scores of the members of a combinator, each under its name; empty otherwise.
    pub members: Vec<MemberScore>,
}

impl Score {
    /// A score with a reward and no notion of correctness.
    pub fn reward(reward: f32, details: impl Into<String>) -> Self {
        Score {
            reward,
            correct: None,
            details: details.into(),
            members: Vec::new(),
        }
    }

    /// A binary score: reward 1 when `correct`, else 0.
    pub fn binary(correct: bool, details: impl Into<String>) -> Self {
        Score {
            reward: if correct { 1.0 } else { 0.0 },
            correct: Some(correct),
            details: details.into(),
            members: Vec::new(),
        }
    }
}

/// One member's outcome inside a combinator's [`Score`].
#[derive(Debug, Clone, PartialEq)]
pub struct MemberScore {
    pub name: String,
    pub outcome: Result<Score, VerifyError>,
}

/// Why a sample could not be scored.
///
/// An unscorable sample is *not* a zero reward: the trainer leaves it out of its group's
/// statistics, so a broken gold answer or a crashed sandbox never teaches the model anything.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("field `{field}` is missing from the row")]
    MissingField { field: String },
    #[error("field `{field}` is invalid: {reason}")]
    InvalidField { field: String, reason: String },
    #[error("invalid gold answer: {reason}")]
    InvalidGold { gold: String, reason: String },
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("verifier panicked: {0}")]
    Panicked(String),
    #[error("plugin `{plugin}`: {reason}")]
    Plugin { plugin: String, reason: String },
    #[error("`{member}` is unscorable: {source}")]
    Member {
        member: String,
        source: Box<VerifyError>,
    },
    /// For verifiers written outside this crate (a sandbox that failed, a service that is down).
    #[error("{0}")]
    Other(String),
}

/// A reward function.
///
/// Implement it for your own type and the trainer uses it as it uses the built-ins; nothing
/// else changes. It must be safe to call from many threads at once.
///
/// ```
/// use grpo_verifiers::{Sample, Score, Verifier, VerifyError};
///
/// /// Rewards completions no longer than the row's `max_chars`.
/// struct Brevity;
///
/// impl Verifier for Brevity {
///     fn verify(&self, sample: &Sample<'_>) -> Result<Score, VerifyError> {
///         let max = sample.field("max_chars")?.as_u64().ok_or_else(|| VerifyError::InvalidField {
///             field: "max_chars".into(),
///             reason: "not a non-negative integer".into(),
///         })?;
///         let ok = sample.completion.chars().count() as u64 <= max;
///         Ok(Score::binary(ok, format!("{} chars", sample.completion.chars().count())))
///     }
/// }
///
/// let row = serde_json::json!({"max_chars": 5});
/// let score = Brevity.verify(&Sample::new("hi", "short", row.as_object().unwrap())).unwrap();
/// assert_eq!(score.correct, Some(true));
/// ```
pub trait Verifier: Send + Sync {
    /// Scores one sample; `Err` means *unscorable*, which is not the same as a zero reward.
    fn verify(&self, sample: &Sample<'_>) -> Result<Score, VerifyError>;

    /// Whether every call returns in bounded time whatever the input. Batch scoring runs a
    /// verifier that does not promise this under a watchdog thread so that one stuck sample
    /// cannot stall training; the built-ins are bounded (the external plugin by its timeout).
    fn is_bounded(&self) -> bool {
        false
    }
}
