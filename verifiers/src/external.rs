//! External-process plugins: a verifier in any language, speaking JSON lines.
//!
//! ## Protocol
//! The plugin is a long-lived child process. For each sample it reads one line on stdin,
//!
//! ```json
//! {"prompt": "...", "completion": "...", "fields": {...the dataset row...}}
//! ```
//!
//! and writes one line on stdout, either a score or a refusal:
//!
//! ```json
//! {"reward": 1.0, "correct": true, "details": "optional text"}
//! {"unscorable": "why this sample cannot be scored"}
//! ```
//!
//! It should exit when stdin closes. Anything it writes to stderr is kept (the last few
//! kilobytes) and quoted when it crashes. Print nothing else on stdout: a line that is not a
//! reply makes the sample unscorable and the plugin is restarted, since the stream can no
//! longer be trusted to be in step.
//!
//! ## Failures
//! A reply slower than `timeout_s` → the plugin's whole process group is killed, the sample is
//! unscorable, and the next sample starts a fresh plugin. A plugin that dies mid-sample → that
//! sample is unscorable (with the exit status and stderr tail) and the next one restarts it.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::{ConfigError, Sample, Score, Verifier, VerifyError};

/// Longest reply line accepted.
pub const MAX_REPLY_BYTES: usize = 1 << 20;
/// How much of the plugin's stderr is kept for crash reports.
const STDERR_TAIL_BYTES: usize = 4096;

/// Settings of an external plugin; the TOML keys of `kind = "external"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalConfig {
    /// The program and its arguments, e.g. `["python3", "my_plugin.py"]`.
    pub command: Vec<String>,
    /// Seconds a reply may take.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: f64,
    /// How many copies of the plugin run side by side (samples are spread over them).
    #[serde(default = "default_processes")]
    pub processes: usize,
}

fn default_timeout_s() -> f64 {
    5.0
}

fn default_processes() -> usize {
    1
}

/// A verifier that runs in a child process (see the [module docs](self) for the protocol).
pub struct ExternalVerifier {
    pool: PluginPool,
}

impl ExternalVerifier {
    /// Starts the plugin processes; an error if the command cannot be started.
    pub fn new(config: ExternalConfig) -> Result<Self, ConfigError> {
        Ok(ExternalVerifier {
            pool: PluginPool::new(config.command, config.timeout_s, config.processes)?,
        })
    }
}

impl Verifier for ExternalVerifier {
    fn verify(&self, sample: &Sample<'_>) -> Result<Score, VerifyError> {
        let request = json!({
            "prompt": sample.prompt,
            "completion": sample.completion,
            "fields": sample.fields,
        });
        self.pool
            .call(&request, |line| {
                parse_reply(line).map_err(|reason| match reason {
                    ReplyError::Malformed(reason) => (reason, true),
                    ReplyError::Unscorable(reason) => (format!("unscorable: {reason}"), false),
                })
            })
            .map_err(|error| match error {
                PluginError::Timeout(after) => VerifyError::Timeout(after),
                PluginError::Failed { plugin, reason } => VerifyError::Plugin { plugin, reason },
            })
    }

    fn is_bounded(&self) -> bool {
        true // by `timeout_s`
    }
}

/// Long-lived child processes answering one JSON line with one line, each request to the next
/// process in turn: the engine of [`ExternalVerifier`] and of external tools. A process that
/// dies, answers late (`timeout_s`: its whole process group is killed) or out of step is
/// restarted for the next request.
pub struct PluginPool {
    command: Vec<String>,
    timeout: Duration,
    slots: Vec<Mutex<Option<Plugin>>>,
    next_slot: AtomicUsize,
}

/// Why a plugin gave no usable reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    #[error("plugin `{plugin}`: {reason}")]
    Failed { plugin: String, reason: String },
}

/// One running copy of the plugin.
struct Plugin {
    child: Child,
    stdin: ChildStdin,
    replies: mpsc::Receiver<Result<String, String>>,
    stderr_tail: Arc<Mutex<VecDeque<u8>>>,
}

impl PluginPool {
    /// Starts `processes` copies of `command`; errors name the setting (`command`,
    /// `timeout_s`, `processes`).
    pub fn new(
        command: Vec<String>,
        timeout_s: f64,
        processes: usize,
    ) -> Result<Self, ConfigError> {
        if command.is_empty() || command[0].is_empty() {
            return Err(ConfigError::invalid("command", "must name a program"));
        }
        if !(timeout_s.is_finite() && timeout_s > 0.0 && timeout_s <= 86_400.0) {
            return Err(ConfigError::invalid(
                "timeout_s",
                format!("must be in (0, 86400], got {timeout_s}"),
            ));
        }
        if !(1..=256).contains(&processes) {
            return Err(ConfigError::invalid(
                "processes",
                "must be between 1 and 256",
            ));
        }
        let pool = PluginPool {
            timeout: Duration::from_secs_f64(timeout_s),
            slots: (0..processes).map(|_| Mutex::new(None)).collect(),
            next_slot: AtomicUsize::new(0),
            command,
        };
        for slot in &pool.slots {
            let plugin = pool
                .spawn()
                .map_err(|reason| ConfigError::invalid("command", reason))?;
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(plugin);
        }
        Ok(pool)
    }

    /// The command line, for messages.
    pub fn label(&self) -> String {
        self.command.join(" ")
    }

    /// Sends `request` as one line and hands the reply line to `parse`, whose `Err((reason,
    /// restart))` says whether the process can no longer be trusted to be in step.
    pub fn call<T>(
        &self,
        request: &serde_json::Value,
        parse: impl FnOnce(&str) -> Result<T, (String, bool)>,
    ) -> Result<T, PluginError> {
        let request = format!("{request}\n");
        let slot = &self.slots[self.next_slot.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
        // A plugin that died between requests is restarted before it is given this one.
        if slot
            .as_mut()
            .is_some_and(|p| !matches!(p.child.try_wait(), Ok(None)))
        {
            *slot = None;
        }
        if slot.is_none() {
            *slot = Some(self.spawn().map_err(|reason| self.failed(reason))?);
        }
        let plugin = slot.as_mut().expect("just started");
        let reply = self.exchange(plugin, &request).and_then(|line| {
            parse(&line).map_err(|(reason, restart)| (self.failed(reason), restart))
        });
        reply.map_err(|(error, restart)| {
            if restart {
                *slot = None; // dropping it kills the process group
            }
            error
        })
    }

    fn failed(&self, reason: impl Into<String>) -> PluginError {
        PluginError::Failed {
            plugin: self.label(),
            reason: reason.into(),
        }
    }

    fn spawn(&self) -> Result<Plugin, String> {
        let mut child = Command::new(&self.command[0])
            .args(&self.command[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a timeout kills whatever it started too.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start `{}`: {e}", self.label()))?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");

        let (send, replies) = mpsc::channel();
        thread::Builder::new()
            .name("grpo-plugin-stdout".into())
            .spawn(move || read_replies(stdout, send))
            .map_err(|e| format!("cannot start a reader thread: {e}"))?;
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let tail = Arc::clone(&stderr_tail);
        thread::Builder::new()
            .name("grpo-plugin-stderr".into())
            .spawn(move || keep_tail(stderr, &tail))
            .map_err(|e| format!("cannot start a reader thread: {e}"))?;
        Ok(Plugin {
            child,
            stdin,
            replies,
            stderr_tail,
        })
    }

    /// Sends one request and waits for its reply line. `Err((error, restart))`: `restart` says
    /// the plugin can no longer be used.
    fn exchange(&self, plugin: &mut Plugin, request: &str) -> Result<String, (PluginError, bool)> {
        let sent = plugin
            .stdin
            .write_all(request.as_bytes())
            .and_then(|()| plugin.stdin.flush());
        if sent.is_err() {
            return Err((self.failed(plugin.crash_report()), true));
        }
        match plugin.replies.recv_timeout(self.timeout) {
            Ok(Ok(line)) => Ok(line),
            Ok(Err(reason)) => Err((self.failed(reason), true)),
            Err(mpsc::RecvTimeoutError::Timeout) => Err((PluginError::Timeout(self.timeout), true)),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err((self.failed(plugin.crash_report()), true))
            }
        }
    }
}

impl Plugin {
    /// Why the plugin stopped answering: its exit status and the tail of its stderr.
    fn crash_report(&mut self) -> String {
        // Give the stderr reader a moment to drain what the dying process wrote.
        let status = (0..50)
            .find_map(|_| match self.child.try_wait() {
                Ok(Some(status)) => Some(status.to_string()),
                _ => {
                    thread::sleep(Duration::from_millis(10));
                    None
                }
            })
            .unwrap_or_else(|| "still running".into());
        thread::sleep(Duration::from_millis(20));
        let tail = self.stderr_tail.lock().unwrap_or_else(|p| p.into_inner());
        let (front, back) = tail.as_slices();
        let tail = String::from_utf8_lossy(&[front, back].concat())
            .trim()
            .to_owned();
        if tail.is_empty() {
            format!("crashed ({status}) while answering; it will be restarted")
        } else {
            format!("crashed ({status}) while answering; it will be restarted; stderr: {tail}")
        }
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: killpg only sends a signal; the group is the one the child leads.
        unsafe {
            libc::killpg(pid, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// Forwards each stdout line (without its newline) until EOF; an over-long line is an error.
fn read_replies(stdout: impl Read, send: mpsc::Sender<Result<String, String>>) {
    let mut reader = BufReader::new(stdout);
    loop {
        let mut line = Vec::new();
        let read = (&mut reader)
            .take(MAX_REPLY_BYTES as u64 + 1)
            .read_until(b'\n', &mut line);
        let reply = match read {
            Ok(0) => return,
            Ok(_) if line.len() > MAX_REPLY_BYTES => {
                Err(format!("reply line over {MAX_REPLY_BYTES} bytes"))
            }
            Ok(_) => String::from_utf8(line)
                .map(|l| l.trim_end_matches(['\n', '\r']).to_owned())
                .map_err(|_| "reply is not UTF-8".to_owned()),
            Err(e) => Err(format!("cannot read the plugin's stdout: {e}")),
        };
        let stop = reply.is_err();
        if send.send(reply).is_err() || stop {
            return;
        }
    }
}

fn keep_tail(stderr: impl Read, tail: &Mutex<VecDeque<u8>>) {
    let mut stderr = stderr;
    let mut buffer = [0u8; 1024];
    while let Ok(n) = stderr.read(&mut buffer) {
        if n == 0 {
            return;
        }
        let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
        tail.extend(&buffer[..n]);
        let excess = tail.len().saturating_sub(STDERR_TAIL_BYTES);
        tail.drain(..excess);
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reply {
    reward: Option<f64>,
    correct: Option<bool>,
    details: Option<String>,
    unscorable: Option<String>,
}

enum ReplyError {
    Malformed(String),
    Unscorable(String),
}

fn parse_reply(line: &str) -> Result<Score, ReplyError> {
    let shown: String = line.chars().take(200).collect();
    let malformed =
        |why: String| ReplyError::Malformed(format!("malformed reply `{shown}`: {why}"));
    let reply: Reply = serde_json::from_str(line).map_err(|e| malformed(e.to_string()))?;
    if let Some(reason) = reply.unscorable {
        return Err(ReplyError::Unscorable(reason));
    }
    let reward = reply
        .reward
        .ok_or_else(|| malformed("no `reward` (nor `unscorable`)".into()))?;
    if !reward.is_finite() || reward.abs() > f64::from(f32::MAX) {
        return Err(malformed(format!("reward {reward} is not a finite f32")));
    }
    Ok(Score {
        reward: reward as f32,
        correct: reply.correct,
        details: reply.details.unwrap_or_default(),
        members: Vec::new(),
    })
}
