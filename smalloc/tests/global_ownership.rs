//! Slab ownership with smalloc as the global allocator: what happens to a thread's slab and
//! blocks when the thread exits, when there are more threads than slabs, and when other threads
//! free a thread's blocks while it exits. Every block is filled with a pattern and checked before
//! it is freed.

use std::alloc::Layout;
use std::cell::RefCell;
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;

use devutils::{Block, Churn};
use smalloc_core::Smalloc;

#[global_allocator]
static ALLOC: Smalloc = Smalloc::new();

fn layout(i: usize) -> Layout {
    Layout::from_size_align(8 + (i * 37) % 3000, 8).unwrap()
}

/// Blocks handed from each thread generation to the next: each thread allocates blocks, exits
/// with them live, and the next thread (or the main thread) checks and frees them, as remote
/// frees into a slab its owner has released, or that a new thread owns by then.
#[test]
fn blocks_outlive_the_thread_that_allocated_them() {
    let mut carried: Vec<Block> = Vec::new();
    for generation in 0..200u64 {
        let inherited = std::mem::take(&mut carried);
        carried = thread::spawn(move || {
            // Free half of what the previous thread left, keep the rest going.
            let mut keep = Vec::new();
            for (i, b) in inherited.into_iter().enumerate() {
                if i % 2 == 0 {
                    b.free();
                } else {
                    keep.push(b);
                }
            }
            for i in 0..300 {
                keep.push(Block::new(
                    layout(i),
                    generation * 1000 + i as u64,
                    i % 5 == 0,
                ));
            }
            // Leave with the newest 300 live; free the older ones here.
            let older = keep.len() - 300;
            for b in keep.drain(..older) {
                b.free();
            }
            keep
        })
        .join()
        .unwrap();
        if generation % 3 == 0 {
            // The main thread frees some too.
            for b in carried.drain(..50) {
                b.free();
            }
        }
    }
    for b in carried {
        b.free();
    }
}

/// More threads alive at once than there are owned slabs (480): the rest allocate from the
/// shared slabs, and blocks travel between both kinds of thread.
#[test]
fn more_threads_than_slabs_at_once() {
    const THREADS: usize = 600;
    let start = Arc::new(Barrier::new(THREADS));
    let done = Arc::new(Barrier::new(THREADS));
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..THREADS).map(|_| mpsc::channel::<Vec<Block>>()).unzip();
    let handles: Vec<_> = receivers
        .into_iter()
        .enumerate()
        .map(|(t, rx)| {
            let (start, done) = (Arc::clone(&start), Arc::clone(&done));
            let next = senders[(t + 1) % THREADS].clone();
            thread::Builder::new()
                .stack_size(128 << 10)
                .spawn(move || {
                    start.wait();
                    let mut c = Churn::new(t as u64 + 7, 12);
                    c.run(400, 50);
                    let gift: Vec<Block> = (0..20)
                        .map(|i| Block::new(layout(i + t), (t * 100 + i) as u64, false))
                        .collect();
                    next.send(gift).unwrap();
                    drop(next);
                    // Everyone is alive (and holds its slab, or none) until all have allocated.
                    done.wait();
                    for b in rx.recv().unwrap() {
                        b.free();
                    }
                    c.finish();
                })
                .expect("spawn")
        })
        .collect();
    drop(senders);
    for h in handles {
        h.join().unwrap();
    }
}

/// Producers allocate blocks, hand them to consumers and exit at once: the consumers' frees
/// (remote frees, batched) race with the producers' exit and the release of their slabs.
#[test]
fn remote_frees_race_with_the_owners_exit() {
    for round in 0..20u64 {
        let (tx, rx) = mpsc::sync_channel::<Block>(64);
        let consumer = thread::spawn(move || {
            let mut n = 0;
            for b in rx {
                b.free();
                n += 1;
            }
            n
        });
        let producers: Vec<_> = (0..8u64)
            .map(|p| {
                let tx = tx.clone();
                thread::spawn(move || {
                    for i in 0..500u64 {
                        let b = Block::new(layout(i as usize), round << 32 | p << 16 | i, false);
                        tx.send(b).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        for p in producers {
            p.join().unwrap();
        }
        assert_eq!(consumer.join().unwrap(), 8 * 500);
    }
}

thread_local! {
    /// Blocks a thread keeps in a Rust thread-local with a destructor: freed when the thread
    /// exits, before smalloc's own exit destructor releases the thread's slab.
    static KEPT: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Thread-exit order: Rust thread-local destructors free blocks while the thread still owns its
/// slab; a pthread key destructor that runs after smalloc's allocates and frees again, through
/// the paths of a thread that owns no slab.
#[test]
fn destructors_allocate_and_free_at_thread_exit() {
    static KEY: std::sync::OnceLock<libc::pthread_key_t> = std::sync::OnceLock::new();
    unsafe extern "C" fn late(value: *mut libc::c_void) {
        // SAFETY: the value is the Box<Block> leaked below, handed back exactly once.
        let b = unsafe { Box::from_raw(value.cast::<Block>()) };
        b.free();
        // Allocate and free after smalloc let go of the thread.
        let v: Vec<String> = (0..1000).map(|i| format!("late {i}")).collect();
        assert_eq!(v[999], "late 999");
        let kept = Block::new(layout(3), 99, true);
        kept.free();
    }
    // smalloc made its key when it reserved, before main: this one comes after it.
    let key = *KEY.get_or_init(|| {
        let mut k = 0;
        // SAFETY: k is a valid out-pointer; the destructor has the right signature.
        assert_eq!(unsafe { libc::pthread_key_create(&mut k, Some(late)) }, 0);
        k
    });
    let mut handles = vec![];
    for t in 0..64u64 {
        handles.push(thread::spawn(move || {
            KEPT.with(|k| {
                let mut k = k.borrow_mut();
                for i in 0..100 {
                    k.push(Block::new(layout(i), t * 1000 + i as u64, false));
                }
            });
            let b = Box::new(Block::new(layout(7), t, false));
            // SAFETY: the key exists; the value is freed by its destructor.
            assert_eq!(
                unsafe { libc::pthread_setspecific(key, Box::into_raw(b).cast()) },
                0
            );
            let mut c = Churn::new(t, 14);
            c.run(2000, 100);
            c.finish();
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
}

/// Thread after thread allocating and freeing 16 MiB of small blocks: each inherits a released
/// slab with its memory instead of taking new memory, so the resident set stays flat.
#[test]
fn thread_generations_reuse_memory() {
    let run = || {
        thread::spawn(|| {
            let l = Layout::from_size_align(64, 8).unwrap();
            let blocks: Vec<Block> = (0..(16 << 20) / 64)
                .map(|i| Block::new(l, i as u64, false))
                .collect();
            for b in blocks {
                b.free();
            }
        })
        .join()
        .unwrap()
    };
    for _ in 0..5 {
        run();
    }
    let before = devutils::rss_kib();
    for _ in 0..100 {
        run();
    }
    let after = devutils::rss_kib();
    assert!(
        after < before + 32 * 1024,
        "resident set grew from {before} KiB to {after} KiB over 100 thread generations"
    );
}
