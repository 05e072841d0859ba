//! Running one untrusted program, contained. Every layer that works on this machine is used;
//! [`available`] says which do (probed once, by running `/bin/true` under each alone).
//!
//! | layer      | what it does                                                            |
//! |------------|-------------------------------------------------------------------------|
//! | `netns`    | a new network namespace: no interfaces but a down loopback              |
//! | `pidns`    | a new PID namespace whose init is the program: when it ends, or its shim is killed, every process it started dies with it |
//! | `mountns`  | a private mount namespace (read-only bind mounts of toolchains)         |
//! | `landlock` | read-only access below system directories, full access below the run's own directory, nothing else; no TCP |
//! | `seccomp`  | sockets, ptrace, mounts, namespaces, modules, keyrings, BPF, perf → EPERM |
//! | `rlimits`  | address space, CPU seconds, file size, open files, processes, no core   |
//! | `uid_drop` | (when started as root) a fresh unprivileged uid/gid per run, so `RLIMIT_NPROC` binds and other runs' files are out of reach |
//!
//! Always: a new session (the whole process group is killed on timeout), an environment
//! cleared to what the caller passes, stdin `/dev/null`, stdout and stderr read as they come
//! and capped.

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::landlock::{self, Restriction};
use super::seccomp;

pub use super::layers::{Available, Layer};

/// The layers this machine offers, probed on first use.
pub fn available() -> &'static Available {
    static PROBED: OnceLock<Available> = OnceLock::new();
    PROBED.get_or_init(probe)
}

fn probe() -> Available {
    let abi = landlock::abi();
    let dir = std::env::temp_dir().join(format!("grpo-sandbox-probe-{}", std::process::id()));
    let mut layers = BTreeMap::new();
    for layer in Layer::ALL {
        let state = match layer {
            Layer::Landlock if abi.is_none() => Err("the kernel has no Landlock".to_owned()),
            Layer::Seccomp if seccomp::programs().is_none() => {
                Err("no system-call table for this architecture".to_owned())
            }
            Layer::UidDrop if !is_root() => Err("not started as root".to_owned()),
            _ => (|| {
                std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                let jail = Jail {
                    dir: &dir,
                    read: system_read_paths(),
                    binds: Vec::new(),
                };
                let limits = Limits::default();
                let out = run(
                    &[OsStr::new("/bin/true")],
                    &[],
                    &jail,
                    &limits,
                    &[layer],
                    None,
                    Some(probe_uid()),
                )
                .map_err(|e| e.to_string())?;
                match out.exit {
                    Exit::Code(0) => Ok(()),
                    other => Err(format!(
                        "/bin/true ended with {other:?}: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    )),
                }
            })(),
        };
        layers.insert(layer, state);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Available {
        layers,
        landlock_abi: abi,
    }
}

fn probe_uid() -> u32 {
    FIRST_UID - 1
}

pub fn is_root() -> bool {
    // SAFETY: getuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// System directories a program reads its interpreter, libraries and linker from.
pub fn system_read_paths() -> Vec<PathBuf> {
    [
        "/usr",
        "/bin",
        "/sbin",
        "/lib",
        "/lib64",
        "/lib32",
        "/etc/ld.so.cache",
        "/etc/ld.so.conf",
        "/etc/ld.so.conf.d",
        "/etc/localtime",
        "/dev/null",
        "/dev/zero",
        "/dev/urandom",
        "/dev/random",
    ]
    .iter()
    .map(PathBuf::from)
    .collect()
}

/// Resource limits of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Wall clock: past it the whole tree is killed.
    pub wall: Duration,
    /// `RLIMIT_CPU`: a backstop if the wall-clock kill were late.
    pub cpu_seconds: u64,
    /// `RLIMIT_AS`.
    pub memory_bytes: u64,
    /// `RLIMIT_FSIZE`: the largest file the program may write.
    pub file_bytes: u64,
    /// `RLIMIT_NOFILE`.
    pub open_files: u64,
    /// `RLIMIT_NPROC`: processes of the run's uid.
    pub processes: u64,
    /// stdout and stderr are each read up to this; more kills the run.
    pub output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            wall: Duration::from_secs(5),
            cpu_seconds: 6,
            memory_bytes: 512 << 20,
            file_bytes: 16 << 20,
            open_files: 64,
            processes: 64,
            output_bytes: 1 << 20,
        }
    }
}

/// Where a run lives: its writable directory, what it may read, and (with `mountns`) read-only
/// bind mounts of directories it could not otherwise reach (a toolchain under a private home),
/// each onto a path inside `dir`.
pub struct Jail<'a> {
    pub dir: &'a Path,
    pub read: Vec<PathBuf>,
    pub binds: Vec<(PathBuf, PathBuf)>,
}

/// How the program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunOutput {
    pub exit: Exit,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub timed_out: bool,
    /// stdout or stderr passed `output_bytes`; the run was killed.
    pub output_limited: bool,
    pub wall: Duration,
}

/// Unprivileged uids handed to runs started as root, one per run.
const FIRST_UID: u32 = 1_900_000;
static NEXT_UID: AtomicU32 = AtomicU32::new(0);

/// A fresh uid for a run started as root.
pub fn fresh_uid() -> u32 {
    FIRST_UID + NEXT_UID.fetch_add(1, Ordering::Relaxed) % 50_000
}

/// Runs `argv` in `jail` under `layers`. `secret` is readable once on fd 3 (the harness's
/// nonce). `uid` is the unprivileged uid/gid used when `uid_drop` is among the layers.
pub fn run(
    argv: &[&OsStr],
    env: &[(&str, &OsStr)],
    jail: &Jail<'_>,
    limits: &Limits,
    layers: &[Layer],
    secret: Option<&[u8]>,
    uid: Option<u32>,
) -> std::io::Result<RunOutput> {
    let on = |layer| layers.contains(&layer);
    let root = is_root();
    let drop_to = if on(Layer::UidDrop) && root {
        uid
    } else {
        None
    };
    if let Some(id) = drop_to {
        chown(jail.dir, id)?;
    }
    // Everything the child needs is prepared here: between fork and exec it only makes
    // system calls (the parent has other threads; allocating there could deadlock).
    let ruleset = if on(Layer::Landlock) {
        let read: Vec<&Path> = jail.read.iter().map(PathBuf::as_path).collect();
        Some(Restriction::new(&read, jail.dir)?)
    } else {
        None
    };
    let filters = if on(Layer::Seccomp) {
        Some(seccomp::programs().ok_or_else(|| std::io::Error::other("no seccomp table"))?)
    } else {
        None
    };
    let binds: Vec<(CString, CString)> = if on(Layer::Mountns) {
        jail.binds
            .iter()
            .map(|(from, to)| {
                std::fs::create_dir_all(to)?;
                if let Some(id) = drop_to {
                    chown(to, id)?;
                }
                Ok((c_path(from)?, c_path(to)?))
            })
            .collect::<std::io::Result<_>>()?
    } else {
        Vec::new()
    };
    let mut unshare_flags = 0;
    if on(Layer::Netns) {
        unshare_flags |= libc::CLONE_NEWNET;
    }
    if on(Layer::Pidns) {
        unshare_flags |= libc::CLONE_NEWPID;
    }
    if on(Layer::Mountns) {
        unshare_flags |= libc::CLONE_NEWNS;
    }
    // Without root, namespaces need a user namespace; the run is uid 0 inside it, mapped to
    // our own uid outside.
    let user_ns = unshare_flags != 0 && !root;
    // SAFETY: getuid/getgid cannot fail.
    let (outer_uid, outer_gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let uid_map = CString::new(format!("0 {outer_uid} 1")).expect("no NUL");
    let gid_map = CString::new(format!("0 {outer_gid} 1")).expect("no NUL");
    let rlimits: Vec<(libc::__rlimit_resource_t, u64)> = if on(Layer::Rlimits) {
        vec![
            (libc::RLIMIT_AS, limits.memory_bytes),
            (libc::RLIMIT_CPU, limits.cpu_seconds),
            (libc::RLIMIT_FSIZE, limits.file_bytes),
            (libc::RLIMIT_NOFILE, limits.open_files),
            (libc::RLIMIT_CORE, 0),
            (libc::RLIMIT_NPROC, limits.processes),
        ]
    } else {
        vec![(libc::RLIMIT_CORE, 0)]
    };
    let secret_fd = match secret {
        Some(bytes) => Some(secret_pipe(bytes)?),
        None => None,
    };
    let secret_raw = secret_fd.as_ref().map(|fd| fd.as_raw_fd());

    let mut command = Command::new(argv[0]);
    command
        .args(&argv[1..])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .current_dir(jail.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let ruleset = ruleset.map(Arc::new);
    let child_ruleset = ruleset.clone();
    // SAFETY: the closure makes only async-signal-safe system calls on data prepared above.
    unsafe {
        command.pre_exec(move || {
            child_setup(ChildSetup {
                unshare_flags,
                user_ns,
                uid_map: &uid_map,
                gid_map: &gid_map,
                pid_ns: unshare_flags & libc::CLONE_NEWPID != 0,
                binds: &binds,
                rlimits: &rlimits,
                drop_to,
                ruleset: child_ruleset.as_deref(),
                filters: filters.as_deref(),
                secret_fd: secret_raw,
            })
        });
    }
    let started = Instant::now();
    let mut child = command.spawn()?;
    drop(secret_fd);
    let pgid = child.id() as i32;
    let killed = Arc::new(AtomicBool::new(false));
    let limited = Arc::new(AtomicBool::new(false));
    let reader = |stream: Option<Box<dyn Read + Send>>| {
        let (killed, limited, cap) = (killed.clone(), limited.clone(), limits.output_bytes);
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let Some(mut stream) = stream else { return out };
            let mut buffer = [0u8; 8192];
            loop {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) if out.len() + n > cap => {
                        out.extend_from_slice(&buffer[..cap - out.len()]);
                        limited.store(true, Ordering::SeqCst);
                        kill_group(pgid);
                        killed.store(true, Ordering::SeqCst);
                        break;
                    }
                    Ok(n) => out.extend_from_slice(&buffer[..n]),
                }
            }
            out
        })
    };
    let stdout = reader(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let stderr = reader(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() >= limits.wall {
            timed_out = true;
            kill_group(pgid);
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    // Whatever is left of the group (a background process in its own group dies with the PID
    // namespace; without one, the uid sweep below finds it).
    kill_group(pgid);
    if let Some(id) = drop_to {
        sweep_uid(id);
    }
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    drop(ruleset);
    let exit = match (status.code(), status.signal()) {
        // The PID-namespace shim reports a signal as 128 + signal.
        (Some(code), _) if on(Layer::Pidns) && code > 128 && code < 128 + 65 => {
            Exit::Signal(code - 128)
        }
        (Some(code), _) => Exit::Code(code),
        (None, Some(signal)) => Exit::Signal(signal),
        (None, None) => Exit::Signal(0),
    };
    Ok(RunOutput {
        exit,
        stdout,
        stderr,
        timed_out,
        output_limited: limited.load(Ordering::SeqCst),
        wall: started.elapsed(),
    })
}

struct ChildSetup<'a> {
    unshare_flags: libc::c_int,
    user_ns: bool,
    uid_map: &'a CString,
    gid_map: &'a CString,
    pid_ns: bool,
    binds: &'a [(CString, CString)],
    rlimits: &'a [(libc::__rlimit_resource_t, u64)],
    drop_to: Option<u32>,
    ruleset: Option<&'a Restriction>,
    filters: Option<&'a [seccompiler::BpfProgram]>,
    secret_fd: Option<i32>,
}

fn check(result: libc::c_int) -> std::io::Result<()> {
    if result < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Between fork and exec, in the child. System calls only.
fn child_setup(setup: ChildSetup<'_>) -> std::io::Result<()> {
    // SAFETY (whole function): plain system calls on valid, pre-built arguments.
    unsafe {
        check(libc::setsid())?;
        if setup.unshare_flags != 0 {
            let flags = setup.unshare_flags
                | if setup.user_ns {
                    libc::CLONE_NEWUSER
                } else {
                    0
                };
            check(libc::unshare(flags))?;
            if setup.user_ns {
                write_file(c"/proc/self/setgroups", b"deny")?;
                write_file(c"/proc/self/uid_map", setup.uid_map.as_bytes())?;
                write_file(c"/proc/self/gid_map", setup.gid_map.as_bytes())?;
            }
        }
        if setup.pid_ns {
            // The namespace's first process is the program; this one stays behind as a shim
            // that reports its exit and, killed, takes the namespace down with it.
            let pid = libc::fork();
            if pid < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if pid > 0 {
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
                let mut status = 0;
                while libc::waitpid(pid, &mut status, 0) < 0 {
                    if *libc::__errno_location() != libc::EINTR {
                        libc::_exit(127);
                    }
                }
                if libc::WIFSIGNALED(status) {
                    libc::_exit(128 + libc::WTERMSIG(status));
                }
                libc::_exit(libc::WEXITSTATUS(status));
            }
        }
        if !setup.binds.is_empty() || setup.unshare_flags & libc::CLONE_NEWNS != 0 {
            check(libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            for (from, to) in setup.binds {
                check(libc::mount(
                    from.as_ptr(),
                    to.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ))?;
                check(libc::mount(
                    std::ptr::null(),
                    to.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID,
                    std::ptr::null(),
                ))?;
            }
        }
        for &(resource, value) in setup.rlimits {
            let limit = libc::rlimit {
                rlim_cur: value,
                rlim_max: value,
            };
            check(libc::setrlimit(resource, &limit))?;
        }
        if let Some(id) = setup.drop_to {
            check(libc::setgroups(0, std::ptr::null()))?;
            check(libc::setgid(id))?;
            check(libc::setuid(id))?;
        }
        // Set after the uid change, which clears it.
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL))?;
        check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
        if let Some(ruleset) = setup.ruleset {
            ruleset.enforce_in_child()?;
        }
        for program in setup.filters.unwrap_or_default() {
            seccompiler::apply_filter(program).map_err(|_| std::io::Error::last_os_error())?;
        }
        // Last: the Landlock ruleset's descriptor (the parent's, inherited) may be 3 itself.
        if let Some(fd) = setup.secret_fd {
            check(libc::dup2(fd, 3))?;
        }
    }
    Ok(())
}

/// Writes `bytes` to a /proc file with raw system calls (no allocation).
unsafe fn write_file(path: &std::ffi::CStr, bytes: &[u8]) -> std::io::Result<()> {
    // SAFETY: valid path and buffer.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        check(fd)?;
        let written = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        libc::close(fd);
        if written != bytes.len() as isize {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn c_path(path: &Path) -> std::io::Result<CString> {
    CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| std::io::Error::other("path with a NUL byte"))
}

fn chown(path: &Path, id: u32) -> std::io::Result<()> {
    let c = c_path(path)?;
    // SAFETY: valid path.
    check(unsafe { libc::chown(c.as_ptr(), id, id) })
}

/// `fd` moved to a number ≥ 10 (close-on-exec), so the child's `dup2(…, 3)` cannot clobber it
/// and it is never 3 itself.
fn high_fd(fd: OwnedFd) -> std::io::Result<OwnedFd> {
    // SAFETY: duplicating an open descriptor.
    let high = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
    check(high)?;
    // SAFETY: freshly duplicated.
    Ok(unsafe { OwnedFd::from_raw_fd(high) })
}

/// A pipe whose read end (returned) holds `bytes`; the write end is closed.
fn secret_pipe(bytes: &[u8]) -> std::io::Result<OwnedFd> {
    let mut fds = [0; 2];
    // SAFETY: a valid array of two descriptors.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both were just created.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: valid descriptor and buffer; a pipe holds far more than a nonce.
    let written = unsafe { libc::write(write.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
    if written != bytes.len() as isize {
        return Err(std::io::Error::last_os_error());
    }
    high_fd(read)
}

fn kill_group(pgid: i32) {
    // SAFETY: signalling a process group we created; ESRCH is fine.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
        libc::kill(pgid, libc::SIGKILL);
    }
}

/// Kills every process running as `uid` (a run's own uid: nothing else uses it).
fn sweep_uid(uid: u32) {
    for _ in 0..3 {
        let mut found = false;
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            let owner = std::fs::read_to_string(entry.path().join("status"))
                .ok()
                .and_then(|status| {
                    status
                        .lines()
                        .find(|l| l.starts_with("Uid:"))
                        .and_then(|l| {
                            l.split_whitespace()
                                .nth(1)
                                .and_then(|u| u.parse::<u32>().ok())
                        })
                });
            if owner == Some(uid) {
                found = true;
                // SAFETY: signalling a process of the run's own uid.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        if !found {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
