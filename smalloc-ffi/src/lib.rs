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
//! `malloc_usable_size`, C23's `free_sized` and `free_aligned_sized`, and glibc's extras
//! `malloc_trim`, `mallinfo`, `mallinfo2`, `malloc_stats`, `mallopt` and `malloc_info` (answered
//! with smalloc's statistics, see the `extras` module); and, under the same names with a
//! `smalloc_` prefix, the same functions for programs that want to call smalloc explicitly
//! (declared in `include/smalloc.h`). The unprefixed names come from the default `interpose`
//! feature; without it the library only has the prefixed ones and never replaces malloc.
//!
//! # Where a pointer comes from
//!
//! `free` gets nothing but a pointer, and not every pointer a process frees came from smalloc:
//! the dynamic loader hands out memory from its own minimal allocator before smalloc is used,
//! and memory may come from glibc's malloc (code that calls `__libc_malloc`). smalloc's own blocks
//! are recognized by facts that hold for their whole life, never by what the memory map looked
//! like at some moment. Each pointer is sorted, cheapest test first:
//!
//! 1. inside smalloc's slab region: a slot, whose size class is in the address bits;
//! 2. in smalloc's registry of direct mappings (blocks over 128 MiB, aligned over 128 MiB, or
//!    made when the slabs were exhausted): a hash set of their addresses that the core keeps in
//!    its reservation, entered after the mapping is made and removed before it goes. The lookup
//!    reads only the registry, never memory next to the pointer;
//! 3. when the reservation was refused (fallback mode), a block of smalloc's fallback: glibc's
//!    malloc serves it, but smalloc put a 16-byte header before it (the distance to glibc's block,
//!    and a check word derived from the block's address), so it is known for smalloc's wherever
//!    glibc placed it;
//! 4. inside a region where the dynamic loader's start-up allocator puts its blocks: the loader's,
//!    never handed to anyone's `free` (it is simply left alone). These regions are read once from
//!    `/proc/self/maps` (the loader's image and the anonymous mappings), at the library's
//!    constructor or its first call, whichever comes first, and only when it is the process's
//!    allocator: before any code of the program has run, so that they hold nothing but the
//!    loader's and the libraries' own data, which stay mapped for the life of the process;
//! 5. anything else: glibc's, given back through `__libc_free`, `__libc_realloc` and glibc's
//!    own `malloc_usable_size`.
//!
//! Test 3 reads the 16 bytes before the pointer. They lie in the block's own page unless the
//! pointer starts a page; a page-aligned pointer could follow an unreadable guard page (the
//! loader's blocks can), so for those test 4 comes first, after which the page before is the
//! header of a glibc or fallback block.
//!
//! # Fallback
//!
//! If the OS refuses smalloc's 32 TiB address-space reservation (`ulimit -v`, strict
//! overcommit), smalloc sends every request to its fallback allocator, which here is glibc's
//! malloc reached through `__libc_malloc` and friends (never through `malloc`, which would be
//! this library again), with smalloc's header before each block. The program keeps working, on
//! glibc.
//!
//! # Rules every entry point keeps
//!
//! No entry point prints, panics, locks or allocates on smalloc's blocks (`malloc_stats` and
//! `malloc_info` print, as they must); failure is a null pointer with `errno = ENOMEM` (or an
//! error number returned, for `posix_memalign`). A call that succeeds leaves `errno` as it found
//! it, including the first call, which makes the reservation (and whose failed attempt, in
//! fallback mode, would otherwise leave `ENOMEM` behind). smalloc's per-thread state is a zero-initialized block of
//! initial-exec thread-local storage (reached without `__tls_get_addr`), and the destructor that
//! releases a thread's slab at exit is a pthread key's, which runs after the thread's C++ and
//! Rust thread-local destructors; allocating works at every point of a thread's life, exit
//! included. Blocks that are glibc's are handled by glibc's functions, with glibc's locks; and
//! `malloc_usable_size` of such a block, if asked before the library's constructor ran, first
//! looks glibc's function up with `dlsym`, which takes the loader's lock.

#![deny(missing_docs)]

// The library is Linux/glibc only: it forwards foreign pointers to glibc's entry points
// (`__libc_malloc` and friends), reads `/proc/self/maps` and uses glibc's `mallinfo2` layout.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
compile_error!(
    "smalloc-ffi (libsmalloc) supports Linux with glibc only (target_os = \"linux\", \
     target_env = \"gnu\"); on other targets use the Rust crate as a #[global_allocator]"
);

mod abi;
mod extras;
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
