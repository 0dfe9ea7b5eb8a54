//! Finds how much virtual address space this OS lets one process reserve, the way smalloc
//! reserves it (`MAP_NORESERVE`, nothing committed):
//!
//! 1. the largest *single* reservation, by binary search over page counts;
//! 2. the *total* the process can hold, by reserving the largest block that still fits until
//!    nothing more does.
//!
//! ```text
//! cargo run --release -p find_max_vm_addresses_reservable
//! ```
//!
//! smalloc needs one reservation of 32 TiB + 64 GiB (2^45 + 2^36 bytes, the extra for aligning
//! its base to a slab span), of which it keeps 32 TiB.

use std::ptr::NonNull;

/// Largest `len` (a multiple of `page`, at most `upper`) for which a reservation succeeds.
fn largest_single(page: usize, upper: usize) -> usize {
    let (mut lo, mut hi) = (0usize, upper / page); // lo pages known to succeed, hi+1 to fail
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        match smalloc_plat::reserve(mid * page) {
            Some(p) => {
                // SAFETY: the reservation was just made and is not used.
                unsafe { smalloc_plat::unmap(p, mid * page) };
                lo = mid;
            }
            None => hi = mid - 1,
        }
    }
    lo * page
}

/// Reserves the largest block that fits, again and again; returns the blocks.
fn reserve_all(page: usize, upper: usize) -> Vec<(NonNull<u8>, usize)> {
    let mut held = vec![];
    loop {
        let len = largest_single(page, upper);
        // Stop at crumbs: the point is the bulk of the address space.
        if len < (1 << 30) {
            return held;
        }
        match smalloc_plat::reserve(len) {
            Some(p) => held.push((p, len)),
            None => return held,
        }
    }
}

fn describe(len: usize) -> String {
    format!(
        "{len} bytes = {:.2} TiB = 2^{:.3}",
        len as f64 / (1u64 << 40) as f64,
        (len as f64).log2()
    )
}

fn main() {
    let page = smalloc_plat::page_size();
    let upper = usize::MAX / 2 / page * page;
    let single = largest_single(page, upper);
    println!("largest single reservation: {}", describe(single));
    let need = (1usize << 45) + (1 << 31);
    println!(
        "smalloc needs one of {}: {}",
        describe(need),
        if single >= need {
            "fits"
        } else {
            "DOES NOT FIT"
        }
    );
    let held = reserve_all(page, upper);
    let total: usize = held.iter().map(|&(_, len)| len).sum();
    println!(
        "total reservable in blocks of at least 1 GiB: {} ({} blocks)",
        describe(total),
        held.len()
    );
    for (p, len) in held {
        // SAFETY: each block was reserved above and never used.
        unsafe { smalloc_plat::unmap(p, len) };
    }
}
