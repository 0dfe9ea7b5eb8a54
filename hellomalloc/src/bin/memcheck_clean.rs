//! A correct program with smalloc as its global allocator, for running under valgrind's memcheck
//! (`hellomalloc/tests/memcheck.rs` does): every kind of block smalloc hands out, and nothing
//! memcheck should complain about. Prints whether the blocks came from smalloc (not from the
//! system allocator it falls back on).

use std::alloc::{GlobalAlloc, Layout};
use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc;
use std::thread;

use smalloc_core::Smalloc;

#[global_allocator]
static ALLOC: Smalloc = Smalloc::new();

/// Whether `p` lies in smalloc's slabs.
fn in_slabs<T: ?Sized>(p: *const T) -> bool {
    ALLOC
        .slab_range()
        .is_some_and(|r| r.contains(&(p as *const u8 as usize)))
}

fn main() {
    // Vectors and strings, grown by realloc.
    let mut v: Vec<u64> = Vec::new();
    for i in 0..10_000 {
        v.push(i);
    }
    assert_eq!(v.iter().sum::<u64>(), 49_995_000);
    let mut s = String::new();
    for i in 0..2_000 {
        s.push_str(&i.to_string());
    }
    assert!(s.starts_with("0123456789101112"));
    let small = in_slabs(s.as_ptr()) && in_slabs(v.as_ptr());
    v.truncate(10);
    v.shrink_to_fit();
    assert_eq!(v, (0..10).collect::<Vec<_>>());

    // Maps: many small blocks, freed in another order than allocated.
    let mut h: HashMap<String, Vec<u32>> = HashMap::new();
    let mut b = BTreeMap::new();
    for i in 0..3_000u32 {
        h.entry(format!("key{}", i % 700)).or_default().push(i);
        b.insert(i.wrapping_mul(2_654_435_761), i.to_string());
    }
    assert_eq!(h.len(), 700);
    b.retain(|k, _| k % 3 == 0);
    drop(h);

    // Zeroed and over-aligned blocks.
    let z = vec![0u8; 100_000];
    assert!(z.iter().all(|&x| x == 0));
    let layout = Layout::from_size_align(3000, 4096).unwrap();
    // SAFETY: a valid layout with a non-zero size; the block is freed with the same layout.
    unsafe {
        let p = ALLOC.alloc(layout);
        assert!(!p.is_null() && (p as usize).is_multiple_of(4096));
        p.write_bytes(7, 3000);
        assert_eq!(*p.add(2999), 7);
        ALLOC.dealloc(p, layout);
    }

    // Threads, with blocks freed by another thread than the one that allocated them.
    let (tx, rx) = mpsc::channel::<Vec<Box<[u8; 48]>>>();
    let producers: Vec<_> = (0..4)
        .map(|t| {
            let tx = tx.clone();
            thread::spawn(move || {
                for round in 0..20u8 {
                    tx.send((0..50).map(|_| Box::new([t ^ round; 48])).collect())
                        .unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let consumer = thread::spawn(move || {
        let mut n = 0;
        for batch in rx {
            n += batch.iter().filter(|b| b[0] == b[47]).count();
        }
        n
    });
    for p in producers {
        p.join().unwrap();
    }
    assert_eq!(consumer.join().unwrap(), 4 * 20 * 50);

    // A vector that grows past the largest slab class into a direct mapping, by realloc.
    let mut big: Vec<u8> = Vec::with_capacity(1 << 20);
    while big.len() < 20 << 20 {
        big.extend_from_slice(&[0x5a; 1 << 16]);
    }
    assert!(big.iter().step_by(4096).all(|&x| x == 0x5a));
    let direct = !in_slabs(big.as_ptr());
    drop(big);

    println!(
        "blocks from smalloc's slabs: {small}; big block outside them: {direct}; map entries kept: {}",
        b.len()
    );
}
