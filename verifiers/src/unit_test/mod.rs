//! The unit-test runner: rewards code by running it against tests, in a sandbox.
//!
//! Code RL executes thousands of untrusted programs an hour, written by a model optimised to get
//! reward. Each run gets a fresh directory (deleted afterwards), a cleared environment, and
//! every isolation layer this machine offers ([`sandbox`]): new network, PID and mount
//! namespaces, Landlock, a seccomp filter, rlimits and — started as root — a fresh unprivileged
//! uid. Layers listed in `require` that are missing make every sample unscorable: the runner
//! fails closed, it never runs code less protected than configured.
//!
//! **The verdict belongs to the harness.** The harness reads a per-run random nonce from a
//! pipe (fd 3) before any candidate code runs, closes it, and prints `NONCE result PASSED TOTAL`
//! only after every test ran; only that line counts. `exit(0)`, `os._exit(0)`,
//! `std::process::exit(0)`, `SystemExit` or a printed fake "passed" therefore score nothing.
//! (Code that searches the harness's own memory could find the nonce; the sandbox still
//! contains it.)
//!
//! Rows: HumanEval style (`prompt`, `test` defining `check(candidate)`, `entry_point`;
//! Python) or simple style (`tests`: assertion strings, `language` optionally overriding the
//! configured one; Python or Rust). The code is the completion's last fenced code block of the
//! language (or the whole completion, per `code`).

//!
//! The sandbox is Linux's (namespaces, Landlock, seccomp): built for another system, or with
//! `--cfg grpo_no_sandbox`, the runner still builds and reads its configuration, and reports
//! every sample unscorable, saying why — it never runs code unconfined.

#[cfg(all(target_os = "linux", not(grpo_no_sandbox)))]
mod execute;
#[cfg(all(target_os = "linux", not(grpo_no_sandbox)))]
mod landlock;
mod layers;
#[cfg(all(target_os = "linux", not(grpo_no_sandbox)))]
pub mod sandbox;
#[cfg(all(target_os = "linux", not(grpo_no_sandbox)))]
mod seccomp;

pub use layers::{Available, Layer};

use std::fmt;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};

use serde::Deserialize;
use serde_json::Value;

use crate::{ConfigError, Sample, Score, Verifier, VerifyError};

/// Why a build without the sandbox scores nothing.
#[cfg(not(all(target_os = "linux", not(grpo_no_sandbox))))]
const NO_SANDBOX: &str = "the unit-test runner needs Linux's sandbox (namespaces, Landlock, seccomp), which this build does not have: every sample is unscorable";

/// A programming language the runner knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Python,
    Rust,
}

/// Where the code is in a completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeSource {
    /// The last fenced code block of the language (or an unlabelled one); the whole completion
    /// when there is none.
    #[default]
    LastBlock,
    /// The whole completion.
    Whole,
}

/// Settings; the TOML keys of `kind = "unit_test"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UnitTestConfig {
    /// The language of rows without a `language` field.
    pub language: Language,
    /// Wall-clock seconds for running the tests.
    pub timeout_s: f64,
    /// Wall-clock seconds for compiling (Rust).
    pub compile_timeout_s: f64,
    /// Address-space limit of the program, in MiB.
    pub memory_mb: u64,
    /// Reward = share of tests passed (otherwise 1 only when all pass).
    pub partial_credit: bool,
    /// Runs at the same time.
    pub workers: usize,
    /// Layers that must be active, or every sample is unscorable.
    pub require: Vec<String>,
    pub code: CodeSource,
    /// The Python interpreter (default: `/usr/bin/python3`, else `python3` on the PATH).
    pub python: Option<PathBuf>,
    /// The Rust compiler (default: `rustc` on the PATH).
    pub rustc: Option<PathBuf>,
    /// Largest accepted source, in KiB.
    pub max_source_kb: usize,
    /// stdout/stderr read per stream, in KiB; more is an output-limit outcome.
    pub max_output_kb: usize,
    /// Where run directories are made (default: the system's temporary directory).
    pub work_dir: Option<PathBuf>,
}

impl Default for UnitTestConfig {
    fn default() -> Self {
        UnitTestConfig {
            language: Language::Python,
            timeout_s: 5.0,
            compile_timeout_s: 30.0,
            memory_mb: 512,
            partial_credit: true,
            workers: 2,
            require: ["netns", "landlock", "seccomp", "rlimits"]
                .map(String::from)
                .to_vec(),
            code: CodeSource::LastBlock,
            python: None,
            rustc: None,
            max_source_kb: 64,
            max_output_kb: 1024,
            work_dir: None,
        }
    }
}

/// The phase a timeout happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Compile,
    Run,
}

/// What running the tests found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed { total: usize },
    Failed { passed: usize, total: usize },
    CompileError(String),
    RuntimeError(String),
    Timeout(Phase),
    MemoryLimit,
    OutputLimit,
}

impl Outcome {
    /// Tests passed and total (errors pass none of an unknown total: 0 of 1).
    pub fn counts(&self) -> (usize, usize) {
        match self {
            Outcome::Passed { total } => (*total, *total),
            Outcome::Failed { passed, total } => (*passed, *total),
            _ => (0, 1),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Passed { total } => write!(f, "passed all {total} tests"),
            Outcome::Failed { passed, total } => {
                write!(f, "failed: {passed} of {total} tests passed")
            }
            Outcome::CompileError(e) => write!(f, "compile error: {e}"),
            Outcome::RuntimeError(e) => write!(f, "runtime error: {e}"),
            Outcome::Timeout(Phase::Compile) => write!(f, "timeout while compiling"),
            Outcome::Timeout(Phase::Run) => write!(f, "timeout while running the tests"),
            Outcome::MemoryLimit => write!(f, "memory limit exceeded"),
            Outcome::OutputLimit => write!(f, "output limit exceeded"),
        }
    }
}

/// The `unit_test` verifier.
pub struct UnitTestRunner {
    config: UnitTestConfig,
    layers: Vec<Layer>,
    /// Why the runner refuses to run anything (a required layer is missing).
    refusal: Option<String>,
    #[cfg(all(target_os = "linux", not(grpo_no_sandbox)))]
    toolchains: execute::Toolchains,
    slots: (Mutex<usize>, Condvar),
}

impl UnitTestRunner {
    /// Builds the runner and reports the sandbox's layers on stderr.
    pub fn new(config: UnitTestConfig) -> Result<Self, ConfigError> {
        if !(config.timeout_s.is_finite() && config.timeout_s > 0.0) {
            return Err(ConfigError::invalid(
                "timeout_s",
                format!("must be > 0, got {}", config.timeout_s),
            ));
        }
        if !(config.compile_timeout_s.is_finite() && config.compile_timeout_s > 0.0) {
            return Err(ConfigError::invalid("compile_timeout_s", "must be > 0"));
        }
        if config.memory_mb < 16 {
            return Err(ConfigError::invalid(
                "memory_mb",
                format!("must be at least 16, got {}", config.memory_mb),
            ));
        }
        if config.workers == 0 {
            return Err(ConfigError::invalid("workers", "must be at least 1"));
        }
        let mut required = Vec::new();
        for name in &config.require {
            required.push(Layer::from_name(name).ok_or_else(|| {
                ConfigError::invalid(
                    "require",
                    format!(
                        "unknown layer `{name}` (known: {})",
                        Layer::ALL.map(Layer::name).join(", ")
                    ),
                )
            })?);
        }
        #[cfg(all(target_os = "linux", not(grpo_no_sandbox)))]
        let available = sandbox::available();
        #[cfg(not(all(target_os = "linux", not(grpo_no_sandbox))))]
        let available = &Available::none("this build has no sandbox");
        eprintln!("unit_test sandbox: {}", available.describe());
        let layers: Vec<Layer> = Layer::ALL
            .into_iter()
            .filter(|l| available.has(*l))
            .collect();
        let missing: Vec<&str> = required
            .iter()
            .filter(|l| !available.has(**l))
            .map(|l| l.name())
            .collect();
        #[cfg(all(target_os = "linux", not(grpo_no_sandbox)))]
        let refusal = (!missing.is_empty()).then(|| {
            format!(
                "required sandbox layers unavailable on this machine: {}",
                missing.join(", ")
            )
        });
        // Without a sandbox nothing runs, whatever `require` says.
        #[cfg(not(all(target_os = "linux", not(grpo_no_sandbox))))]
        let refusal = {
            let _ = missing;
            Some(NO_SANDBOX.to_owned())
        };
        Ok(UnitTestRunner {
            #[cfg(all(target_os = "linux", not(grpo_no_sandbox)))]
            toolchains: execute::Toolchains::find(&config),
            config,
            layers,
            refusal,
            slots: (Mutex::new(0), Condvar::new()),
        })
    }

    /// The layers every run uses.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Runs `code` against the row's tests.
    pub fn run(
        &self,
        code: &str,
        language: Language,
        fields: &serde_json::Map<String, Value>,
    ) -> Result<Outcome, VerifyError> {
        if let Some(refusal) = &self.refusal {
            return Err(VerifyError::Other(refusal.clone()));
        }
        if let Some(why) = self.oversize(code) {
            return Ok(Outcome::CompileError(why));
        }
        let _slot = self.acquire();
        #[cfg(all(target_os = "linux", not(grpo_no_sandbox)))]
        return self.execute(code, language, fields);
        #[cfg(not(all(target_os = "linux", not(grpo_no_sandbox))))]
        {
            // Refused above; kept for the signature's sake on sandbox-less builds.
            let _ = (language, fields);
            Err(VerifyError::Other(NO_SANDBOX.into()))
        }
    }

    /// Runs `code` as a Python script under every layer and the config's limits (`timeout_s`,
    /// `memory_mb`, `max_output_kb`), and returns what it printed: what a Python tool for a
    /// model does. `Err` when no sandbox can run it (this build or machine has none) or the
    /// run could not start.
    pub fn run_script(&self, code: &str) -> Result<Script, VerifyError> {
        if let Some(refusal) = &self.refusal {
            return Err(VerifyError::Other(refusal.clone()));
        }
        if let Some(why) = self.oversize(code) {
            return Err(VerifyError::Other(why));
        }
        let _slot = self.acquire();
        #[cfg(all(target_os = "linux", not(grpo_no_sandbox)))]
        return self.execute_script(code);
        #[cfg(not(all(target_os = "linux", not(grpo_no_sandbox))))]
        Err(VerifyError::Other(NO_SANDBOX.into()))
    }

    /// Why `code` is refused unrun for its size, if it is.
    fn oversize(&self, code: &str) -> Option<String> {
        (code.len() > self.config.max_source_kb << 10).then(|| {
            format!(
                "source of {} bytes is over max_source_kb = {}",
                code.len(),
                self.config.max_source_kb
            )
        })
    }

    fn acquire(&self) -> SlotGuard<'_> {
        let (count, freed) = &self.slots;
        let mut running = count.lock().unwrap_or_else(|e| e.into_inner());
        while *running >= self.config.workers {
            running = freed.wait(running).unwrap_or_else(|e| e.into_inner());
        }
        *running += 1;
        SlotGuard(self)
    }
}

/// What a script run by [`UnitTestRunner::run_script`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// The exit status, or minus the signal that ended it.
    pub exit: i32,
    pub stdout: String,
    pub stderr: String,
    /// Killed at `timeout_s` (wall clock or CPU time).
    pub timed_out: bool,
    /// Killed for printing more than `max_output_kb`.
    pub output_limited: bool,
}

struct SlotGuard<'a>(&'a UnitTestRunner);

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        let (count, freed) = &self.0.slots;
        *count.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        freed.notify_one();
    }
}

impl Verifier for UnitTestRunner {
    fn verify(&self, sample: &Sample<'_>) -> Result<Score, VerifyError> {
        let language = match sample.fields.get("language").and_then(Value::as_str) {
            None => self.config.language,
            Some("python") => Language::Python,
            Some("rust") => Language::Rust,
            Some(other) => {
                return Err(VerifyError::InvalidField {
                    field: "language".into(),
                    reason: format!("`{other}` is not python or rust"),
                });
            }
        };
        let code = extract_code(sample.completion, language, self.config.code);
        let outcome = self.run(code, language, sample.fields)?;
        let (passed, total) = outcome.counts();
        let all = matches!(outcome, Outcome::Passed { .. });
        let reward = if self.config.partial_credit {
            passed as f32 / total.max(1) as f32
        } else if all {
            1.0
        } else {
            0.0
        };
        Ok(Score {
            reward,
            correct: Some(all),
            details: outcome.to_string(),
            members: Vec::new(),
        })
    }

    fn is_bounded(&self) -> bool {
        // Every run is killed at its wall-clock limit.
        true
    }
}

/// The last fenced block of the language (or an unlabelled one), else the whole completion.
pub fn extract_code(completion: &str, language: Language, source: CodeSource) -> &str {
    if source == CodeSource::Whole {
        return completion;
    }
    let tags: &[&str] = match language {
        Language::Python => &["python", "py", "python3", ""],
        Language::Rust => &["rust", "rs", ""],
    };
    let mut last = None;
    let mut rest = completion;
    let mut offset = 0;
    while let Some(open) = rest.find("```") {
        let after = &rest[open + 3..];
        let Some(newline) = after.find('\n') else {
            break;
        };
        let tag = after[..newline].trim().to_lowercase();
        let body_start = open + 3 + newline + 1;
        let Some(close) = rest[body_start..].find("```") else {
            break;
        };
        if tags.contains(&tag.as_str()) {
            last = Some((offset + body_start, offset + body_start + close));
        }
        let consumed = body_start + close + 3;
        offset += consumed;
        rest = &rest[consumed..];
    }
    match last {
        Some((start, end)) => &completion[start..end],
        None => completion,
    }
}
