//! smalloc as this process's global allocator under threads: 1, 2, 32 and 1000 threads churning
//! with byte checks, blocks freed by other threads than the ones that allocated them, a hotspot on
//! one size class, and thousands of short-lived threads.
//!
//! This machine may have few cores; high thread counts then test contention and correctness, not
//! scaling.

use std::alloc::Layout;
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;

use devutils::{Block, Churn};
use smalloc_core::Smalloc;

#[global_allocator]
static ALLOC: Smalloc = Smalloc::new();

/// `threads` threads, each running its own churn of `ops` operations, all starting together.
fn churn_in_threads(threads: usize, ops: usize, max_log2: u32) {
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let start = Arc::clone(&start);
            thread::Builder::new()
                .stack_size(256 << 10)
                .spawn(move || {
                    start.wait();
                    let mut c = Churn::new(t as u64 + 1, max_log2);
                    c.run(ops, 300);
                    c.finish();
                })
                .expect("spawn")
        })
        .collect();
    for h in handles {
        h.join().expect("a churn thread failed");
    }
}

#[test]
fn one_thread() {
    churn_in_threads(1, 100_000, 18);
}

#[test]
fn two_threads() {
    churn_in_threads(2, 100_000, 18);
}

#[test]
fn thirty_two_threads() {
    churn_in_threads(32, 20_000, 16);
}

#[test]
fn a_thousand_threads() {
    churn_in_threads(1000, 1_000, 12);
}

#[test]
fn every_free_remote_producer_consumer() {
    // Producers allocate and fill; consumers on other threads check and free. Each consumer also
    // allocates, so slabs see local pops racing remote pushes.
    let producers = 4;
    let per = 50_000;
    let (tx, rx) = mpsc::sync_channel::<Block>(1024);
    let rx = Arc::new(std::sync::Mutex::new(rx));
    let mut hs = vec![];
    for p in 0..producers {
        let tx = tx.clone();
        hs.push(thread::spawn(move || {
            let mut c = Churn::new(1000 + p, 14);
            for _ in 0..per {
                c.alloc();
                tx.send(c.take().unwrap()).unwrap();
            }
        }));
    }
    drop(tx);
    let consumers: Vec<_> = (0..3)
        .map(|k| {
            let rx = Arc::clone(&rx);
            thread::spawn(move || {
                let mut own = Churn::new(2000 + k, 10);
                let mut n = 0usize;
                loop {
                    let b = rx.lock().unwrap().recv();
                    match b {
                        Ok(b) => {
                            b.free();
                            n += 1;
                            if n.is_multiple_of(4) {
                                own.run(1, 100);
                            }
                        }
                        Err(_) => break,
                    }
                }
                own.finish();
                n
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let freed: usize = consumers.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(freed, producers as usize * per);
}

#[test]
fn blocks_swap_threads_in_a_ring() {
    // Each thread frees what its neighbour allocated, and reallocates some of it first.
    let n = 8;
    let rounds = 2_000;
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..n).map(|_| mpsc::channel::<Vec<Block>>()).unzip();
    let mut rxs: Vec<_> = rxs.into_iter().map(Some).collect();
    let hs: Vec<_> = (0..n)
        .map(|i| {
            let to = txs[(i + 1) % n].clone();
            let from = rxs[i].take().unwrap();
            thread::spawn(move || {
                let mut c = Churn::new(i as u64 + 77, 13);
                for r in 0..rounds {
                    let batch: Vec<Block> = (0..16)
                        .map(|_| {
                            c.alloc();
                            c.take().unwrap()
                        })
                        .collect();
                    to.send(batch).unwrap();
                    let mut got = from.recv().unwrap();
                    for (k, b) in got.iter_mut().enumerate() {
                        if k % 3 == 0 {
                            b.realloc(b.layout.size() * 2 + 1, (r * 100 + k) as u64);
                        }
                    }
                    got.into_iter().for_each(Block::free);
                }
                c.finish();
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
}

#[test]
fn hotspot_one_size_class_many_threads() {
    // Everyone hammers the 64-byte class at once: pops collide and fail over across slabs, and
    // frees of blocks from other threads' slabs collide on the same heads.
    let threads = 16;
    let start = Arc::new(Barrier::new(threads));
    let (tx, rx) = mpsc::channel::<Vec<Block>>();
    let rx = Arc::new(std::sync::Mutex::new(rx));
    let hs: Vec<_> = (0..threads)
        .map(|t| {
            let start = Arc::clone(&start);
            let tx = tx.clone();
            let rx = Arc::clone(&rx);
            thread::spawn(move || {
                start.wait();
                let l = Layout::from_size_align(64, 8).unwrap();
                for round in 0..200 {
                    let mine: Vec<Block> = (0..256)
                        .map(|i| Block::new(l, (t * 1_000_000 + round * 1000 + i) as u64, false))
                        .collect();
                    tx.send(mine).unwrap();
                    let other = rx.lock().unwrap().recv().unwrap();
                    other.into_iter().for_each(Block::free);
                }
            })
        })
        .collect();
    drop(tx);
    for h in hs {
        h.join().unwrap();
    }
}

#[test]
fn thousands_of_short_lived_threads() {
    for wave in 0..10 {
        let hs: Vec<_> = (0..500)
            .map(|i| {
                thread::spawn(move || {
                    let v: Vec<u32> = (0..(i % 50) as u32 + 1).collect();
                    let s = format!("{wave}-{i}-{}", v.len());
                    let b = Box::new([i as u8; 100]);
                    assert_eq!(v.len(), i % 50 + 1);
                    (s.len(), b[99])
                })
            })
            .collect();
        for (i, h) in hs.into_iter().enumerate() {
            let (len, last) = h.join().unwrap();
            assert_eq!(last, i as u8);
            assert!(len >= 5);
        }
    }
}

#[test]
fn growers_across_threads() {
    let hs: Vec<_> = (0..4)
        .map(|t| {
            thread::spawn(move || {
                let mut v: Vec<u32> = Vec::new();
                for i in 0..300_000u32 {
                    v.push(i ^ t);
                }
                let mut s = String::new();
                for i in 0..50_000 {
                    s.push_str(if i % 2 == 0 { "ab" } else { "c" });
                }
                assert!(v.iter().enumerate().all(|(i, &x)| x == i as u32 ^ t));
                assert_eq!(s.len(), 50_000 / 2 * 3);
                v
            })
        })
        .collect();
    // Freed on the main thread: every free is remote.
    for (t, h) in hs.into_iter().enumerate() {
        let v = h.join().unwrap();
        assert_eq!(v[12345], 12345 ^ t as u32);
    }
}
