//! Compiling a kernel for the CPU's widest vector unit, chosen when it runs.
//!
//! The crate is built for the baseline x86-64 target, whose vectors are SSE's four lanes and
//! which has no fused multiply-add: a kernel compiled for it runs at a quarter of the width an
//! AVX-512 CPU has. [`vectorised!`] compiles a kernel's body three times — for AVX-512, for
//! AVX2 with FMA, and for the baseline — and each call runs the widest the CPU supports
//! (`is_x86_feature_detected!` caches its answer). Other architectures run the body as
//! compiled.
//!
//! The three give the same bits: Rust never contracts `a·b + c` into one rounding or reorders
//! a sum on its own, so a wider vector does the same operations in the same order; a kernel
//! that wants a fused multiply-add says `mul_add`, which is one rounding everywhere (a library
//! call on a CPU without FMA, so slow there but exact).

/// Defines `fn name(args) -> ret` whose body is compiled per vector width, as the module
/// says. The body is an ordinary function's; arguments are plain names.
macro_rules! vectorised {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) -> $ret {
            #[inline(always)]
            fn body($($arg: $ty),*) -> $ret $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                fn avx512($($arg: $ty),*) -> $ret {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) -> $ret {
                    body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                {
                    // SAFETY: the CPU has the features `avx512` is compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has the features `avx2` is compiled for.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

pub(super) use vectorised;
