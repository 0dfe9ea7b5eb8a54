//! `phases`: a program that moves from one phase to another, with other object sizes: does the
//! memory the first phase freed serve the second, or does the resident set grow by both?
//!
//! Phase 1 allocates about the given number of bytes in blocks of 16-128 B, writing every byte,
//! then frees them all; phase 2 does the same with blocks of 200-1000 B. Blocks are held through
//! their own first bytes ([`BlockList`]) and freed last-allocated first.

use std::alloc::GlobalAlloc;

use devutils::procfs::{hwm_kib, rss_kib};

use super::block_list::BlockList;
use crate::rng::Rng;
use crate::workloads::common::{alloc, layout};

/// Block sizes of phase 1 and phase 2 (inclusive).
pub const SIZES: [(usize, usize); 2] = [(16, 128), (200, 1000)];

/// Allocates about `bytes` in blocks of `lo..=hi` bytes, each written in full with `tag`, then
/// frees them all.
fn phase<A: GlobalAlloc>(a: &A, bytes: u64, (lo, hi): (usize, usize), tag: u8) {
    let mut rng = Rng::new(0x9A5E + u64::from(tag));
    let mut list = BlockList::default();
    let mut total = 0u64;
    while total < bytes {
        let size = rng.range(lo as u64, hi as u64) as usize;
        // SAFETY: non-zero size, written within bounds; a live 8-aligned block of at least
        // HEADER bytes, held by the list only.
        unsafe {
            let p = alloc(a, layout(size));
            p.write_bytes(tag, size);
            list.push(p, size);
        }
        total += size as u64;
    }
    list.free_all(a, tag);
}

/// The figures, all KiB: `VmRSS` before, `VmRSS` after phase 1, `VmRSS` after phase 2 (the end),
/// and `VmHWM`, the peak of the whole run.
pub fn measure<A: GlobalAlloc>(a: &A, bytes_per_phase: u64) -> Vec<Option<u64>> {
    let baseline = rss_kib();
    phase(a, bytes_per_phase, SIZES[0], 1);
    let after_first = rss_kib();
    phase(a, bytes_per_phase, SIZES[1], 2);
    let end = rss_kib();
    vec![
        Some(baseline),
        Some(after_first),
        Some(end),
        Some(hwm_kib()),
    ]
}
