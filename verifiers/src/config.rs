//! `V.toml`: building verifiers from configuration, with errors that say where. The leaf kinds
//! come from a [`Registry`]: the built-ins are registered like a user's own kind would be.
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

use std::collections::BTreeMap;
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

/// The kinds that combine other entries (`of`, `if`/`then`): structure, not registrable.
pub const COMBINATORS: [&str; 3] = ["sum", "max", "gate"];

/// Builds one kind's verifier from its entry's settings (the TOML keys besides `kind`, `name`
/// and `weight`); `Err` is the message, which the caller prefixes with the file, line and entry.
type Constructor = dyn Fn(Table) -> Result<Arc<dyn Verifier>, String> + Send + Sync;

/// The verifier kinds a config may name: `kind = "…"` → a constructor from that entry's
/// settings. [`Registry::default`] holds the built-ins (`arithmetic`, `regex`, `external`,
/// `unit_test`); a user's kind is one [`Registry::register`] call, and then works in a `V.toml`,
/// a run file and inside `sum`/`max`/`gate` like a built-in.
///
/// ```
/// use grpo_verifiers::{ConfigError, Registry, Sample, Score, Verifier, VerifyError};
///
/// /// Rewards completions no longer than `max_chars`.
/// struct Short { max_chars: usize }
///
/// impl Verifier for Short {
///     fn verify(&self, sample: &Sample<'_>) -> Result<Score, VerifyError> {
///         Ok(Score::binary(sample.completion.len() <= self.max_chars, "short enough"))
///     }
/// }
///
/// #[derive(serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct ShortSettings { max_chars: usize }
///
/// let mut registry = Registry::default();
/// registry.register("short", |s: ShortSettings| Ok::<_, ConfigError>(Short { max_chars: s.max_chars }))?;
/// let set = registry.verifiers_from_str("[[verifiers]]\nkind = \"short\"\nmax_chars = 3\n", "V.toml")?;
/// let row = serde_json::Map::new();
/// assert_eq!(set.evaluate(&Sample::new("", "abc", &row)).reward?, 1.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Registry {
    kinds: BTreeMap<String, Arc<Constructor>>,
}

impl Default for Registry {
    /// The built-in kinds.
    fn default() -> Self {
        let mut registry = Registry {
            kinds: BTreeMap::new(),
        };
        registry
            .register("arithmetic", ArithmeticChecker::new)
            .and_then(|r| r.register("regex", RegexMatcher::new))
            .and_then(|r| r.register("external", ExternalVerifier::new))
            .and_then(|r| r.register("unit_test", UnitTestRunner::new))
            .expect("the built-in kinds have distinct names");
        registry
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.kinds.keys()).finish()
    }
}

impl Registry {
    /// Registers `kind`: an entry `kind = "<kind>"` deserializes its other keys into `C`
    /// (serde names an unknown or mistyped key; use `#[serde(deny_unknown_fields)]`) and builds
    /// the verifier with `new`. A kind already registered, or a combinator's name, is refused.
    pub fn register<C, V, E>(
        &mut self,
        kind: &str,
        new: impl Fn(C) -> Result<V, E> + Send + Sync + 'static,
    ) -> Result<&mut Registry, ConfigError>
    where
        C: DeserializeOwned,
        V: Verifier + 'static,
        E: std::fmt::Display,
    {
        if COMBINATORS.contains(&kind) || self.kinds.contains_key(kind) {
            return Err(ConfigError::invalid(
                "kind",
                format!("`{kind}` is already a kind ({})", self.describe()),
            ));
        }
        if kind.is_empty() {
            return Err(ConfigError::invalid("kind", "must not be empty"));
        }
        let build = move |table: Table| -> Result<Arc<dyn Verifier>, String> {
            let settings = C::deserialize(table).map_err(|e| e.message().to_owned())?;
            Ok(Arc::new(new(settings).map_err(|e| e.to_string())?))
        };
        self.kinds.insert(kind.to_owned(), Arc::new(build));
        Ok(self)
    }

    /// Every kind an entry may name: the registered ones, then the combinators.
    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.kinds.keys().map(String::as_str).chain(COMBINATORS)
    }

    fn describe(&self) -> String {
        self.kinds().collect::<Vec<_>>().join(", ")
    }

    /// Builds the verifiers a `V.toml` file describes.
    pub fn verifiers_from_file(&self, path: impl AsRef<Path>) -> Result<VerifierSet, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        self.verifiers_from_str(&text, &path.display().to_string())
    }

    /// Builds the verifiers a `V.toml` text describes; `origin` names it in errors.
    pub fn verifiers_from_str(&self, text: &str, origin: &str) -> Result<VerifierSet, ConfigError> {
        let document: Document = toml::from_str(text).map_err(|e| ConfigError::At {
            location: grpo_base::toml_location(origin, text, &e),
            message: e.message().to_owned(),
        })?;
        self.verifiers_from_entries(document.verifiers, document.time_budget_s, text, origin)
    }

    /// Builds verifiers from `[[verifiers]]` entries already parsed out of a larger document
    /// `text` (a run config, so that it is parsed once), with its `time_budget_s`; errors name
    /// `origin:line` as for a `V.toml`.
    pub fn verifiers_from_entries(
        &self,
        entries: Vec<Spanned<Table>>,
        time_budget_s: Option<f64>,
        text: &str,
        origin: &str,
    ) -> Result<VerifierSet, ConfigError> {
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
            let line = grpo_base::line_at(text, entry.span().start);
            let at = format!("verifiers[{index}]");
            let built = self.build_weighted(entry.into_inner(), &at);
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    verifiers: Vec<Spanned<Table>>,
    time_budget_s: Option<f64>,
}

impl VerifierSet {
    /// Builds the verifiers a `V.toml` file describes, from the built-in kinds (see
    /// [`Registry`] for more).
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        Registry::default().verifiers_from_file(path)
    }

    /// Builds the verifiers a `V.toml` text describes, from the built-in kinds; `origin` names
    /// it in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, ConfigError> {
        Registry::default().verifiers_from_str(text, origin)
    }
}

impl Registry {
    /// An entry that may carry a `weight` (top level and inside `sum`).
    fn build_weighted(&self, mut table: Table, at: &str) -> Result<(Member, f32), String> {
        let weight = match table.remove("weight") {
            None => 1.0,
            Some(Value::Float(w)) => w as f32,
            Some(Value::Integer(w)) => w as f32,
            Some(other) => return Err(format!("{at}: `weight` must be a number, got {other}")),
        };
        if !weight.is_finite() {
            return Err(format!("{at}: `weight` must be finite, got {weight}"));
        }
        Ok((self.build(table, at)?, weight))
    }

    /// An entry without a weight (inside `max` and `gate`).
    fn build_member(&self, table: Table, at: &str) -> Result<Member, String> {
        if table.contains_key("weight") {
            return Err(format!(
                "{at}: `weight` only applies at the top level and inside `sum`"
            ));
        }
        self.build(table, at)
    }

    fn build(&self, mut table: Table, at: &str) -> Result<Member, String> {
        let kind = match table.remove("kind") {
            Some(Value::String(kind)) => kind,
            Some(other) => return Err(format!("{at}: `kind` must be a string, got {other}")),
            None => {
                return Err(format!("{at}: missing `kind` (one of {})", self.describe()));
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
            "sum" => {
                let members = list_of(&mut table, "of", at)?
                    .into_iter()
                    .enumerate()
                    .map(|(i, t)| self.build_weighted(t, &format!("{at}.of[{i}]")))
                    .collect::<Result<_, _>>()?;
                no_other_keys(&table).map_err(context)?;
                Arc::new(VerifierSet::new(members).map_err(|e| context(e.to_string()))?)
            }
            "max" => {
                let members = list_of(&mut table, "of", at)?
                    .into_iter()
                    .enumerate()
                    .map(|(i, t)| self.build_member(t, &format!("{at}.of[{i}]")))
                    .collect::<Result<_, _>>()?;
                no_other_keys(&table).map_err(context)?;
                Arc::new(Max::new(members).map_err(|e| context(e.to_string()))?)
            }
            "gate" => {
                let condition = table_of(&mut table, "if", at)?;
                let then = table_of(&mut table, "then", at)?;
                no_other_keys(&table).map_err(context)?;
                let condition = self.build_member(condition, &format!("{at}.if"))?;
                let then = self.build_member(then, &format!("{at}.then"))?;
                Arc::new(Gate::new(condition, then).map_err(|e| context(e.to_string()))?)
            }
            other => match self.kinds.get(other) {
                Some(new) => new(table).map_err(context)?,
                None => {
                    return Err(format!(
                        "{at}: unknown kind `{other}` (expected one of {})",
                        self.describe()
                    ));
                }
            },
        };
        Ok(Member { name, verifier })
    }
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
