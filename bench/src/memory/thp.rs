//! `thp-threads`: the resident cost of a few small blocks per thread when transparent huge pages
//! are on for everything (`/sys/kernel/mm/transparent_hugepage/enabled` = `always`).
//!
//! [`THREADS`] threads each allocate [`PER_CLASS`] blocks of each size in [`SIZES`] and write
//! them in full, and stay alive holding them. Then, standing in for the kernel's `khugepaged`
//! under `always` (whatever this machine's mode), the main thread asks the kernel to collapse
//! the 2 MiB-aligned range around every block into a huge page (`madvise(MADV_COLLAPSE)`). It
//! fails, and is meant to, where the allocator marked its memory `MADV_NOHUGEPAGE` or where the
//! range is not entirely mapped; those errors are counted, not reported. The resident set is read
//! before and after; then the threads check and free their blocks and exit.

use std::alloc::GlobalAlloc;
use std::sync::Barrier;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use devutils::procfs::rss_kib;

use crate::workloads::common::{alloc, layout};
use crate::workloads::multi_thread::STACK;

/// Threads holding blocks.
pub const THREADS: usize = 32;
/// Block sizes each thread allocates.
pub const SIZES: [usize; 4] = [16, 64, 256, 1024];
/// Blocks of each size per thread.
pub const PER_CLASS: usize = 8;

/// A transparent huge page.
const HUGE_PAGE: usize = 2 << 20;

/// `madvise` advice that collapses a range into huge pages now (Linux 6.1). The `libc` crate
/// defines it for glibc targets only.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MADV_COLLAPSE: libc::c_int = libc::MADV_COLLAPSE;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
const MADV_COLLAPSE: libc::c_int = 25;

/// The figures: `VmRSS` before (KiB), with the blocks live (KiB), after the collapse requests
/// (KiB), and how many of how many distinct 2 MiB ranges the kernel collapsed.
pub fn measure<A: GlobalAlloc + Sync>(a: &A, threads: usize) -> Vec<Option<u64>> {
    let blocks = threads * SIZES.len() * PER_CLASS;
    // The harness's buffers exist (and are written) before the first reading.
    let per_thread = SIZES.len() * PER_CLASS;
    let addrs: Vec<AtomicUsize> = (0..blocks).map(|_| AtomicUsize::new(0)).collect();
    let mut ranges: Vec<usize> = vec![usize::MAX; blocks];
    let allocated = Barrier::new(threads + 1);
    let measured = Barrier::new(threads + 1);
    let baseline = rss_kib();
    let mut figures = vec![Some(baseline)];
    thread::scope(|s| {
        for t in 0..threads {
            let (addrs, allocated, measured) = (&addrs, &allocated, &measured);
            thread::Builder::new()
                .stack_size(STACK)
                .spawn_scoped(s, move || {
                    let tag = t as u8;
                    let mine: Vec<(*mut u8, usize)> = SIZES
                        .iter()
                        .flat_map(|&size| [size; PER_CLASS])
                        .map(|size| {
                            // SAFETY: non-zero size, written within bounds.
                            unsafe {
                                let p = alloc(a, layout(size));
                                p.write_bytes(tag, size);
                                (p, size)
                            }
                        })
                        .collect();
                    for (slot, b) in addrs[t * per_thread..].iter().zip(&mine) {
                        slot.store(b.0 as usize, Ordering::Relaxed);
                    }
                    allocated.wait();
                    measured.wait();
                    for (p, size) in mine {
                        // SAFETY: the block is live, written in full, and freed once with its
                        // layout.
                        unsafe {
                            assert_eq!(p.add(size - 1).read(), tag, "thp block overwritten");
                            a.dealloc(p, layout(size));
                        }
                    }
                })
                .expect("cannot spawn a thp-threads thread");
        }
        allocated.wait();
        figures.push(Some(rss_kib()));
        // The barrier orders the threads' stores before these loads.
        for (r, p) in ranges.iter_mut().zip(&addrs) {
            *r = p.load(Ordering::Relaxed) & !(HUGE_PAGE - 1);
        }
        ranges.sort_unstable();
        ranges.dedup();
        let collapsed = ranges
            .iter()
            // SAFETY: MADV_COLLAPSE changes how memory is backed, never its contents; on a range
            // that is not entirely mapped it fails with ENOMEM and changes nothing.
            .filter(|&&r| unsafe { libc::madvise(r as *mut _, HUGE_PAGE, MADV_COLLAPSE) } == 0)
            .count();
        figures.push(Some(rss_kib()));
        figures.push(Some(collapsed as u64));
        figures.push(Some(ranges.len() as u64));
        measured.wait();
    });
    figures
}
