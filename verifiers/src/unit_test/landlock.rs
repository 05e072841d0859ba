//! Landlock (Linux ≥ 5.13): an unprivileged process restricts its own file-system access —
//! read and execute below a few system directories, everything below its own temporary
//! directory, nothing else — and, with ABI ≥ 4, all TCP binds and connects, and with ABI ≥ 6,
//! signals and abstract sockets leaving the sandbox.
//!
//! Rules are prepared in the parent (paths opened `O_PATH`), so the child only makes system
//! calls between `fork` and `exec`.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

const CREATE_RULESET_VERSION: u32 = 1;
const RULE_PATH_BENEATH: u32 = 1;

const EXECUTE: u64 = 1 << 0;
const WRITE_FILE: u64 = 1 << 1;
const READ_FILE: u64 = 1 << 2;
const READ_DIR: u64 = 1 << 3;
const TRUNCATE: u64 = 1 << 14;
const IOCTL_DEV: u64 = 1 << 15;
/// Read-only access: execute, read files, list directories.
pub const READ: u64 = EXECUTE | READ_FILE | READ_DIR;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneath {
    allowed_access: u64,
    parent_fd: i32,
}

/// The kernel's Landlock ABI version, or `None` when Landlock is absent or disabled.
pub fn abi() -> Option<u32> {
    // SAFETY: the documented version query: no pointer is read.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    (version > 0).then_some(version as u32)
}

/// Every file-system right the ABI knows: what a rule for the writable directory grants.
fn all_fs(abi: u32) -> u64 {
    let mut rights = (1 << 13) - 1; // ABI 1: execute … make_sym
    if abi >= 2 {
        rights |= 1 << 13; // refer
    }
    if abi >= 3 {
        rights |= 1 << 14; // truncate
    }
    if abi >= 5 {
        rights |= 1 << 15; // ioctl_dev
    }
    rights
}

/// A ruleset ready to be enforced in a child.
pub struct Ruleset {
    ruleset: OwnedFd,
    /// The opened paths must stay open until the child has added its rules.
    rules: Vec<(PathBeneathBox, OwnedFd)>,
}

/// A rule's attribute, at a stable address.
struct PathBeneathBox(Box<PathBeneath>);

impl Ruleset {
    /// Read access below `read` (paths that do not exist are skipped), full access below
    /// `write`; everything else denied, TCP denied (ABI ≥ 4), signals and abstract sockets
    /// scoped to the sandbox (ABI ≥ 6). The rules are added here, in the parent; the child only
    /// calls [`Ruleset::enforce_in_child`].
    pub fn new(abi: u32, read: &[&Path], write: &Path) -> std::io::Result<Ruleset> {
        let attr = RulesetAttr {
            handled_access_fs: all_fs(abi),
            handled_access_net: if abi >= 4 { 0b11 } else { 0 }, // bind_tcp | connect_tcp
            scoped: if abi >= 6 { 0b11 } else { 0 },             // abstract unix socket | signal
        };
        let size = match abi {
            6.. => 24,
            4..=5 => 16,
            _ => 8,
        };
        // SAFETY: `attr` is a valid ruleset attribute of at least `size` bytes.
        let fd = unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, &attr, size, 0u32) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the kernel just returned this descriptor to us.
        let ruleset = super::sandbox::high_fd(unsafe { OwnedFd::from_raw_fd(fd as i32) })?;
        let mut set = Ruleset {
            ruleset,
            rules: Vec::new(),
        };
        for path in read {
            if path.exists() {
                set.add(path, READ & all_fs(abi))?;
            }
        }
        set.add(write, all_fs(abi))?;
        Ok(set)
    }

    fn add(&mut self, path: &Path, access: u64) -> std::io::Result<()> {
        // Directory rights (list, make, remove) are refused on a file's rule.
        let access = if path.is_dir() {
            access
        } else {
            access & (EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV)
        };
        let c = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| std::io::Error::other("path with a NUL byte"))?;
        // SAFETY: a valid C string; O_PATH opens without reading.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: freshly opened.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let rule = PathBeneathBox(Box::new(PathBeneath {
            allowed_access: access,
            parent_fd: fd.as_raw_fd(),
        }));
        // SAFETY: a valid rule attribute; both descriptors are open.
        let added = unsafe {
            libc::syscall(
                libc::SYS_landlock_add_rule,
                self.ruleset.as_raw_fd(),
                RULE_PATH_BENEATH,
                &*rule.0 as *const PathBeneath,
                0u32,
            )
        };
        if added < 0 {
            return Err(std::io::Error::last_os_error());
        }
        self.rules.push((rule, fd));
        Ok(())
    }

    /// Restricts the calling process (after `PR_SET_NO_NEW_PRIVS`). Only a system call: safe
    /// between `fork` and `exec`.
    pub fn enforce_in_child(&self) -> std::io::Result<()> {
        // SAFETY: the ruleset descriptor is open (inherited across fork).
        let r = unsafe {
            libc::syscall(
                libc::SYS_landlock_restrict_self,
                self.ruleset.as_raw_fd(),
                0u32,
            )
        };
        if r < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}
