//! `trim`: after a program frees everything, how much does the allocator give back when asked
//! to ([`AllocatorId::trim`]: smalloc's `trim`, glibc's `malloc_trim(0)`, mimalloc's
//! `mi_collect(true)`, jemalloc's purge of all arenas)?
//!
//! Allocates about the given number of bytes in 64 B blocks, each written in full, frees them all
//! (last-allocated first), calls the allocator's trim and reads the resident set before and
//! after.

use std::alloc::GlobalAlloc;

use devutils::procfs::{hwm_kib, rss_kib};

use super::block_list::BlockList;
use crate::allocators::AllocatorId;
use crate::workloads::common::{alloc, layout};

/// Size of every block.
pub const BLOCK: usize = 64;

/// Tag written into every byte.
const TAG: u8 = 0x64;

/// The figures, all KiB: `VmRSS` before, `VmHWM` (peak), `VmRSS` after freeing, and `VmRSS`
/// after the trim (`None` for an allocator without one). `a` must be allocator `id`'s instance.
pub fn measure<A: GlobalAlloc>(id: AllocatorId, a: &A, bytes: u64) -> Vec<Option<u64>> {
    let mut list = BlockList::default();
    let baseline = rss_kib();
    for _ in 0..bytes.div_ceil(BLOCK as u64) {
        // SAFETY: non-zero size, written within bounds; a live 8-aligned block of BLOCK >= HEADER
        // bytes, held by the list only.
        unsafe {
            let p = alloc(a, layout(BLOCK));
            p.write_bytes(TAG, BLOCK);
            list.push(p, BLOCK);
        }
    }
    let peak = hwm_kib();
    list.free_all(a, TAG);
    let after_free = rss_kib();
    let after_trim = id.trim().then(rss_kib);
    vec![Some(baseline), Some(peak), Some(after_free), after_trim]
}
