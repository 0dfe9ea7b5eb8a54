//! # libsmalloc: smalloc behind the C allocator interface
//!
//! This crate builds `libsmalloc.so` and `libsmalloc.a`, which give every program (C, C++,
//! Python, anything that calls `malloc`) the smalloc allocator:
//!
//! ```sh
//! cargo build --release -p smalloc-ffi
//! LD_PRELOAD=$PWD/target/release/libsmalloc.so program args...
//! ```
//!
//! # What is exported
//!
//! The glibc-compatible allocation functions `malloc`, `free`, `calloc`, `realloc`,
//! `reallocarray`, `posix_memalign`, `aligned_alloc`, `memalign`, `valloc`, `pvalloc`,
//! `malloc_usable_size`, and C23's `free_sized` and `free_aligned_sized`; and, under the same names
//! with a `smalloc_` prefix, the same functions for programs that want to call smalloc explicitly
//! (declared in `include/smalloc.h`). The unprefixed names come from the default `interpose`
//! feature; without it the library only has the prefixed ones and never replaces malloc.
//!
//! # Where a pointer comes from
//!
//! `free` gets nothing but a pointer, and not every pointer a process frees came from smalloc:
//! the dynamic loader hands out memory from its own minimal allocator before smalloc is used,
//! and memory may come from glibc's malloc (when smalloc's reservation was refused, or from
//! code that calls `__libc_malloc`). Each pointer is sorted, cheapest test first:
//!
//! 1. inside smalloc's slab region: a slot, whose size class is in the address bits;
//! 2. inside a region that was already mapped when smalloc started (the loader's data and the
//!    anonymous mappings of the time, read once from `/proc/self/maps`): the loader's memory,
//!    which is never handed to anyone's `free` (it is simply left alone);
//! 3. page-aligned, with a mapped page before it holding smalloc's header (a check word derived
//!    from the address, and the mapping's length): one of smalloc's direct mappings, for blocks
//!    over 128 MiB, aligned over 128 MiB, or made when the slabs were exhausted;
//! 4. anything else: glibc's, given back through `__libc_free`, `__libc_realloc` and glibc's
//!    own `malloc_usable_size`.
//!
//! The order matters: test 3 reads the page before the pointer. `mincore` first confirms that
//! page is mapped, but a mapped page may still be unreadable (a guard page), and the only
//! page-aligned blocks that may sit right after such a page are the loader's, which test 2 has
//! already set aside.
//!
//! # Fallback
//!
//! If the OS refuses smalloc's 32 TiB address-space reservation (`ulimit -v`, strict
//! overcommit), smalloc sends every request to its fallback allocator, which here is glibc's
//! malloc reached through `__libc_malloc` and friends (never through `malloc`, which would be
//! this library again). The program keeps working, on glibc.
//!
//! # Rules every entry point keeps
//!
//! No entry point prints, panics, locks or allocates on smalloc's blocks; failure is a null
//! pointer with `errno = ENOMEM` (or an error number returned, for `posix_memalign`). `free`
//! leaves `errno` as it found it. smalloc's per-thread state is a zero-initialized block of
//! initial-exec thread-local storage (reached without `__tls_get_addr`), and the destructor that
//! releases a thread's slab at exit is a pthread key's, which runs after the thread's C++ and
//! Rust thread-local destructors; allocating works at every point of a thread's life, exit
//! included. Blocks that are glibc's are handled by glibc's functions, with glibc's locks; and
//! `malloc_usable_size` of such a block, if asked before the library's constructor ran, first
//! looks glibc's function up with `dlsym`, which takes the loader's lock.

#![deny(missing_docs)]
// The library is Linux/glibc only: it forwards foreign pointers to glibc's entry points. On any
// other target it compiles to nothing, so the workspace still builds there.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

mod abi;
mod glibc;
#[cfg(feature = "interpose")]
mod interpose;
mod origin;

pub use abi::*;
#[cfg(feature = "interpose")]
pub use interpose::*;

use smalloc_core::Smalloc;

/// The allocator behind every entry point, with glibc's malloc as its fallback.
static ALLOC: Smalloc<glibc::Glibc> = Smalloc::with_fallback(glibc::Glibc);
