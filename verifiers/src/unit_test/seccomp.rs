//! The seccomp filters, compiled by the `seccompiler` crate: the system calls no unit test
//! needs and that a hostile program would reach for — sockets, ptrace, mounts, namespaces,
//! kernel modules, keyrings, BPF, perf — fail with EPERM, `clone` with a namespace flag too,
//! `clone3` with ENOSYS (its flags are in memory a filter cannot read; the C library then
//! falls back to `clone`, whose flags it can), and everything else goes through. A foreign
//! architecture's system calls kill the process (seccompiler's architecture check).
//!
//! One thing seccompiler cannot say: "every x32 system call" (x86-64 numbers with bit 30 set,
//! which a filter written for x86-64 numbers would let through) — its rules match numbers
//! exactly. That is a three-instruction filter of our own, installed beside the compiled ones.
//!
//! The programs are compiled in the parent; the child only installs them (`seccomp(2)` on a
//! prepared program: no allocation between `fork` and `exec`).

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Failed with EPERM.
const DENIED: &[libc::c_long] = &[
    libc::SYS_socket,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_reboot,
    libc::SYS_sethostname,
    libc::SYS_setdomainname,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_keyctl,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_open_by_handle_at,
];

/// Namespace flags: `clone` with any of them is refused (unshare and setns already are).
const NAMESPACE_FLAGS: [libc::c_int; 7] = [
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWCGROUP,
];

/// The filters, in installation order; `None` on an architecture seccompiler has no table for.
// `i64::from` on system-call numbers: `c_long` is `i64` here but `i32` on 32-bit Linux, where
// this must still compile (and report the layer absent).
#[allow(clippy::useless_conversion)]
pub fn programs() -> Option<Vec<BpfProgram>> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).ok()?;
    let mut denied: BTreeMap<i64, Vec<SeccompRule>> = DENIED
        .iter()
        .map(|&nr| (i64::from(nr), Vec::new()))
        .collect();
    // `clone` whose flags (the low 32 bits of its first argument) hold any namespace flag:
    // one rule per flag, any of which matches.
    let clone_rules = NAMESPACE_FLAGS
        .iter()
        .map(|&flag| {
            let flag = flag as u32 as u64;
            let has_flag = SeccompCondition::new(
                0,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::MaskedEq(flag),
                flag,
            )?;
            SeccompRule::new(vec![has_flag])
        })
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    denied.insert(i64::from(libc::SYS_clone), clone_rules);
    let eperm = SeccompAction::Errno(libc::EPERM as u32);
    let compile = |rules, action| {
        let filter = SeccompFilter::new(rules, SeccompAction::Allow, action, arch).ok()?;
        BpfProgram::try_from(filter).ok()
    };
    let mut programs = vec![
        compile(denied, eperm)?,
        compile(
            BTreeMap::from([(i64::from(libc::SYS_clone3), Vec::new())]),
            SeccompAction::Errno(libc::ENOSYS as u32),
        )?,
    ];
    #[cfg(target_arch = "x86_64")]
    programs.push(no_x32());
    Some(programs)
}

/// x32 system calls carry bit 30 in their number: EPERM for all of them.
#[cfg(target_arch = "x86_64")]
fn no_x32() -> BpfProgram {
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const X32_BIT: u32 = 0x4000_0000;
    let op = |code, jt, jf, k| seccompiler::sock_filter { code, jt, jf, k };
    vec![
        op(LD_W_ABS, 0, 0, 0), // seccomp_data.nr
        op(JGE_K, 0, 1, X32_BIT),
        op(RET_K, 0, 0, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        op(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ]
}
