//! `realloc-strings`: many small strings, each grown by doubling `realloc` as a `String` that is
//! appended to grows, all kept alive: what a growing block finally costs in resident memory.
//!
//! Each string starts as an 8-byte block, written in full, and is grown through
//! `GlobalAlloc::realloc` to 16, 32, 64, 128 and finally [`FINAL_SIZE`] bytes, every byte
//! written after each step (and the last byte of the old contents checked first: `realloc` must
//! have carried it along). The strings are built one after another and all kept (linked through
//! their own first bytes, [`BlockList`]), then the resident set is read.

use std::alloc::GlobalAlloc;

use devutils::procfs::rss_kib;

use super::block_list::BlockList;
use crate::workloads::common::{alloc, layout};

/// Size of every string after its last `realloc`.
pub const FINAL_SIZE: usize = 155;

/// Size of every string's first block.
const FIRST_SIZE: usize = 8;

/// Tag written into every byte of the strings.
const TAG: u8 = 0x5A;

/// The figures: `VmRSS` before (KiB), `VmRSS` with all strings live (KiB), and the increase per
/// string (bytes).
pub fn measure<A: GlobalAlloc>(a: &A, strings: u64) -> Vec<Option<u64>> {
    let mut list = BlockList::default();
    let baseline = rss_kib();
    for _ in 0..strings {
        let mut size = FIRST_SIZE;
        // SAFETY: non-zero size; the write stays inside the block.
        let mut p = unsafe {
            let p = alloc(a, layout(size));
            p.write_bytes(TAG, size);
            p
        };
        while size < FINAL_SIZE {
            let new = (size * 2).min(FINAL_SIZE);
            // SAFETY: p is live with layout(size); after a successful realloc only the new
            // pointer is used, and every access stays inside its `new` bytes.
            unsafe {
                p = a.realloc(p, layout(size), new);
                assert!(!p.is_null(), "realloc to {new} B returned null");
                assert_eq!(p.add(size - 1).read(), TAG, "realloc lost the contents");
                p.write_bytes(TAG, new);
            }
            size = new;
        }
        // SAFETY: a live, 8-aligned block of FINAL_SIZE >= HEADER bytes, held by the list only.
        unsafe { list.push(p, size) };
    }
    let with = rss_kib();
    let per_string = (with.saturating_sub(baseline) * 1024).checked_div(strings);
    list.free_all(a, TAG);
    vec![Some(baseline), Some(with), per_string]
}
