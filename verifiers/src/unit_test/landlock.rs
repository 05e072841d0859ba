//! Landlock (Linux ≥ 5.13), through the `landlock` crate: an unprivileged process restricts
//! its own file-system access — read and execute below a few system directories, everything
//! below its own temporary directory, nothing else — and, where the kernel has them (ABI ≥ 4),
//! all TCP binds and connects, and (ABI ≥ 6) signals and abstract sockets leaving the sandbox.
//! Rights a kernel lacks are left out (the crate's best effort); a kernel without Landlock
//! fails the layer.
//!
//! The ruleset is built and its rules added in the parent (paths opened `O_PATH` there); the
//! child only duplicates the ruleset's descriptor and restricts itself: system calls, no
//! allocation, between `fork` and `exec`.

use std::path::Path;

use landlock::{
    ABI, Access, AccessFs, AccessNet, LandlockStatus, Ruleset, RulesetAttr, RulesetCreated,
    RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules,
};

/// The newest ABI whose rights the hostile suite has been run against (`tests/unit_test.rs`):
/// newer kernels enforce these, older ones what they know of them.
const TESTED: ABI = ABI::V6;

fn failed(error: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("landlock: {error}"))
}

fn ruleset() -> Result<Ruleset, landlock::RulesetError> {
    Ruleset::default()
        .handle_access(AccessFs::from_all(TESTED))?
        .handle_access(AccessNet::from_all(TESTED))?
        .scope(Scope::from_all(TESTED))
}

/// The kernel's Landlock ABI, or `None` when Landlock is absent or disabled. Learnt the way the
/// crate reports it: a throw-away thread restricts itself (Landlock and `no_new_privs` are
/// per-thread, so the rest of the process is untouched) and says what was enforced.
pub fn abi() -> Option<u32> {
    let status = std::thread::spawn(|| ruleset().ok()?.create().ok()?.restrict_self().ok())
        .join()
        .ok()??;
    match status.landlock {
        LandlockStatus::Available {
            kernel_abi: Some(newer),
            ..
        } => Some(newer as u32),
        LandlockStatus::Available { effective_abi, .. } => Some(effective_abi as u32),
        LandlockStatus::NotEnabled | LandlockStatus::NotImplemented => None,
    }
}

/// A ruleset ready to be enforced in a child.
pub struct Restriction(RulesetCreated);

impl Restriction {
    /// Read access below `read` (paths that do not exist are skipped), full access below
    /// `write`, everything else denied.
    pub fn new(read: &[&Path], write: &Path) -> std::io::Result<Restriction> {
        let created = ruleset()
            .and_then(|r| r.create())
            .and_then(|r| r.add_rules(path_beneath_rules(read, AccessFs::from_read(TESTED))))
            .and_then(|r| r.add_rules(path_beneath_rules([write], AccessFs::from_all(TESTED))))
            .map_err(failed)?;
        Ok(Restriction(created))
    }

    /// Restricts the calling process (the child, between `fork` and `exec`): a `dup` of the
    /// ruleset's descriptor, `PR_SET_NO_NEW_PRIVS` and `landlock_restrict_self`, with errors
    /// carried as the system call's errno so that nothing is allocated.
    pub fn enforce_in_child(&self) -> std::io::Result<()> {
        let status = self
            .0
            .try_clone()?
            .restrict_self()
            .map_err(|_| std::io::Error::last_os_error())?;
        if status.ruleset == RulesetStatus::NotEnforced {
            return Err(std::io::Error::from_raw_os_error(libc::ENOSYS));
        }
        Ok(())
    }
}
