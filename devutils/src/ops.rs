//! A small language of allocator operations, and interpreters that run it against an allocator
//! while checking every result against a model.
//!
//! The same [`Op`] values drive three things: property tests (the strategies behind the
//! `proptest` feature), fuzz targets (which decode them from the fuzzer's bytes with
//! [`decode_ops`]), and the stable-Rust replay of those targets. Both sources go through one
//! decoder, [`Op::decode`], which turns [`OP_BYTES`] bytes into an op: proptest draws the bytes
//! and shrinks them towards zero, which shrinks sizes, alignments and indices towards small ones.
//!
//! # What is checked
//!
//! [`Checker`] runs ops through [`core::alloc::GlobalAlloc`] (smalloc, `std::alloc::System`,
//! the process's global allocator through [`RustGlobal`], anything else); [`CChecker`] runs them
//! through the C allocation functions ([`CAbi`]: smalloc's `smalloc_` functions, or the C
//! library's own). Both keep a model of the live blocks and check, after every call:
//!
//! * no two live blocks overlap (the whole usable size of each, when the allocator can say it);
//! * every block is aligned as asked, and its usable size is at least the size asked for;
//! * every block keeps what was written into it, through `realloc` too (up to the smaller size),
//!   and until it is freed: each block holds a byte pattern derived from a seed of its own,
//!   checked whole for blocks up to [`CHECK_WHOLE`] bytes and at a fixed sample of windows (the
//!   first and last 4 KiB, and 256 windows of 64 bytes in between) for bigger ones, so that a
//!   256 MiB block costs a few hundred page faults;
//! * zeroed allocations read as zero (over the same windows);
//! * requests that cannot be served fail the way they must (null; for the C functions `errno`
//!   `ENOMEM` or `EINVAL`, or the error number `posix_memalign` returns, as glibc 2.36 does), and
//!   a failed `realloc` leaves the block as it was.
//!
//! A failed check is returned as `Err` with a readable message naming the step and the op, never
//! a panic deep inside, so that proptest can shrink the failing sequence. After a failure the
//! live blocks are left allocated: the allocator may be in no state to take them back.
//!
//! # Sizes, alignments and costs
//!
//! Sizes cover 0 to 8 bytes, both sides of every class boundary of smalloc ([`SLOT_SIZES`]),
//! arbitrary sizes up to 1 MiB, and a few direct mappings ([`DIRECT_SIZES`], over 128 MiB).
//! Alignments are powers of two from 1 to 256 MiB ([`ALIGNS`]). [`Call`] ops pass raw arguments
//! to the C functions: sizes near `usize::MAX` and `PTRDIFF_MAX`, products that overflow,
//! alignments that are not powers of two. A request of more than 2^47 bytes (or aligned to that)
//! cannot be had on any machine and must fail; one up to [`MUST_SUCCEED`] bytes must succeed;
//! in between (2 GiB, 4 GiB, ...) either is accepted, and a block obtained is freed at once.
//! Requests that would take the live total over the checker's budget are skipped.
//!
//! Ops that an interface cannot express are skipped and counted in [`Stats::skipped`]: zero
//! sizes and non-power-of-two alignments through `GlobalAlloc` (whose contract forbids them),
//! an index into an empty set of blocks.

use core::alloc::GlobalAlloc;
use std::path::Path;

use rand::{Rng, SeedableRng, rngs::StdRng};

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod c_abi;
mod global_alloc;
mod model;
#[cfg(feature = "proptest")]
mod strategies;
#[cfg(test)]
mod tests;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub use c_abi::{CAbi, CChecker};
pub use global_alloc::{Checker, RustGlobal, Schedule, UsableSize};
pub use model::{CHECK_WHOLE, Stats};

// ------------------------------------------------------------------ sizes and alignments

/// The largest slot of smalloc's size classes: bigger blocks get a mapping of their own.
pub const LARGEST_SLOT: usize = 128 << 20;

/// Every slot size of smalloc's size classes, smallest first: 8, 16, 24, 32, 48, 64, 96, 128,
/// ... (two per power of two), up to [`LARGEST_SLOT`].
pub const SLOT_SIZES: [usize; 48] = {
    let mut t = [8; 48];
    let mut i = 1;
    while i < 48 {
        // Classes 8 (16 bytes) to 54 (128 MiB): even ones are powers of two, odd ones three
        // quarters of the next.
        let sc = i + 7;
        t[i] = if sc % 2 == 0 {
            1 << (sc / 2)
        } else {
            3 << (sc / 2 - 1)
        };
        i += 1;
    }
    t
};

/// Sizes of blocks that smalloc serves with direct mappings: just over the largest slot, a page
/// over it, an odd size in between, and 256 MiB.
pub const DIRECT_SIZES: [usize; 4] = [
    LARGEST_SLOT + 1,
    LARGEST_SLOT + 4096,
    (160 << 20) + 3,
    256 << 20,
];

/// Alignments of [`Op::Alloc`] and [`Op::AllocZeroed`], indexed by a byte: mostly small, a few
/// pages and huge pages, and one that no slot has (256 MiB, a direct mapping).
#[rustfmt::skip]
pub const ALIGNS: [usize; 32] = [
    1, 1, 1, 1, 1, 1, 1, 1,
    2, 4, 8, 8, 8, 8, 8, 8,
    16, 16, 16, 16, 32, 64, 128, 256,
    512, 1024, 4096, 4096, 64 << 10, 2 << 20, 2 << 20, 256 << 20,
];

/// `PTRDIFF_MAX`: C's allocation functions refuse any size above it.
pub const PTRDIFF_MAX: usize = isize::MAX as usize;

/// Size arguments of [`Call`] ops: some ordinary ones (which also make calloc products that
/// fit), 2 and 4 GiB (which a machine may or may not grant), and sizes no machine can grant:
/// around 2^47, `PTRDIFF_MAX` and `usize::MAX`, and factors whose products overflow.
#[rustfmt::skip]
pub const HOSTILE_SIZES: [usize; 32] = [
    0, 1, 3, 8, 16, 24, 100, 4096, 1 << 20, LARGEST_SLOT + 1,
    1 << 31, (1 << 32) - 1, 1 << 32, (1 << 32) + 1,
    1 << 46, 1 << 47, 1 << 62, 1 << 63,
    PTRDIFF_MAX - 4095, PTRDIFF_MAX - 31, PTRDIFF_MAX - 1, PTRDIFF_MAX, PTRDIFF_MAX + 1,
    PTRDIFF_MAX + 2,
    usize::MAX - 4095, usize::MAX - 32, usize::MAX - 16, usize::MAX - 15, usize::MAX - 8,
    usize::MAX - 1, usize::MAX, usize::MAX / 3,
];

/// Alignment arguments of [`Call`] ops: zero, powers of two that are too small for
/// `posix_memalign` or too big to be had, values that are not powers of two (which `memalign`
/// rounds up and `posix_memalign` refuses), and values above `SIZE_MAX / 2 + 1` (refused by all).
#[rustfmt::skip]
pub const HOSTILE_ALIGNS: [usize; 16] = [
    0, 1, 3, 8, 16, 24, 32, 48, 100, 4096, 4097, 2 << 20,
    1 << 62, 1 << 63, (1 << 63) + 1, usize::MAX,
];

/// Requests (size plus alignment) up to this many bytes must succeed.
pub const MUST_SUCCEED: usize = 1 << 30;

/// Requests of this many bytes or more, or aligned to this much, cannot succeed on any machine:
/// user space on x86-64 and AArch64 Linux is at most 2^47 bytes (unless a program asks for more
/// with address hints, which allocators do not).
pub const IMPOSSIBLE: usize = 1 << 47;

/// What a request of `size` bytes aligned to `align` must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Give a block.
    Succeed,
    /// Fail.
    Fail,
    /// Either (a block obtained is freed at once).
    Either,
}

fn expect(size: usize, align: usize) -> Expect {
    if size >= IMPOSSIBLE || align >= IMPOSSIBLE {
        Expect::Fail
    } else if size + align <= MUST_SUCCEED {
        Expect::Succeed
    } else {
        Expect::Either
    }
}

/// A size from a category byte and a parameter: the decoder's whole size domain.
fn size_from(category: u8, param: u16) -> usize {
    let p = param as usize;
    match category % 16 {
        // 0 to 8 bytes.
        0..=3 => p % 9,
        // A slot size, one byte less, or one more.
        4..=9 => {
            let slot = SLOT_SIZES[p % SLOT_SIZES.len()];
            match p / SLOT_SIZES.len() % 3 {
                0 => slot,
                1 => slot - 1,
                _ => slot + 1,
            }
        }
        10..=12 => 1 + p % 4096,
        // Up to 1 MiB, not only multiples of 16.
        13 | 14 => 1 + p * 16 + p % 16,
        _ => DIRECT_SIZES[p % DIRECT_SIZES.len()],
    }
}

// ------------------------------------------------------------------------------ the ops

/// Number of bytes [`Op::decode`] turns into one op.
pub const OP_BYTES: usize = 8;

/// One operation on an allocator.
///
/// Blocks are referred to by `index`: the position, modulo their number, among the blocks the
/// executing thread allocated and still holds, oldest first (an op on an empty set is skipped;
/// a resized block keeps its position; see [`Op::Send`] for blocks from other threads).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Allocate `size` bytes aligned to `align` (a power of two). Through the C functions:
    /// `malloc` for alignments up to 16, otherwise `posix_memalign`, `aligned_alloc` or
    /// `memalign` in turn.
    Alloc {
        /// Bytes.
        size: usize,
        /// Alignment, a power of two.
        align: usize,
    },
    /// Allocate `size` zeroed bytes aligned to `align`. Through the C functions: `calloc` (whose
    /// blocks are 16-byte aligned), with the size split into two factors in turn.
    AllocZeroed {
        /// Bytes.
        size: usize,
        /// Alignment, a power of two.
        align: usize,
    },
    /// Resize a block to `new_size` bytes. Through the C functions: `realloc` or
    /// `reallocarray` in turn; a size of 0 frees the block there, as glibc does.
    Realloc {
        /// Which block.
        index: usize,
        /// The new size.
        new_size: usize,
    },
    /// Free a block.
    Free {
        /// Which block.
        index: usize,
    },
    /// Hand a block to thread `to` (modulo the number of threads), which does `then` with it
    /// before its next step (or at the end). A block it resized stays with it until the end,
    /// apart from the blocks its own ops pick by index, so that what an index picks never
    /// depends on when blocks arrive. In a single-thread run, or to the executing thread itself,
    /// `then` happens at once and a resized block stays among those the thread's ops pick.
    Send {
        /// Which block.
        index: usize,
        /// The receiving thread.
        to: usize,
        /// What the receiver does with it.
        then: Then,
    },
    /// A C allocation call with raw arguments (through `GlobalAlloc`: what it can express).
    Call(Call),
}

/// What a thread does with a block another thread handed it ([`Op::Send`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Then {
    /// Free it.
    Free,
    /// Resize it, and keep it.
    Realloc {
        /// The new size.
        new_size: usize,
    },
}

/// A call of a C allocation function with raw, possibly hostile, arguments. glibc's results are
/// the reference; through `GlobalAlloc` the call becomes the equivalent `Layout` request when
/// there is one (a power-of-two alignment, a non-zero size that fits `isize`), and is skipped
/// otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// `malloc(size)`.
    Malloc {
        /// Bytes.
        size: usize,
    },
    /// `calloc(n, size)`.
    Calloc {
        /// Number of elements.
        n: usize,
        /// Bytes of each.
        size: usize,
    },
    /// `realloc(block, size)` (size 0 frees the block).
    Realloc {
        /// Which block.
        index: usize,
        /// The new size.
        size: usize,
    },
    /// `reallocarray(block, n, size)`.
    ReallocArray {
        /// Which block.
        index: usize,
        /// Number of elements.
        n: usize,
        /// Bytes of each.
        size: usize,
    },
    /// `realloc(NULL, size)`, which is `malloc(size)`.
    ReallocNull {
        /// Bytes.
        size: usize,
    },
    /// `posix_memalign(&p, align, size)`.
    PosixMemalign {
        /// Alignment, anything.
        align: usize,
        /// Bytes.
        size: usize,
    },
    /// `aligned_alloc(align, size)`.
    AlignedAlloc {
        /// Alignment, anything.
        align: usize,
        /// Bytes.
        size: usize,
    },
    /// `memalign(align, size)`.
    Memalign {
        /// Alignment, anything.
        align: usize,
        /// Bytes.
        size: usize,
    },
    /// `free(NULL)`, which does nothing (and must leave `errno` alone).
    FreeNull,
}

/// An op and the thread that executes it, for multi-thread runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// The executing thread.
    pub thread: usize,
    /// The op.
    pub op: Op,
}

impl Op {
    /// The op that `b` encodes. Every byte string is some op. Byte 0 picks the kind; bytes 1 to
    /// 3 the size (a category and a parameter); byte 4 the alignment; byte 5 the block; byte 7
    /// the receiver of a [`Op::Send`] (its low 7 bits) and what it does (the top bit). Byte 6
    /// is the thread of a [`Step`].
    pub fn decode(b: &[u8; OP_BYTES]) -> Op {
        let size = size_from(b[1], u16::from_le_bytes([b[2], b[3]]));
        let align = ALIGNS[b[4] as usize % ALIGNS.len()];
        let index = b[5] as usize;
        match b[0] % 32 {
            0..=8 => Op::Alloc { size, align },
            9..=11 => Op::AllocZeroed { size, align },
            12..=19 => Op::Realloc {
                index,
                new_size: size,
            },
            20..=26 => Op::Free { index },
            27..=29 => Op::Send {
                index,
                to: (b[7] & 0x7f) as usize,
                then: if b[7] & 0x80 == 0 {
                    Then::Free
                } else {
                    Then::Realloc { new_size: size }
                },
            },
            _ => Op::Call(Call::decode(b)),
        }
    }
}

impl Call {
    /// The call that `b` encodes (byte 0 having chosen a call): byte 1 picks the function,
    /// bytes 2 and 3 its size arguments from [`HOSTILE_SIZES`], byte 4 its alignment from
    /// [`HOSTILE_ALIGNS`], byte 5 the block.
    fn decode(b: &[u8; OP_BYTES]) -> Call {
        let h = |x: u8| HOSTILE_SIZES[x as usize % HOSTILE_SIZES.len()];
        let align = HOSTILE_ALIGNS[b[4] as usize % HOSTILE_ALIGNS.len()];
        let index = b[5] as usize;
        match b[1] % 9 {
            0 => Call::Malloc { size: h(b[2]) },
            1 => Call::Calloc {
                n: h(b[2]),
                size: h(b[3]),
            },
            2 => Call::Realloc {
                index,
                size: h(b[2]),
            },
            3 => Call::ReallocArray {
                index,
                n: h(b[2]),
                size: h(b[3]),
            },
            4 => Call::ReallocNull { size: h(b[2]) },
            5 => Call::PosixMemalign {
                align,
                size: h(b[2]),
            },
            6 => Call::AlignedAlloc {
                align,
                size: h(b[2]),
            },
            7 => Call::Memalign {
                align,
                size: h(b[2]),
            },
            _ => Call::FreeNull,
        }
    }
}

impl Step {
    /// The step that `b` encodes for a run with `threads` threads: [`Op::decode`], executed by
    /// thread `b[6] % threads`.
    pub fn decode(b: &[u8; OP_BYTES], threads: usize) -> Step {
        Step {
            thread: b[6] as usize % threads.max(1),
            op: Op::decode(b),
        }
    }
}

/// The ops that `data` encodes, [`OP_BYTES`] bytes each (a shorter tail is ignored).
pub fn decode_ops(data: &[u8]) -> Vec<Op> {
    data.chunks_exact(OP_BYTES)
        .map(|c| Op::decode(c.try_into().expect("a chunk of OP_BYTES")))
        .collect()
}

/// The steps that `data` encodes for `threads` threads, [`OP_BYTES`] bytes each.
pub fn decode_steps(data: &[u8], threads: usize) -> Vec<Step> {
    data.chunks_exact(OP_BYTES)
        .map(|c| Step::decode(c.try_into().expect("a chunk of OP_BYTES"), threads))
        .collect()
}

#[cfg(feature = "proptest")]
pub use strategies::{
    config as proptest_config, op as op_strategy, ops as ops_strategy, steps as steps_strategy,
};

// ------------------------------------------------------------------------- fuzzing

/// The most ops a fuzz input is decoded into, so that one input takes little time.
pub const FUZZ_MAX_OPS: usize = 256;

/// The Rust API fuzz target's body: the first byte picks a single-thread run, or a lockstep or
/// concurrent run on 2 to 4 threads; the rest are ops (at most [`FUZZ_MAX_OPS`]).
pub fn fuzz_rust_api<A: GlobalAlloc + Sync + ?Sized>(
    checker: &Checker<'_, A>,
    data: &[u8],
) -> Result<Stats, String> {
    let Some((&mode, rest)) = data.split_first() else {
        return Ok(Stats::default());
    };
    let rest = &rest[..rest.len().min(FUZZ_MAX_OPS * OP_BYTES)];
    let threads = 2 + (mode as usize / 4) % 3;
    match mode % 4 {
        0 | 1 => checker.run(&decode_ops(rest)),
        2 => checker.run_threads(threads, &decode_steps(rest, threads), Schedule::Lockstep),
        _ => checker.run_threads(threads, &decode_steps(rest, threads), Schedule::Concurrent),
    }
}

/// The C ABI fuzz target's body: the bytes are ops (at most [`FUZZ_MAX_OPS`]).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn fuzz_c_abi(checker: &CChecker<'_>, data: &[u8]) -> Result<Stats, String> {
    checker.run(&decode_ops(
        &data[..data.len().min(FUZZ_MAX_OPS * OP_BYTES)],
    ))
}

/// Every [`Call`] with every combination of its arguments from [`HOSTILE_SIZES`] and
/// [`HOSTILE_ALIGNS`], each after an allocation that gives the resizing calls a block.
pub fn hostile_calls() -> Vec<[Op; 2]> {
    let sizes = HOSTILE_SIZES.len() as u8;
    let mut all = Vec::new();
    for function in 0..9u8 {
        let factors = if matches!(function, 1 | 3) { sizes } else { 1 };
        let aligns = if matches!(function, 5..=7) {
            HOSTILE_ALIGNS.len() as u8
        } else {
            1
        };
        for size in 0..sizes {
            for factor in 0..factors {
                for align in 0..aligns {
                    let call = Op::decode(&[31, function, size, factor, align, 0, 0, 0]);
                    all.push([Op::Alloc { size: 40, align: 8 }, call]);
                }
            }
        }
    }
    all
}

/// Inputs for replaying a fuzz target without the fuzzer: every file in `corpus` (if it
/// exists), then `count` pseudo-random byte strings from `seed` (one mode byte and up to 64
/// ops), each with a name to report it by.
pub fn replay_inputs(corpus: &Path, count: usize, seed: u64) -> Vec<(String, Vec<u8>)> {
    let mut inputs = Vec::new();
    if let Ok(dir) = std::fs::read_dir(corpus) {
        let mut files: Vec<_> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for f in files {
            if let Ok(bytes) = std::fs::read(&f) {
                inputs.push((f.display().to_string(), bytes));
            }
        }
    }
    let mut rng = StdRng::seed_from_u64(seed);
    for i in 0..count {
        let len = 1 + OP_BYTES * rng.gen_range(0..=64);
        let bytes = (0..len).map(|_| rng.r#gen::<u8>()).collect();
        inputs.push((format!("random input {i} of seed {seed}"), bytes));
    }
    inputs
}

/// Runs `run` on every input of [`replay_inputs`] and sums what the runs report; the first
/// failure panics with the input's name, the error and the input in hex (to paste into a file of
/// the corpus and replay alone).
pub fn replay(
    corpus: &Path,
    count: usize,
    seed: u64,
    mut run: impl FnMut(&[u8]) -> Result<Stats, String>,
) -> Stats {
    let mut total = Stats::default();
    for (name, input) in replay_inputs(corpus, count, seed) {
        match run(&input) {
            Ok(stats) => total.add(&stats),
            Err(e) => {
                let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
                panic!("{name}: {e}\ninput: {hex}");
            }
        }
    }
    total
}
