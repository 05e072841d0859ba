//! `V.toml`: building verifiers from configuration, with errors that say where.
//!
//! ```toml
//! time_budget_s = 10          # optional: per-sample budget for verifiers not bounded by design
//!
//! [[verifiers]]
//! kind = "arithmetic"         # arithmetic | regex | external | sum | max | gate
//! name = "accuracy"           # optional; defaults to the kind
//! weight = 1.0                # optional; default 1 (top level and inside `sum` only)
//! answer_field = "answer"
//!
//! [[verifiers]]
//! kind = "gate"               # `then` counts only when `if` passes
//! name = "answer_if_formatted"
//! if = { kind = "regex", preset = "r1_format" }
//! then = { kind = "arithmetic" }
//!
//! [[verifiers]]
//! kind = "max"                # or "sum"; members under `of`
//! of = [{ kind = "arithmetic", name = "strict" }, { kind = "arithmetic", name = "lenient", extract = "last_number" }]
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::{Spanned, Table, Value};

use crate::Verifier;
use crate::arithmetic::ArithmeticChecker;
use crate::combinators::{Gate, Max, Member, VerifierSet};
use crate::external::ExternalVerifier;
use crate::regex_matcher::RegexMatcher;
use crate::unit_test::UnitTestRunner;

/// A configuration that cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Where in a file (`V.toml:12`) and what is wrong there (`verifiers[1].of[0] …: …`).
    #[error("{location}: {message}")]
    At { location: String, message: String },
    /// A bad value given in code, naming the field.
    #[error("`{field}`: {message}")]
    Invalid { field: String, message: String },
}

impl ConfigError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The kinds a `[[verifiers]]` entry may have.
pub const KINDS: [&str; 7] = [
    "arithmetic",
    "regex",
    "external",
    "unit_test",
    "sum",
    "max",
    "gate",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    verifiers: Vec<Spanned<Table>>,
    time_budget_s: Option<f64>,
}

/// The same two keys inside a larger document (a run config), whose other keys are not ours.
#[derive(Deserialize)]
struct Section {
    verifiers: Vec<Spanned<Table>>,
    time_budget_s: Option<f64>,
}

impl VerifierSet {
    /// Builds the verifiers a `V.toml` file describes.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Builds the verifiers a `V.toml` text describes; `origin` names it in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let document: Document = toml::from_str(text).map_err(|e| ConfigError::At {
            location: origin.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        Self::from_entries(text, origin, document.verifiers, document.time_budget_s)
    }

    /// Builds the `[[verifiers]]` (and `time_budget_s`) of a larger TOML document — a run
    /// config — ignoring its other keys; errors name `origin:line` as for a `V.toml`.
    pub fn from_toml_section(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let section: Section = toml::from_str(text).map_err(|e| ConfigError::At {
            location: origin.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        Self::from_entries(text, origin, section.verifiers, section.time_budget_s)
    }

    fn from_entries(
        text: &str,
        origin: &str,
        entries: Vec<Spanned<Table>>,
        time_budget_s: Option<f64>,
    ) -> Result<Self, ConfigError> {
        let budget = match time_budget_s {
            None => None,
            Some(s) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s)),
            Some(s) => {
                return Err(ConfigError::At {
                    location: origin.to_owned(),
                    message: format!(
                        "`time_budget_s` must be a positive number of seconds, got {s}"
                    ),
                });
            }
        };
        let mut members = Vec::with_capacity(entries.len());
        for (index, entry) in entries.into_iter().enumerate() {
            let line = text[..entry.span().start].matches('\n').count() + 1;
            let at = format!("verifiers[{index}]");
            let built = build_weighted(entry.into_inner(), &at);
            members.push(built.map_err(|message| ConfigError::At {
                location: format!("{origin}:{line}"),
                message,
            })?);
        }
        if members.is_empty() {
            return Err(ConfigError::At {
                location: origin.to_owned(),
                message: "no [[verifiers]] given".into(),
            });
        }
        let set = VerifierSet::new(members).map_err(|e| ConfigError::At {
            location: origin.to_owned(),
            message: e.to_string(),
        })?;
        Ok(set.with_time_budget(budget))
    }
}

/// An entry that may carry a `weight` (top level and inside `sum`).
fn build_weighted(mut table: Table, at: &str) -> Result<(Member, f32), String> {
    let weight = match table.remove("weight") {
        None => 1.0,
        Some(Value::Float(w)) => w as f32,
        Some(Value::Integer(w)) => w as f32,
        Some(other) => return Err(format!("{at}: `weight` must be a number, got {other}")),
    };
    if !weight.is_finite() {
        return Err(format!("{at}: `weight` must be finite, got {weight}"));
    }
    Ok((build(table, at)?, weight))
}

/// An entry without a weight (inside `max` and `gate`).
fn build_member(table: Table, at: &str) -> Result<Member, String> {
    if table.contains_key("weight") {
        return Err(format!(
            "{at}: `weight` only applies at the top level and inside `sum`"
        ));
    }
    build(table, at)
}

fn build(mut table: Table, at: &str) -> Result<Member, String> {
    let kind = match table.remove("kind") {
        Some(Value::String(kind)) => kind,
        Some(other) => return Err(format!("{at}: `kind` must be a string, got {other}")),
        None => {
            return Err(format!(
                "{at}: missing `kind` (one of {})",
                KINDS.join(", ")
            ));
        }
    };
    let name = match table.remove("name") {
        None => kind.clone(),
        Some(Value::String(name)) if !name.is_empty() => name,
        Some(other) => {
            return Err(format!(
                "{at}: `name` must be a non-empty string, got {other}"
            ));
        }
    };
    let context = |e: String| format!("{at} (kind = \"{kind}\", name = \"{name}\"): {e}");
    let verifier: Arc<dyn Verifier> = match kind.as_str() {
        "arithmetic" => leaf(table, ArithmeticChecker::new).map_err(context)?,
        "regex" => leaf(table, RegexMatcher::new).map_err(context)?,
        "external" => leaf(table, ExternalVerifier::new).map_err(context)?,
        "unit_test" => leaf(table, UnitTestRunner::new).map_err(context)?,
        "sum" => {
            let members = list_of(&mut table, "of", at)?
                .into_iter()
                .enumerate()
                .map(|(i, t)| build_weighted(t, &format!("{at}.of[{i}]")))
                .collect::<Result<_, _>>()?;
            no_other_keys(&table).map_err(context)?;
            Arc::new(VerifierSet::new(members).map_err(|e| context(e.to_string()))?)
        }
        "max" => {
            let members = list_of(&mut table, "of", at)?
                .into_iter()
                .enumerate()
                .map(|(i, t)| build_member(t, &format!("{at}.of[{i}]")))
                .collect::<Result<_, _>>()?;
            no_other_keys(&table).map_err(context)?;
            Arc::new(Max::new(members).map_err(|e| context(e.to_string()))?)
        }
        "gate" => {
            let condition = table_of(&mut table, "if", at)?;
            let then = table_of(&mut table, "then", at)?;
            no_other_keys(&table).map_err(context)?;
            let condition = build_member(condition, &format!("{at}.if"))?;
            let then = build_member(then, &format!("{at}.then"))?;
            Arc::new(Gate::new(condition, then).map_err(|e| context(e.to_string()))?)
        }
        other => {
            return Err(format!(
                "{at}: unknown kind `{other}` (expected one of {})",
                KINDS.join(", ")
            ));
        }
    };
    Ok(Member { name, verifier })
}

/// A built-in verifier from its own settings (serde gives "unknown field `x`, expected one of
/// …" for typos) and its constructor's validation.
fn leaf<C: DeserializeOwned, V: Verifier + 'static>(
    table: Table,
    new: impl FnOnce(C) -> Result<V, ConfigError>,
) -> Result<Arc<dyn Verifier>, String> {
    let settings = C::deserialize(table).map_err(|e| e.message().to_owned())?;
    Ok(Arc::new(new(settings).map_err(|e| e.to_string())?))
}

fn list_of(table: &mut Table, key: &str, at: &str) -> Result<Vec<Table>, String> {
    let Some(value) = table.remove(key) else {
        return Err(format!("{at}: missing `{key}` (a list of verifier tables)"));
    };
    let Value::Array(items) = value else {
        return Err(format!("{at}: `{key}` must be a list of verifier tables"));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Table(t) => Ok(t),
            other => Err(format!(
                "{at}.{key}[{i}]: expected a verifier table, got {other}"
            )),
        })
        .collect()
}

fn table_of(table: &mut Table, key: &str, at: &str) -> Result<Table, String> {
    match table.remove(key) {
        Some(Value::Table(t)) => Ok(t),
        Some(other) => Err(format!(
            "{at}: `{key}` must be a verifier table, got {other}"
        )),
        None => Err(format!("{at}: missing `{key}` (a verifier table)")),
    }
}

fn no_other_keys(table: &Table) -> Result<(), String> {
    match table.keys().next() {
        Some(key) => Err(format!("unknown field `{key}`")),
        None => Ok(()),
    }
}
