//! Helpers every workload shares: layouts, checked allocation, and the writes and checks that
//! make a block "used" the way a program uses it.

use std::alloc::{GlobalAlloc, Layout};

use crate::rng::Rng;

/// Page stride used when touching big blocks: one write per page makes the kernel back each page
/// (so allocators that return memory to the OS pay to get it back), without turning the benchmark
/// into a `memset` benchmark.
pub const PAGE: usize = 4096;

/// The layout of a `size`-byte block aligned as Rust aligns most heap data (8 bytes).
#[inline(always)]
pub fn layout(size: usize) -> Layout {
    // Every size used here is at least 1 and far below isize::MAX, so this cannot fail.
    match Layout::from_size_align(size, 8) {
        Ok(l) => l,
        Err(_) => unreachable!("sizes in the workloads are small"),
    }
}

/// Allocates `l` from `a`, panicking on failure: a null from an allocator under test is a finding,
/// not something to time.
///
/// # Safety
/// `l` must have a non-zero size.
#[inline(always)]
pub unsafe fn alloc<A: GlobalAlloc>(a: &A, l: Layout) -> *mut u8 {
    // SAFETY: the caller guarantees a non-zero size.
    let p = unsafe { a.alloc(l) };
    if p.is_null() {
        oom(l);
    }
    p
}

#[cold]
#[inline(never)]
fn oom(l: Layout) -> ! {
    panic!("allocator returned null for {l:?}");
}

/// Writes `tag` over the first cache line of the block, one byte per page after that, and its last
/// byte: what [`check`] reads back.
///
/// # Safety
/// `p` must point to a live block of at least `size >= 1` bytes.
#[inline(always)]
pub unsafe fn touch(p: *mut u8, size: usize, tag: u8) {
    // SAFETY: every write stays inside the block of `size` bytes.
    unsafe {
        p.write_bytes(tag, size.min(64));
        let mut off = PAGE;
        while off < size {
            p.add(off).write(tag);
            off += PAGE;
        }
        p.add(size - 1).write(tag);
    }
}

/// Checks that the first and last bytes of a block still hold the `tag` that [`touch`] wrote,
/// panicking otherwise (another allocation overlapped it, or the allocator wrote into a live
/// block).
///
/// # Safety
/// `p` must point to a live block of at least `size >= 1` bytes written by [`touch`].
#[inline(always)]
pub unsafe fn check(p: *const u8, size: usize, tag: u8) {
    // SAFETY: both reads are inside the block.
    let (first, last) = unsafe { (p.read(), p.add(size - 1).read()) };
    if first != tag || last != tag {
        corrupted(p, size, tag, first, last);
    }
}

#[cold]
#[inline(never)]
fn corrupted(p: *const u8, size: usize, tag: u8, first: u8, last: u8) -> ! {
    panic!("block {p:p} of {size} B lost its contents: expected {tag}, found {first} / {last}");
}

/// A size from the mixed distribution: mostly small, as in real programs, with a long tail.
///
/// | share | sizes            |
/// |-------|------------------|
/// | 50 %  | 8 - 64 B         |
/// | 30 %  | 65 - 256 B       |
/// | 15 %  | 257 B - 4 KiB    |
/// | 4.5 % | 4 KiB - 64 KiB   |
/// | 0.5 % | 64 KiB - 1 MiB   |
#[inline(always)]
pub fn mixed_size(rng: &mut Rng) -> usize {
    let r = rng.below(1000);
    let (lo, hi) = if r < 500 {
        (8, 64)
    } else if r < 800 {
        (65, 256)
    } else if r < 950 {
        (257, 4096)
    } else if r < 995 {
        (4097, 65536)
    } else {
        (65537, 1 << 20)
    };
    rng.range(lo, hi) as usize
}
