//! The `[task]` section: where the prompts come from. This enum is the one place that knows
//! the task kinds; `kind` picks the variant, and each variant takes only its own keys.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use grpo_data::tasks::{ArithmeticTask, CountdownTask, FunctionTask, Split, Task};
use grpo_data::{OnMalformed, Row};
use serde::Deserialize;

use crate::error::{RecipeError, Result};

/// A named evaluation split and its rows.
pub type EvalSet = (String, Vec<Row>);

/// Where the prompts come from: a procedural task with generalization splits, or files.
///
/// ```toml
/// [task]
/// kind = "arithmetic"        # arithmetic | countdown | functions | gsm8k | jsonl
/// train_rows = 10000
/// eval_rows = 200
/// splits = ["test", "ood_length"]
/// [task.settings]            # the task's own fields (ArithmeticTask, …)
/// max_digits = 2
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum TaskConfig {
    Arithmetic(Generated<ArithmeticTask>),
    Countdown(Generated<CountdownTask>),
    Functions(Generated<FunctionTask>),
    /// GSM8K's JSONL (`question`/`answer`, the final answer after `####`).
    Gsm8k(Files),
    /// Rows with a `prompt` and the fields the verifiers read.
    Jsonl(Files),
}

/// A procedural task: `T` holds its settings (`[task.settings]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generated<T> {
    #[serde(default)]
    pub settings: T,
    #[serde(default = "default_train_rows")]
    pub train_rows: usize,
    /// Only the first this many training rows have a label (`steps`, `answer`): the warm-up
    /// and the SFT control learn from those, while GRPO's prompts are all `train_rows` — it
    /// needs only the verifier (default: every row is labelled).
    #[serde(default)]
    pub labelled_rows: Option<NonZeroUsize>,
    /// Rows per evaluation split.
    #[serde(default = "default_eval_rows")]
    pub eval_rows: usize,
    /// The held-out splits evaluated (`test`, `ood_template`, `ood_length`, `ood_composition`).
    #[serde(default = "default_splits")]
    pub splits: Vec<Split>,
    /// Put around every prompt (an instruction, a chat template's turn markers).
    #[serde(default)]
    pub prompt_prefix: String,
    #[serde(default)]
    pub prompt_suffix: String,
}

/// Rows from files: `train_file`, and `test_file` for the one evaluation split, `test`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Files {
    pub train_file: PathBuf,
    pub test_file: Option<PathBuf>,
    /// At most this many training rows (the first ones).
    #[serde(default = "default_train_rows")]
    pub train_rows: usize,
    /// As for a procedural task: the warm-up and the SFT control learn from the first this
    /// many training rows, GRPO from all of them.
    #[serde(default)]
    pub labelled_rows: Option<NonZeroUsize>,
    #[serde(default = "default_eval_rows")]
    pub eval_rows: usize,
    #[serde(default)]
    pub prompt_prefix: String,
    #[serde(default)]
    pub prompt_suffix: String,
}

fn default_train_rows() -> usize {
    10_000
}
fn default_eval_rows() -> usize {
    200
}
fn default_splits() -> Vec<Split> {
    vec![Split::Test]
}

/// `rows` with `prefix` and `suffix` around each prompt. A conversation has no one text to wrap:
/// with a prefix or suffix set it is an error naming `origin` and the row.
fn wrap(rows: Vec<Row>, prefix: &str, suffix: &str, origin: &str) -> Result<Vec<Row>> {
    if prefix.is_empty() && suffix.is_empty() {
        return Ok(rows);
    }
    rows.into_iter()
        .enumerate()
        .map(|(index, r)| {
            if r.conversation().is_some() {
                return Err(RecipeError::config(
                    row_at(origin, index),
                    "the prompt is a conversation, which `prompt_prefix`/`prompt_suffix` cannot \
                     wrap: put the instruction in its messages",
                ));
            }
            let prompt = format!("{prefix}{}{suffix}", r.prompt());
            Ok(r.with("prompt", prompt))
        })
        .collect()
}

/// An error's location for the row at `index` (from 0) of `origin`: `FILE: row 3` (counted
/// from 1, blank lines not counted).
pub(crate) fn row_at(origin: &str, index: usize) -> String {
    format!("{origin}: row {}", index + 1)
}

/// Where a split's rows come from (`split` `None`: the training rows), as errors about a row
/// name them: the file, or the task's split.
fn row_origin(file: Option<&Path>, split: Option<&str>) -> String {
    match (file, split) {
        (Some(file), _) => file.display().to_string(),
        (None, None) => "[task] training rows".to_owned(),
        (None, Some(split)) => format!("[task] `{split}` rows"),
    }
}

impl TaskConfig {
    /// Where a split's rows come from (`None`: the training rows), for errors about a row.
    pub(crate) fn origin(&self, split: Option<&str>) -> String {
        let file = match self {
            TaskConfig::Gsm8k(files) | TaskConfig::Jsonl(files) => match split {
                None => Some(files.train_file.as_path()),
                Some(_) => files.test_file.as_deref(),
            },
            _ => None,
        };
        row_origin(file, split)
    }

    /// The training rows SFT learns from (`labelled_rows`; all of them by default).
    pub fn labelled<'a>(&self, train: &'a [Row]) -> &'a [Row] {
        let limit = match self {
            TaskConfig::Arithmetic(g) => g.labelled_rows,
            TaskConfig::Countdown(g) => g.labelled_rows,
            TaskConfig::Functions(g) => g.labelled_rows,
            TaskConfig::Gsm8k(f) | TaskConfig::Jsonl(f) => f.labelled_rows,
        };
        &train[..limit.map_or(train.len(), |n| n.get().min(train.len()))]
    }

    /// The procedural task, when this is one.
    pub fn generator(&self) -> Option<&dyn Task> {
        match self {
            TaskConfig::Arithmetic(g) => Some(&g.settings),
            TaskConfig::Countdown(g) => Some(&g.settings),
            TaskConfig::Functions(g) => Some(&g.settings),
            TaskConfig::Gsm8k(_) | TaskConfig::Jsonl(_) => None,
        }
    }

    /// The training rows and the evaluation sets, by split name; procedural rows from `seed`
    /// (the evaluation splits from `seed + 1`, so they are not the training draw).
    pub fn rows(&self, seed: u64) -> Result<(Vec<Row>, Vec<EvalSet>)> {
        match self {
            TaskConfig::Arithmetic(g) => generated(g, &g.settings, seed),
            TaskConfig::Countdown(g) => generated(g, &g.settings, seed),
            TaskConfig::Functions(g) => generated(g, &g.settings, seed),
            TaskConfig::Gsm8k(files) => {
                from_files(files, |p| grpo_data::read_gsm8k(p, OnMalformed::Fail))
            }
            TaskConfig::Jsonl(files) => {
                from_files(files, |p| grpo_data::read_jsonl(p, OnMalformed::Fail))
            }
        }
    }
}

fn generated<T>(
    section: &Generated<T>,
    task: &dyn Task,
    seed: u64,
) -> Result<(Vec<Row>, Vec<EvalSet>)> {
    let train = task.generate(Split::Train, section.train_rows, seed)?;
    let mut sets = Vec::new();
    for &split in &section.splits {
        if split == Split::Train {
            return Err(RecipeError::config(
                "[task] splits",
                "`train` is what is trained on; evaluate held-out splits",
            ));
        }
        let rows = task.generate(split, section.eval_rows, seed.wrapping_add(1))?;
        let origin = row_origin(None, Some(split.name()));
        sets.push((
            split.name().to_owned(),
            wrap(
                rows,
                &section.prompt_prefix,
                &section.prompt_suffix,
                &origin,
            )?,
        ));
    }
    let train = wrap(
        train,
        &section.prompt_prefix,
        &section.prompt_suffix,
        &row_origin(None, None),
    )?;
    Ok((train, sets))
}

fn from_files(
    files: &Files,
    read: impl Fn(&Path) -> grpo_data::Result<Vec<Row>>,
) -> Result<(Vec<Row>, Vec<EvalSet>)> {
    let mut train = read(&files.train_file)?;
    train.truncate(files.train_rows);
    let mut sets = Vec::new();
    if let Some(test_file) = &files.test_file {
        let mut test = read(test_file)?;
        test.truncate(files.eval_rows);
        let origin = row_origin(Some(test_file), Some("test"));
        sets.push((
            "test".to_owned(),
            wrap(test, &files.prompt_prefix, &files.prompt_suffix, &origin)?,
        ));
    }
    let origin = row_origin(Some(&files.train_file), None);
    let train = wrap(train, &files.prompt_prefix, &files.prompt_suffix, &origin)?;
    Ok((train, sets))
}
