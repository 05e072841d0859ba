//! glibc's `malloc`, set for tensor work.
//!
//! Every tensor operation allocates its output, most of them megabytes. With glibc's defaults
//! a freed block of that size goes back to the kernel (an `munmap`, or a trim of the heap top)
//! and the next operation's block is faulted in and zeroed again: on the benchmark workload
//! page faults and TLB shootdowns were a tenth of the profile. Keeping such blocks in the heap
//! made the update's forward 22% and forward + backward 17% faster (measured; see the README's
//! performance section). The cost is that memory freed during a step stays mapped for the
//! next one, which a training process reuses anyway.

/// Raises malloc's mmap threshold to its maximum (32 MiB: smaller blocks come from the heap
/// and are reused), its trim threshold to 2 GiB (the heap top is not handed back after each
/// step) and its top pad to 64 MiB, a thread arena's heap size. The last is for the worker
/// threads: glibc gives each its own arena, a chain of 64 MiB heaps, and deletes a heap
/// (`munmap`) the moment it is wholly free unless the top pad exceeds what deleting it would
/// return. A shard's tensors overflow its first heap, so without the pad every step created
/// and deleted about 150 heaps (`strace`: 1 330 `mmap`s of 128 MiB and 2 440 `munmap`s over a
/// benchmark run; 99 and 71 with it), each faulted in and zeroed again — page clearing and TLB
/// shootdowns were 15% of the profile. Process-wide and idempotent; a no-op where the C
/// library is not glibc.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only changes allocator parameters; all values are in range
            // (the mmap threshold's maximum on 64-bit glibc is 32 MiB).
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
                libc::mallopt(libc::M_TOP_PAD, 64 << 20);
            }
        });
    }
}
