//! The `[task]` section: where the prompts come from. This enum is the one place that knows
//! the task kinds; `kind` picks the variant, and each variant takes only its own keys.

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

/// `rows` with `prefix` and `suffix` around each prompt.
fn wrap(rows: Vec<Row>, prefix: &str, suffix: &str) -> Vec<Row> {
    rows.into_iter()
        .map(|r| {
            let prompt = format!("{prefix}{}{suffix}", r.prompt());
            r.with("prompt", prompt)
        })
        .collect()
}

impl TaskConfig {
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
        sets.push((
            split.name().to_owned(),
            wrap(rows, &section.prompt_prefix, &section.prompt_suffix),
        ));
    }
    Ok((
        wrap(train, &section.prompt_prefix, &section.prompt_suffix),
        sets,
    ))
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
        sets.push((
            "test".to_owned(),
            wrap(test, &files.prompt_prefix, &files.prompt_suffix),
        ));
    }
    Ok((
        wrap(train, &files.prompt_prefix, &files.prompt_suffix),
        sets,
    ))
}
