//! How `realloc` moves blocks: the copy that skips what the destination already has.
//!
//! The policy (stay in the slot when the new size fits, move down when the block shrinks to a
//! quarter of its slot, jump to a grower class when it outgrows it) is in `layout`
//! ([`crate::layout::grower_class`], [`crate::layout::shrink_class`]) and `Smalloc::realloc`.

use core::ptr;

/// The unit in which `move_bytes` looks for all-zero source pages.
const CHUNK: usize = 4096;
/// Moves of at most this many bytes are plain copies: whether the destination reads as zero
/// does not matter to them.
pub(crate) const SMALL_MOVE: usize = 2 * CHUNK;

/// Copies `len` bytes of a block that `realloc` moves from `src` to `dst`.
///
/// When `dst_is_zero` (a fresh or purged slot, or a new mapping), source pages that hold only
/// zeroes are not copied: the destination has them already. That keeps pages the program never
/// touched (a big `Vec::with_capacity`, or a C `realloc` of a whole slot whose size is all smalloc
/// knows) from being committed by the copy. Reading an untouched page maps the kernel's shared
/// zero page, which costs no memory.
///
/// # Safety
/// `src` must be readable and `dst` writable for `len` bytes, and the two must not overlap.
pub(crate) unsafe fn move_bytes(dst: *mut u8, dst_is_zero: bool, src: *const u8, len: usize) {
    if !dst_is_zero || len <= SMALL_MOVE {
        // SAFETY: forwarded from the caller.
        return unsafe { ptr::copy_nonoverlapping(src, dst, len) };
    }
    let mut off = 0;
    while off < len {
        let n = CHUNK.min(len - off);
        // SAFETY: [off, off + n) lies within both blocks.
        unsafe {
            if !is_all_zero(src.add(off), n) {
                ptr::copy_nonoverlapping(src.add(off), dst.add(off), n);
            }
        }
        off += n;
    }
}

/// Whether the `n` bytes at `p` are all zero. Stops at the first non-zero word, so a chunk of
/// real data costs a few loads.
///
/// # Safety
/// `p` must be readable for `n` bytes.
pub(crate) unsafe fn is_all_zero(p: *const u8, n: usize) -> bool {
    let words = n / 8;
    // SAFETY: every read lies within the n bytes at p; unaligned reads are allowed.
    unsafe {
        (0..words).all(|i| p.cast::<u64>().add(i).read_unaligned() == 0)
            && (words * 8..n).all(|i| *p.add(i) == 0)
    }
}
