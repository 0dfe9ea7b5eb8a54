//! `locality`: where an allocator places objects matters as much as how fast it hands them out.
//! A linked list of small nodes is built (amid other allocations, as a program would make them),
//! and only the walk along it is timed. Nodes that sit next to each other in memory in list order
//! walk fast (caches, prefetchers); scattered nodes miss the cache at every step.
//!
//! The `churned` variant first allocates as many node-sized blocks as the list will have and
//! frees them in random order, so the allocator's free lists are scrambled before the list is
//! built, which is the state of a heap that has been running for a while.

use std::alloc::GlobalAlloc;
use std::hint::black_box;
use std::time::{Duration, Instant};

use super::common::{alloc, layout};
use crate::rng::Rng;

/// Nodes in the list: 256k nodes of 32 B are 8 MiB, more than the L2 caches of current CPUs.
pub const NODES: usize = 256 * 1024;

/// A list node: 32 bytes, as a small struct with a pointer and a few fields.
#[repr(C)]
struct Node {
    next: *mut Node,
    value: u64,
    _pad: [u64; 2],
}

/// Builds the list, walks it `passes` times, frees everything; returns the time of the walks.
pub fn run<A: GlobalAlloc>(a: &A, churned: bool, passes: u64) -> Duration {
    let node_layout = layout(size_of::<Node>());
    let mut rng = Rng::new(0x10CA1);
    if churned {
        let mut blocks: Vec<*mut u8> = (0..NODES)
            // SAFETY: non-zero size.
            .map(|_| unsafe { alloc(a, node_layout) })
            .collect();
        rng.shuffle(&mut blocks);
        for p in blocks {
            // SAFETY: each block is freed once with its layout.
            unsafe { a.dealloc(p, node_layout) };
        }
    }
    // Other allocations made while the list is built: about one per node, 8-512 B, alive
    // until the list is gone.
    let mut noise: Vec<(*mut u8, usize)> = Vec::with_capacity(NODES);
    let mut head: *mut Node = std::ptr::null_mut();
    let mut tail: *mut Node = std::ptr::null_mut();
    for i in 0..NODES {
        // SAFETY: a fresh node-sized block, fully initialized before it is linked.
        let n = unsafe {
            let n = alloc(a, node_layout).cast::<Node>();
            n.write(Node {
                next: std::ptr::null_mut(),
                value: i as u64,
                _pad: [0; 2],
            });
            n
        };
        if tail.is_null() {
            head = n;
        } else {
            // SAFETY: tail is the live last node.
            unsafe { (*tail).next = n };
        }
        tail = n;
        if rng.below(2) == 0 {
            let size = rng.range(8, 512) as usize;
            // SAFETY: non-zero size; the write is in bounds.
            unsafe {
                let p = alloc(a, layout(size));
                p.write(1);
                noise.push((p, size));
            }
        }
    }
    let expected = (NODES as u64 - 1) * NODES as u64 / 2;
    let start = Instant::now();
    for _ in 0..passes {
        let mut sum = 0u64;
        let mut n = black_box(head);
        while !n.is_null() {
            // SAFETY: every node in the list is live and initialized.
            unsafe {
                sum += (*n).value;
                n = (*n).next;
            }
        }
        assert_eq!(black_box(sum), expected, "list lost nodes");
    }
    let elapsed = start.elapsed();
    let mut n = head;
    while !n.is_null() {
        // SAFETY: each node is freed once, after reading its link.
        unsafe {
            let next = (*n).next;
            a.dealloc(n.cast(), node_layout);
            n = next;
        }
    }
    for (p, size) in noise {
        // SAFETY: each noise block is freed once with its layout.
        unsafe { a.dealloc(p, layout(size)) };
    }
    elapsed
}
