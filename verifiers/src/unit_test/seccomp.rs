//! The seccomp filter: a short classic-BPF program that fails the system calls no unit test
//! needs and that a hostile program would reach for — sockets, ptrace, mounts, namespaces,
//! kernel modules, keyrings, BPF, perf — with EPERM, and everything else through.

use libc::sock_filter;

const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;

/// `struct seccomp_data` offsets: nr, arch, args[0] (low half on little-endian).
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
const OFFSET_ARG0: u32 = 16;

/// x32 system calls carry this bit; they would bypass a filter written for x86-64 numbers.
#[cfg(target_arch = "x86_64")]
const X32_BIT: u32 = 0x4000_0000;

#[cfg(target_arch = "x86_64")]
const ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64

/// Failed with EPERM.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
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
const NAMESPACE_FLAGS: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWCGROUP) as u32;

fn op(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// The filter program, or `None` on an architecture we have no system-call table for.
pub fn program() -> Option<Vec<sock_filter>> {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        let mut p = vec![
            op(LD_W_ABS, OFFSET_ARCH),
            // A foreign architecture's numbers mean other calls: kill.
            jump(JEQ_K, ARCH, 1, 0),
            op(RET_K, RET_KILL_PROCESS),
            op(LD_W_ABS, OFFSET_NR),
        ];
        #[cfg(target_arch = "x86_64")]
        p.extend([
            jump(JGE_K, X32_BIT, 0, 1),
            op(RET_K, RET_ERRNO | libc::EPERM as u32),
        ]);
        for &nr in DENIED {
            p.extend([
                jump(JEQ_K, nr as u32, 0, 1),
                op(RET_K, RET_ERRNO | libc::EPERM as u32),
            ]);
        }
        // clone3 passes its flags in memory a filter cannot read: ENOSYS makes the C library
        // fall back to clone, whose flags it can.
        p.extend([
            jump(JEQ_K, libc::SYS_clone3 as u32, 0, 1),
            op(RET_K, RET_ERRNO | libc::ENOSYS as u32),
            jump(JEQ_K, libc::SYS_clone as u32, 0, 3),
            op(LD_W_ABS, OFFSET_ARG0),
            jump(JSET_K, NAMESPACE_FLAGS, 0, 1),
            op(RET_K, RET_ERRNO | libc::EPERM as u32),
            op(RET_K, RET_ALLOW),
        ]);
        Some(p)
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        None
    }
}
