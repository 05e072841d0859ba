//! Running a candidate against its tests, in the sandbox: the part of the runner that needs
//! Linux (namespaces, Landlock, seccomp). Elsewhere the runner builds and refuses every sample.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use super::sandbox::{self, Exit, Jail, Layer, Limits};
use super::{Language, Outcome, Phase, Script, UnitTestConfig, UnitTestRunner};
use crate::VerifyError;

const HARNESS: &str = include_str!("harness.py");

/// Where the interpreters and compilers live, found once when the runner is built.
pub(super) struct Toolchains {
    python: Interpreter,
    rust_sysroot: Option<PathBuf>,
}

impl Toolchains {
    pub(super) fn find(config: &UnitTestConfig) -> Toolchains {
        let python = Interpreter::find(config.python.clone());
        let rust_sysroot =
            std::process::Command::new(config.rustc.as_deref().unwrap_or(Path::new("rustc")))
                .arg("--print")
                .arg("sysroot")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
        Toolchains {
            python,
            rust_sysroot,
        }
    }
}

impl UnitTestRunner {
    /// Runs `code` against the row's tests in a fresh directory, under every layer.
    pub(super) fn execute(
        &self,
        code: &str,
        language: Language,
        fields: &serde_json::Map<String, Value>,
    ) -> Result<Outcome, VerifyError> {
        let dir = self.run_dir()?;
        match language {
            Language::Python => self.run_python(code, fields, dir.path()),
            Language::Rust => self.run_rust(code, fields, dir.path()),
        }
    }

    /// A fresh directory for one run, below `work_dir` (or the system's temporary directory).
    fn run_dir(&self) -> Result<RunDir, VerifyError> {
        let base = self
            .config
            .work_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir);
        RunDir::new(&base).map_err(|e| sandbox_error("cannot create the run directory", e))
    }

    fn limits(&self, wall: f64, memory_mb: u64) -> Limits {
        Limits {
            wall: Duration::from_secs_f64(wall),
            cpu_seconds: wall.ceil() as u64 + 1,
            memory_bytes: memory_mb << 20,
            output_bytes: self.config.max_output_kb << 10,
            ..Limits::default()
        }
    }

    fn run_python(
        &self,
        code: &str,
        fields: &serde_json::Map<String, Value>,
        dir: &Path,
    ) -> Result<Outcome, VerifyError> {
        let spec = if let Some(test) = fields.get("test").and_then(Value::as_str) {
            let entry = string_field(fields, "entry_point")?;
            let prompt = fields.get("prompt").and_then(Value::as_str).unwrap_or("");
            json!({"kind": "humaneval", "program": humaneval_program(prompt, code, entry), "test": test, "entry_point": entry})
        } else {
            json!({"kind": "asserts", "program": code, "asserts": asserts(fields)?})
        };
        write(dir, "spec.json", spec.to_string().as_bytes())?;
        write(dir, "harness.py", HARNESS.as_bytes())?;
        let nonce = nonce();
        let out = self.run_python_file(dir, "harness.py", Some(nonce.as_bytes()))?;
        Ok(verdict(&out, &nonce, Phase::Run))
    }

    /// Runs `python -I -S -B <script>` in `dir` under every layer and the config's limits
    /// (`secret` readable on fd 3).
    fn run_python_file(
        &self,
        dir: &Path,
        script: &str,
        secret: Option<&[u8]>,
    ) -> Result<sandbox::RunOutput, VerifyError> {
        let (python, binds) = self
            .toolchains
            .python
            .inside(dir, self.layers.contains(&Layer::Mountns));
        let mut read = sandbox::system_read_paths();
        if binds.is_empty()
            && let Some(prefix) = &self.toolchains.python.prefix
        {
            read.push(prefix.clone());
        }
        let jail = Jail { dir, read, binds };
        sandbox::run(
            &[
                python.as_os_str(),
                OsStr::new("-I"),
                OsStr::new("-S"),
                OsStr::new("-B"),
                OsStr::new(script),
            ],
            &[
                ("PATH", OsStr::new("/usr/bin:/bin")),
                ("LANG", OsStr::new("C.UTF-8")),
            ],
            &jail,
            &self.limits(self.config.timeout_s, self.config.memory_mb),
            &self.layers,
            secret,
            Some(sandbox::fresh_uid()),
        )
        .map_err(|e| sandbox_error("cannot start python", e))
    }

    /// Runs `code` as a Python script (`python -I -S -B main.py`) in a fresh directory: what
    /// a Python tool does with the model's program.
    pub(super) fn execute_script(&self, code: &str) -> Result<Script, VerifyError> {
        let dir = self.run_dir()?;
        let dir = dir.path();
        write(dir, "main.py", code.as_bytes())?;
        let out = self.run_python_file(dir, "main.py", None)?;
        let exit = match out.exit {
            Exit::Code(code) => code,
            Exit::Signal(signal) => -signal,
        };
        Ok(Script {
            exit,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            // The CPU-time rlimit's signal is the wall clock's backstop.
            timed_out: out.timed_out || out.exit == Exit::Signal(libc::SIGXCPU),
            output_limited: out.output_limited,
        })
    }

    fn run_rust(
        &self,
        code: &str,
        fields: &serde_json::Map<String, Value>,
        dir: &Path,
    ) -> Result<Outcome, VerifyError> {
        let asserts = asserts(fields)?;
        let sysroot = self.toolchains.rust_sysroot.as_ref().ok_or_else(|| {
            VerifyError::Other("no Rust compiler found (rustc --print sysroot failed)".into())
        })?;
        write(dir, "main.rs", rust_program(code, &asserts).as_bytes())?;
        // The toolchain may sit in a home directory the run's uid cannot enter: with a mount
        // namespace it is bound read-only into the run's directory.
        let (rustc, binds) = if self.layers.contains(&Layer::Mountns) {
            let inside = dir.join("toolchain");
            (inside.join("bin/rustc"), vec![(sysroot.clone(), inside)])
        } else {
            (sysroot.join("bin/rustc"), Vec::new())
        };
        let mut read = sandbox::system_read_paths();
        if binds.is_empty() {
            read.push(sysroot.clone());
        }
        let jail = Jail { dir, read, binds };
        let compile = sandbox::run(
            &[
                rustc.as_os_str(),
                OsStr::new("--edition=2021"),
                OsStr::new("-Copt-level=0"),
                OsStr::new("-Cdebuginfo=0"),
                OsStr::new("-o"),
                OsStr::new("program"),
                OsStr::new("main.rs"),
            ],
            &[
                ("PATH", OsStr::new("/usr/bin:/bin")),
                ("TMPDIR", dir.as_os_str()),
            ],
            &jail,
            &Limits {
                processes: 256,
                open_files: 1024,
                ..self.limits(
                    self.config.compile_timeout_s,
                    self.config.memory_mb.max(4096),
                )
            },
            &self.layers,
            None,
            Some(sandbox::fresh_uid()),
        )
        .map_err(|e| sandbox_error("cannot start rustc", e))?;
        if compile.timed_out {
            return Ok(Outcome::Timeout(Phase::Compile));
        }
        if compile.exit != Exit::Code(0) {
            let stderr = String::from_utf8_lossy(&compile.stderr);
            let first = stderr
                .lines()
                .find(|l| l.starts_with("error"))
                .unwrap_or("rustc failed");
            return Ok(Outcome::CompileError(first.chars().take(200).collect()));
        }
        let jail = Jail {
            dir,
            read: sandbox::system_read_paths(),
            binds: Vec::new(),
        };
        let nonce = nonce();
        let out = sandbox::run(
            &[OsStr::new("./program")],
            &[],
            &jail,
            &self.limits(self.config.timeout_s, self.config.memory_mb),
            &self.layers,
            Some(nonce.as_bytes()),
            Some(sandbox::fresh_uid()),
        )
        .map_err(|e| sandbox_error("cannot start the program", e))?;
        Ok(verdict(&out, &nonce, Phase::Run))
    }
}

/// Reads the harness's verdict: the last line starting with the nonce.
fn verdict(out: &sandbox::RunOutput, nonce: &str, phase: Phase) -> Outcome {
    if out.timed_out {
        return Outcome::Timeout(phase);
    }
    if out.output_limited {
        return Outcome::OutputLimit;
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(nonce).map(str::trim));
    let Some(line) = line else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("MemoryError") || stderr.contains("memory allocation of") {
            return Outcome::MemoryLimit;
        }
        // The CPU-time rlimit's signal: the wall clock's backstop.
        if out.exit == Exit::Signal(libc::SIGXCPU) {
            return Outcome::Timeout(phase);
        }
        let tail: String = stderr
            .lines()
            .last()
            .unwrap_or("")
            .chars()
            .take(200)
            .collect();
        return Outcome::RuntimeError(format!(
            "the program ended ({:?}) before the harness's verdict {tail}",
            out.exit
        ));
    };
    let mut words = line.split_whitespace();
    match words.next() {
        Some("result") => {
            let passed = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
            let total = words.next().and_then(|w| w.parse().ok()).unwrap_or(1);
            if passed == total && total > 0 {
                Outcome::Passed { total }
            } else {
                Outcome::Failed { passed, total }
            }
        }
        Some("compile_error") => Outcome::CompileError(words.collect::<Vec<_>>().join(" ")),
        Some("memory_error") => Outcome::MemoryLimit,
        _ => Outcome::RuntimeError(line.split_once(' ').map_or("", |(_, rest)| rest).to_owned()),
    }
}

/// The program for a HumanEval row: the completion continues the prompt, unless it defines the
/// entry point itself (then the prompt's imports come first).
fn humaneval_program(prompt: &str, code: &str, entry_point: &str) -> String {
    if code.contains(&format!("def {entry_point}(")) {
        let imports: Vec<&str> = prompt
            .lines()
            .filter(|l| l.starts_with("import ") || l.starts_with("from "))
            .collect();
        format!("{}\n{code}", imports.join("\n"))
    } else {
        format!("{prompt}{code}")
    }
}

/// The Rust program: the candidate's code in a module (its own `main`, if any, stays unused),
/// one function per assertion beside it, and a `main` that reads the nonce, runs each test
/// catching panics, and prints the verdict.
fn rust_program(code: &str, asserts: &[String]) -> String {
    let tests: String = asserts
        .iter()
        .enumerate()
        .map(|(i, a)| format!("    pub fn __grpo_test_{i}() {{ {a}; }}\n"))
        .collect();
    let list: String = (0..asserts.len())
        .map(|i| format!("solution::__grpo_test_{i}, "))
        .collect();
    format!(
        "#![allow(unused, dead_code)]\nmod solution {{\n{code}\n{tests}}}\n\
         fn main() {{\n\
         use std::io::Read;\n\
         let mut nonce = String::new();\n\
         {{ let mut f = unsafe {{ <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(3) }}; let _ = f.read_to_string(&mut nonce); }}\n\
         std::panic::set_hook(Box::new(|_| {{}}));\n\
         let tests: Vec<fn()> = vec![{list}];\n\
         let total = tests.len();\n\
         let passed = tests.into_iter().filter(|t| std::panic::catch_unwind(*t).is_ok()).count();\n\
         println!(\"\\n{{nonce}} result {{passed}} {{total}}\");\n\
         }}\n"
    )
}

fn asserts(fields: &serde_json::Map<String, Value>) -> Result<Vec<String>, VerifyError> {
    let invalid = |reason: &str| VerifyError::InvalidField {
        field: "tests".into(),
        reason: reason.into(),
    };
    match fields.get("tests") {
        None | Some(Value::Null) => Err(VerifyError::MissingField {
            field: "tests (or test + entry_point)".into(),
        }),
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|t| {
                t.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid("every test must be a string"))
            })
            .collect(),
        Some(_) => Err(invalid("must be a non-empty list of assertion strings")),
    }
}

fn string_field<'a>(
    fields: &'a serde_json::Map<String, Value>,
    name: &str,
) -> Result<&'a str, VerifyError> {
    match fields.get(name) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(VerifyError::MissingField { field: name.into() }),
        Some(_) => Err(VerifyError::InvalidField {
            field: name.into(),
            reason: "must be a string".into(),
        }),
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), VerifyError> {
    std::fs::write(dir.join(name), bytes)
        .map_err(|e| sandbox_error(&format!("cannot write {name}"), e))
}

fn sandbox_error(what: &str, e: std::io::Error) -> VerifyError {
    VerifyError::Other(format!("sandbox error: {what}: {e}"))
}

/// 128 random bits from the kernel, as hex.
fn nonce() -> String {
    let mut bytes = [0u8; 16];
    // SAFETY: a valid buffer; getrandom fills it.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        // Never reached on Linux ≥ 3.17; a time-based nonce is still unknown to the candidate.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        bytes[..16].copy_from_slice(&t.as_nanos().to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The Python interpreter: its executable and, when it lives outside the system directories
/// (pyenv, conda under a private home), the prefix to bind into the run read-only.
struct Interpreter {
    executable: PathBuf,
    prefix: Option<PathBuf>,
}

impl Interpreter {
    fn find(configured: Option<PathBuf>) -> Interpreter {
        let program = configured.unwrap_or_else(|| {
            let debian = PathBuf::from("/usr/bin/python3");
            if debian.exists() {
                debian
            } else {
                which("python3").unwrap_or_else(|| "python3".into())
            }
        });
        // Ask it (outside the sandbox: it is our interpreter, not the candidate's code) where it
        // really lives; a pyenv shim is a script in front of the real binary.
        let asked = std::process::Command::new(&program)
            .args([
                "-c",
                "import sys; print(sys.executable); print(sys.base_prefix)",
            ])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(PathBuf::from)
                    .collect::<Vec<_>>()
            });
        match asked.as_deref() {
            Some([executable, prefix])
                if !["/usr/", "/bin/"].iter().any(|d| executable.starts_with(d))
                    && executable.starts_with(prefix) =>
            {
                Interpreter {
                    executable: executable.clone(),
                    prefix: Some(prefix.clone()),
                }
            }
            Some([executable, _]) => Interpreter {
                executable: executable.clone(),
                prefix: None,
            },
            _ => Interpreter {
                executable: program,
                prefix: None,
            },
        }
    }

    /// The executable to run in `dir`, and the bind mount that makes it reachable there.
    fn inside(&self, dir: &Path, mount_ns: bool) -> (PathBuf, Vec<(PathBuf, PathBuf)>) {
        match &self.prefix {
            Some(prefix) if mount_ns => {
                let relative = self
                    .executable
                    .strip_prefix(prefix)
                    .unwrap_or(&self.executable);
                let target = dir.join("python");
                (target.join(relative), vec![(prefix.clone(), target)])
            }
            _ => (self.executable.clone(), Vec::new()),
        }
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}

/// A fresh directory for one run, removed when dropped.
struct RunDir(PathBuf);

impl RunDir {
    fn new(base: &Path) -> std::io::Result<RunDir> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = base.join(format!(
            "grpo-unit-test-{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            nonce()
        ));
        std::fs::create_dir(&dir)?;
        Ok(RunDir(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
