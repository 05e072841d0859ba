//! The contract between the sampler and an environment: an episode starts from a dataset row,
//! answers each of the model's turns, and says at the end how it went.

use grpo_data::Row;

/// A kind of episode: what a multi-turn rollout talks to.
///
/// One episode per sampled completion ([`start`](Environment::start) is called K times per
/// prompt), so an episode may keep whatever state it needs. The model's first turn continues
/// the row's prompt; the trainer never changes for a new environment.
///
/// ```
/// use grpo_data::Row;
/// use grpo_environments::{Ending, Environment, EnvironmentError, Episode, Outcome, Response};
///
/// /// Tells the model whether its guess is too low or too high; rewards a hit.
/// struct Guess;
/// struct GuessEpisode { secret: i64, hit: bool }
///
/// impl Environment for Guess {
///     fn start(&self, row: &Row) -> Result<Box<dyn Episode>, EnvironmentError> {
///         let secret = row.get("secret").and_then(|v| v.as_i64())
///             .ok_or_else(|| EnvironmentError::field("secret", "must be an integer"))?;
///         Ok(Box::new(GuessEpisode { secret, hit: false }))
///     }
/// }
///
/// impl Episode for GuessEpisode {
///     fn respond(&mut self, turn: &str) -> Response {
///         match turn.trim().parse::<i64>() {
///             Ok(g) if g == self.secret => { self.hit = true; Response::End }
///             Ok(g) if g < self.secret => Response::Observe(" higher\n".into()),
///             Ok(_) => Response::Observe(" lower\n".into()),
///             Err(_) => Response::Observe(" a number, please\n".into()),
///         }
///     }
///     fn finish(&mut self, _ending: Ending) -> Outcome {
///         Outcome { reward: Some(if self.hit { 1.0 } else { 0.0 }), ..Outcome::default() }
///     }
/// }
///
/// let mut episode = Guess.start(&Row::from_prompt("Guess: ").with("secret", 7)).unwrap();
/// assert_eq!(episode.respond("3"), Response::Observe(" higher\n".into()));
/// assert_eq!(episode.respond("7"), Response::End);
/// assert_eq!(episode.finish(Ending::Done).reward, Some(1.0));
/// ```
pub trait Environment: Send + Sync {
    /// Strings that end a model turn besides the tokenizer's EOS, so that the environment can
    /// answer (a tool call's closing tag). The sampler adds them to its stop strings.
    fn turn_stops(&self) -> Vec<String> {
        Vec::new()
    }

    /// The tools the model may call, as a chat template's `tools` lists them: OpenAI-style
    /// function specs, `{"type": "function", "function": {"name", "description",
    /// "parameters"}}` (what transformers' `apply_chat_template(tools=...)` takes). None by
    /// default.
    fn tools(&self) -> Vec<serde_json::Value> {
        Vec::new()
    }

    /// A new episode for `row`, whose prompt the model's first turn continues. An error names
    /// the row field that is wrong; the trainer stops with it.
    fn start(&self, row: &Row) -> Result<Box<dyn Episode>, EnvironmentError>;
}

/// One running episode.
pub trait Episode: Send {
    /// The model ended a turn with `turn` (its text since the last observation, the stop string
    /// that ended it included). What the model sees next, or the end of the episode.
    fn respond(&mut self, turn: &str) -> Response;

    /// The episode is over, for the reason `ending` gives. Called exactly once, last.
    fn finish(&mut self, ending: Ending) -> Outcome;
}

/// An episode's answer to a model turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Text appended to the transcript (chat scaffolding included, if the model uses any); the
    /// model's next turn continues after it. Its tokens are the environment's, never trained.
    Observe(String),
    /// The episode is over: the model's last turn was its answer.
    End,
}

/// Why an episode ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// [`Episode::respond`] ended it.
    Done,
    /// The episode wanted another turn, but the model had used `max_turns`.
    MaxTurns,
    /// The transcript reached the token budget (`max_completion_length`) mid-turn.
    Length,
}

/// What an episode reports when it ends.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Outcome {
    /// The environment's reward; `None` leaves the reward to the verifiers alone.
    pub reward: Option<f32>,
    /// Why, for the completions log.
    pub details: String,
    /// Tool calls the model made (the `tools/call_frequency` metric).
    pub tool_calls: usize,
    /// Of those, how many failed: malformed, unknown tool, the tool's error or timeout
    /// (`tools/failure_frequency`).
    pub tool_failures: usize,
}

/// Why an environment could not start an episode or be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvironmentError {
    #[error("row field `{field}` {reason}")]
    Field { field: String, reason: String },
    #[error("environment config: `{field}` {reason}")]
    Config { field: String, reason: String },
}

impl EnvironmentError {
    /// A row field that is missing or wrong.
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        EnvironmentError::Field {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A setting that is wrong.
    pub fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        EnvironmentError::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
