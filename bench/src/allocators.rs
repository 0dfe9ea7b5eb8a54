//! The allocators under test: one `static` instance of each, called directly through
//! [`GlobalAlloc`](std::alloc::GlobalAlloc). None of them is the process's global allocator (that stays the system
//! allocator), so the harness's own bookkeeping never lands in the heap being measured.
//!
//! Workloads are generic over `A: GlobalAlloc`, and [`with_allocator!`](crate::with_allocator)
//! picks the instance for an [`AllocatorId`], so every allocator gets its own monomorphized,
//! inlined copy of each workload: no dynamic dispatch sits between the loop and the allocator.

use std::alloc::System;
use std::fmt;

/// smalloc, this workspace's allocator. One instance only: each reserves 32 TiB of address space,
/// and upstream smalloc's region must fit next to it (see [`UPSTREAM`]).
pub static SMALLOC: smalloc_core::Smalloc = smalloc_core::Smalloc::new();

/// The system allocator (glibc's `malloc` on Linux).
pub static SYSTEM: System = System;

/// mimalloc, built with prefixed symbols so it does not replace the process's `malloc`.
pub static MIMALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// jemalloc, built with prefixed symbols so it does not replace the process's `malloc`.
pub static JEMALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Upstream smalloc as published on crates.io (`smmalloc`), the design this one started from.
/// It allows a single instance per process (its thread-local slab pointer embeds the instance's
/// base) and reserves about 64 TiB on first use; next to our 32 TiB that still fits in the 128 TiB
/// of a 47-bit address space.
pub static UPSTREAM: smmalloc::Smalloc = smmalloc::Smalloc::new();

/// snmalloc (needs cmake and a C++ compiler to build; feature `snmalloc`).
#[cfg(feature = "snmalloc")]
pub static SNMALLOC: snmalloc_rs::SnMalloc = snmalloc_rs::SnMalloc;

/// rpmalloc (feature `rpmalloc`).
#[cfg(feature = "rpmalloc")]
pub static RPMALLOC: rpmalloc::RpMalloc = rpmalloc::RpMalloc;

/// Names one allocator under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AllocatorId {
    /// This workspace's smalloc.
    Smalloc,
    /// `std::alloc::System` (glibc).
    System,
    /// mimalloc.
    Mimalloc,
    /// jemalloc.
    Jemalloc,
    /// Upstream smalloc (`smmalloc` on crates.io).
    Upstream,
    /// snmalloc.
    #[cfg(feature = "snmalloc")]
    Snmalloc,
    /// rpmalloc.
    #[cfg(feature = "rpmalloc")]
    Rpmalloc,
}

impl AllocatorId {
    /// Every allocator compiled in, smalloc first.
    pub fn all() -> Vec<AllocatorId> {
        // Mutable only when an optional peer is compiled in.
        #[cfg_attr(
            not(any(feature = "snmalloc", feature = "rpmalloc")),
            allow(unused_mut)
        )]
        let mut v = vec![
            AllocatorId::Smalloc,
            AllocatorId::System,
            AllocatorId::Mimalloc,
            AllocatorId::Jemalloc,
            AllocatorId::Upstream,
        ];
        #[cfg(feature = "snmalloc")]
        v.push(AllocatorId::Snmalloc);
        #[cfg(feature = "rpmalloc")]
        v.push(AllocatorId::Rpmalloc);
        v
    }

    /// The short name used on the command line and in every report.
    pub fn name(self) -> &'static str {
        match self {
            AllocatorId::Smalloc => "smalloc",
            AllocatorId::System => "system",
            AllocatorId::Mimalloc => "mimalloc",
            AllocatorId::Jemalloc => "jemalloc",
            AllocatorId::Upstream => "upstream",
            #[cfg(feature = "snmalloc")]
            AllocatorId::Snmalloc => "snmalloc",
            #[cfg(feature = "rpmalloc")]
            AllocatorId::Rpmalloc => "rpmalloc",
        }
    }

    /// What the short name stands for, for the report's legend.
    pub fn description(self) -> &'static str {
        match self {
            AllocatorId::Smalloc => "this workspace's smalloc",
            AllocatorId::System => "std::alloc::System (glibc malloc)",
            AllocatorId::Mimalloc => "mimalloc (crate mimalloc)",
            AllocatorId::Jemalloc => "jemalloc (crate tikv-jemallocator)",
            AllocatorId::Upstream => "upstream smalloc (crate smmalloc 7.x)",
            #[cfg(feature = "snmalloc")]
            AllocatorId::Snmalloc => "snmalloc (crate snmalloc-rs)",
            #[cfg(feature = "rpmalloc")]
            AllocatorId::Rpmalloc => "rpmalloc (crate rpmalloc)",
        }
    }

    /// Asks the allocator to give the memory it holds free back to the OS now, as a program
    /// would between phases of work, and returns `true`; returns `false` for an allocator without
    /// such a call (upstream smalloc, snmalloc, rpmalloc).
    ///
    /// | allocator | call |
    /// | --- | --- |
    /// | smalloc | `Smalloc::trim` (the calling thread's slab and every slab no thread owns) |
    /// | system | glibc's `malloc_trim(0)` |
    /// | mimalloc | `mi_collect(true)` |
    /// | jemalloc | `mallctl("arena.<MALLCTL_ARENAS_ALL>.purge")`: every arena's dirty pages |
    pub fn trim(self) -> bool {
        match self {
            AllocatorId::Smalloc => {
                SMALLOC.trim();
                true
            }
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            // SAFETY: malloc_trim only releases free memory of glibc's heaps; any argument is
            // valid.
            AllocatorId::System => unsafe { libc::malloc_trim(0) >= 0 },
            AllocatorId::Mimalloc => {
                // SAFETY: mi_collect may be called at any time from any thread.
                unsafe { libmimalloc_sys::mi_collect(true) };
                true
            }
            AllocatorId::Jemalloc => {
                // jemalloc's MALLCTL_ARENAS_ALL: the index that names every arena at once.
                const PURGE_ALL: &[u8] = b"arena.4096.purge\0";
                // SAFETY: a NUL-terminated control name; "purge" reads and writes no value, so
                // every pointer is null and the length zero.
                let rc = unsafe {
                    tikv_jemalloc_sys::mallctl(
                        PURGE_ALL.as_ptr().cast(),
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                        0,
                    )
                };
                rc == 0
            }
            _ => false,
        }
    }

    /// Looks an allocator up by its short name.
    pub fn parse(name: &str) -> Option<AllocatorId> {
        AllocatorId::all().into_iter().find(|a| a.name() == name)
    }
}

impl fmt::Display for AllocatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Evaluates `$body` with `$a` bound to the `&'static` instance of allocator `$id`, monomorphized
/// once per allocator.
///
/// ```
/// use bench::{allocators::AllocatorId, with_allocator};
/// use std::alloc::{GlobalAlloc, Layout};
/// let ok = with_allocator!(AllocatorId::System, |a| unsafe {
///     let l = Layout::from_size_align(64, 8).unwrap();
///     let p = a.alloc(l);
///     let ok = !p.is_null();
///     a.dealloc(p, l);
///     ok
/// });
/// assert!(ok);
/// ```
#[macro_export]
macro_rules! with_allocator {
    ($id:expr, |$a:ident| $body:expr) => {{
        use $crate::allocators as __al;
        match $id {
            __al::AllocatorId::Smalloc => {
                let $a = &__al::SMALLOC;
                $body
            }
            __al::AllocatorId::System => {
                let $a = &__al::SYSTEM;
                $body
            }
            __al::AllocatorId::Mimalloc => {
                let $a = &__al::MIMALLOC;
                $body
            }
            __al::AllocatorId::Jemalloc => {
                let $a = &__al::JEMALLOC;
                $body
            }
            __al::AllocatorId::Upstream => {
                let $a = &__al::UPSTREAM;
                $body
            }
            #[cfg(feature = "snmalloc")]
            __al::AllocatorId::Snmalloc => {
                let $a = &__al::SNMALLOC;
                $body
            }
            #[cfg(feature = "rpmalloc")]
            __al::AllocatorId::Rpmalloc => {
                let $a = &__al::RPMALLOC;
                $body
            }
        }
    }};
}

/// Makes sure smalloc really serves from its own slabs: if the OS refused its reservation, it
/// would quietly hand every request to the system allocator and the report would compare glibc
/// with itself. Returns an error message in that case.
pub fn check_smalloc_reserved() -> Result<(), String> {
    SMALLOC.init();
    if SMALLOC.runs_under_valgrind() {
        Err(
            "smalloc runs under valgrind: it serves every call from the slow paths of its \
             valgrind region, so its numbers would not be those of its fast paths"
                .to_string(),
        )
    } else if SMALLOC.is_reserved() {
        Ok(())
    } else {
        Err(
            "smalloc could not reserve its address space (ulimit -v? strict overcommit? \
             valgrind?): it would silently fall back to the system allocator, so its numbers \
             would not be its own"
                .to_string(),
        )
    }
}

/// Whether a 64-byte block from the smalloc instance lies in its slabs (rather than in a direct
/// mapping or a block of the fallback allocator).
pub fn smalloc_serves_from_slabs() -> bool {
    use std::alloc::{GlobalAlloc, Layout};
    let l = Layout::new::<[u64; 8]>();
    // SAFETY: a non-zero layout; the block is freed at once with the same layout.
    let p = unsafe { SMALLOC.alloc(l) };
    if p.is_null() {
        return false;
    }
    let owned = SMALLOC
        .slab_range()
        .is_some_and(|r| r.contains(&(p as usize)));
    // SAFETY: p is the live block just allocated with l.
    unsafe { SMALLOC.dealloc(p, l) };
    owned
}
