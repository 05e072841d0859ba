//! Procedural tasks: rows generated from a seed, with splits that measure generalization.
//!
//! Every task has the same five splits. `train` and `test` are in-distribution and split by
//! a stable hash of the *problem* (not of the seed), so a problem is on one side for every
//! seed. The three held-out splits each change one thing the training data never shows:
//!
//! | split             | what is new                                        |
//! |-------------------|----------------------------------------------------|
//! | `ood_template`    | instruction templates never used in training (problems from the test side) |
//! | `ood_length`      | longer problems: more digits, or more numbers      |
//! | `ood_composition` | operators that never appear together in training  |
//!
//! The splits are pairwise disjoint by construction, and tested to be: as rows, and — for
//! everything but `ood_template`, which reuses test problems under new wording — as problems.

mod arithmetic;
mod countdown;
mod functions;

pub use arithmetic::ArithmeticTask;
pub use countdown::CountdownTask;
pub use functions::FunctionTask;

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::row::Row;
use grpo_base::{SplitMix64, stable_hash};

/// A task that generates rows deterministically from a seed.
pub trait Task {
    /// The name a config knows it by (`kind = "arithmetic"`).
    fn name(&self) -> &'static str;

    /// `n` distinct rows of `split`; the same (`split`, `n`, `seed`) gives the same rows.
    fn generate(&self, split: Split, n: usize, seed: u64) -> Result<Vec<Row>>;
}

/// One of the five splits every task has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    Train,
    Test,
    OodTemplate,
    OodLength,
    OodComposition,
}

impl Split {
    pub const ALL: [Split; 5] = [
        Split::Train,
        Split::Test,
        Split::OodTemplate,
        Split::OodLength,
        Split::OodComposition,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
            Split::OodTemplate => "ood_template",
            Split::OodLength => "ood_length",
            Split::OodComposition => "ood_composition",
        }
    }

    /// Which side of the train/test hash partition the split's problems come from (`None`:
    /// either, because something else already keeps them out of training).
    fn partition(self) -> Option<Side> {
        match self {
            Split::Train => Some(Side::Train),
            Split::Test | Split::OodTemplate => Some(Side::Test),
            Split::OodLength | Split::OodComposition => None,
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Split {
    type Err = DataError;
    fn from_str(name: &str) -> Result<Split> {
        Split::ALL
            .into_iter()
            .find(|split| split.name() == name)
            .ok_or_else(|| {
                DataError::config(
                    "split",
                    format!(
                        "unknown split `{name}` (known: train, test, ood_template, ood_length, ood_composition)"
                    ),
                )
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Train,
    Test,
}

/// The side of the train/test partition a problem falls on, from a hash of its canonical key.
fn side_of(problem_key: &str, test_fraction: f64) -> Side {
    let unit = (stable_hash(problem_key.as_bytes(), 0x7e57) >> 11) as f64 / (1u64 << 53) as f64;
    if unit < test_fraction {
        Side::Test
    } else {
        Side::Train
    }
}

/// Whether a problem may go into `split` as far as the partition is concerned.
fn on_side(split: Split, problem_key: &str, test_fraction: f64) -> bool {
    split
        .partition()
        .is_none_or(|side| side_of(problem_key, test_fraction) == side)
}

/// Draws until `n` rows with distinct prompts are found; `draw` returns `None` to reject.
fn draw_distinct(
    task: &str,
    split: Split,
    n: usize,
    seed: u64,
    mut draw: impl FnMut(&mut SplitMix64) -> Option<Row>,
) -> Result<Vec<Row>> {
    let mut rng = SplitMix64::keyed(seed, &[split as u64 + 1]);
    let mut seen = HashSet::new();
    let mut rows = Vec::with_capacity(n);
    // Draws in a row that found nothing new: past this, the split has run out of rows.
    const STALL: u64 = 200_000;
    let mut fruitless = 0u64;
    while rows.len() < n {
        if fruitless == STALL {
            return Err(DataError::config(
                "n",
                format!(
                    "only {} distinct {task} rows of split {split} found ({STALL} draws in a row found no new one): the split is too small for n = {n}",
                    rows.len()
                ),
            ));
        }
        match draw(&mut rng) {
            Some(row) if seen.insert(row.prompt().to_owned()) => {
                rows.push(row.with("split", split.name()));
                fruitless = 0;
            }
            _ => fruitless += 1,
        }
    }
    Ok(rows)
}

/// Checks a pair of template lists: non-empty, each template uses one of `placeholders`, and
/// no held-out template is also a training one.
fn check_templates(templates: &[String], held_out: &[String], placeholders: &[&str]) -> Result<()> {
    for (field, list) in [("templates", templates), ("held_out_templates", held_out)] {
        if list.is_empty() {
            return Err(DataError::config(field, "must not be empty"));
        }
        if let Some(bad) = list
            .iter()
            .find(|t| !placeholders.iter().any(|p| t.contains(p)))
        {
            return Err(DataError::config(
                field,
                format!("`{bad}` uses none of {}", placeholders.join(", ")),
            ));
        }
    }
    if let Some(both) = held_out.iter().find(|t| templates.contains(t)) {
        return Err(DataError::config(
            "held_out_templates",
            format!("`{both}` is also a training template"),
        ));
    }
    Ok(())
}

fn check_fraction(test_fraction: f64) -> Result<()> {
    if test_fraction > 0.0 && test_fraction < 1.0 {
        Ok(())
    } else {
        Err(DataError::config(
            "test_fraction",
            format!("must be in (0, 1), got {test_fraction}"),
        ))
    }
}

/// An arithmetic operator, written `+ - * /` in configs and expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Operator {
    #[serde(rename = "+")]
    Add,
    #[serde(rename = "-")]
    Sub,
    #[serde(rename = "*")]
    Mul,
    #[serde(rename = "/")]
    Div,
}

impl Operator {
    pub fn symbol(self) -> char {
        match self {
            Operator::Add => '+',
            Operator::Sub => '-',
            Operator::Mul => '*',
            Operator::Div => '/',
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Operator::Add => "plus",
            Operator::Sub => "minus",
            Operator::Mul => "times",
            Operator::Div => "divided by",
        }
    }
}

/// Whether `used` holds both operators of some held-out pair: the composition test.
fn holds_pair(used: &[Operator], pairs: &[[Operator; 2]]) -> bool {
    pairs
        .iter()
        .any(|[a, b]| used.contains(a) && used.contains(b))
}

fn check_pairs(pairs: &[[Operator; 2]], allowed: &[Operator]) -> Result<()> {
    if pairs.is_empty() {
        return Err(DataError::config(
            "held_out_pairs",
            "must name at least one pair (the ood_composition split needs one)",
        ));
    }
    for [a, b] in pairs {
        if a == b || !allowed.contains(a) || !allowed.contains(b) {
            return Err(DataError::config(
                "held_out_pairs",
                format!(
                    "[{}, {}] must be two different operators the task uses",
                    a.symbol(),
                    b.symbol()
                ),
            ));
        }
    }
    Ok(())
}

/// The operators of `used`, each once, in first-use order, as a string (`"+*"`).
fn operator_string(used: &[Operator]) -> String {
    let mut out = String::new();
    for op in used {
        if !out.contains(op.symbol()) {
            out.push(op.symbol());
        }
    }
    out
}
