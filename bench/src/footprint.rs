//! `footprint`: how much memory an allocator keeps resident, measured in a process of its own.
//!
//! Resident-set figures are per process and peaks never go down, so each allocator is measured in
//! a fresh child: the bench binary re-executes itself (`std::env::current_exe()`) with the hidden
//! subcommand [`CHILD_COMMAND`] and the allocator's name. The child allocates through that
//! allocator only, reads `VmHWM` (peak) and `VmRSS` (now) from `/proc/self/status`, and prints one
//! line that the parent parses.
//!
//! The child's script: allocate [`BLOCKS`] blocks from the mixed size distribution and write every
//! byte, free a random half, allocate as many again with other sizes (so the heap is fragmented
//! the way a running program's is), read the peak, free everything, read the resident set.

use std::alloc::GlobalAlloc;
use std::process::Command;

use crate::allocators::AllocatorId;
use crate::rng::Rng;
use crate::with_allocator;
use crate::workloads::common::{alloc, layout, mixed_size};

/// The hidden subcommand a footprint child runs.
pub const CHILD_COMMAND: &str = "__footprint";

/// Blocks allocated in each phase of the child's script (about 90 MiB of requests).
pub const BLOCKS: usize = 20_000;

/// One child's readings, in KiB as the kernel reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footprint {
    /// `VmRSS` before the workload allocated anything.
    pub baseline_kib: u64,
    /// `VmHWM`, the peak resident set, read at the workload's peak.
    pub peak_kib: u64,
    /// `VmRSS` after everything was freed.
    pub after_free_kib: u64,
    /// Bytes live at the workload's peak (the same for every allocator).
    pub requested_peak: u64,
}

/// Reads a `kB` field such as `VmRSS` from `/proc/self/status`.
pub fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The child's side: runs the script through `a` and returns its readings.
pub fn measure<A: GlobalAlloc>(a: &A) -> Footprint {
    let mut rng = Rng::new(0xF007);
    // Every buffer of the harness is allocated before the baseline reading.
    let mut blocks: Vec<(*mut u8, usize)> = Vec::with_capacity(BLOCKS);
    let mut order: Vec<usize> = (0..BLOCKS).collect();
    rng.shuffle(&mut order);
    let read = |field| proc_status_kib(field).expect("cannot read /proc/self/status");
    let baseline_kib = read("VmRSS");

    let new_block = |rng: &mut Rng| {
        let size = mixed_size(rng);
        // SAFETY: non-zero size; the block is written within bounds.
        unsafe {
            let p = alloc(a, layout(size));
            p.write_bytes(0xA5, size);
            (p, size)
        }
    };
    for _ in 0..BLOCKS {
        blocks.push(new_block(&mut rng));
    }
    let mut live: u64 = blocks.iter().map(|b| b.1 as u64).sum();
    let mut requested_peak = live;
    for &i in &order[..BLOCKS / 2] {
        let (p, size) = blocks[i];
        // SAFETY: each block is freed once, with its layout.
        unsafe { a.dealloc(p, layout(size)) };
        live -= size as u64;
        blocks[i] = new_block(&mut rng);
        live += blocks[i].1 as u64;
        requested_peak = requested_peak.max(live);
    }
    let peak_kib = read("VmHWM");
    for (p, size) in blocks.drain(..) {
        // SAFETY: each block is freed once, with its layout.
        unsafe { a.dealloc(p, layout(size)) };
    }
    let after_free_kib = read("VmRSS");
    Footprint {
        baseline_kib,
        peak_kib,
        after_free_kib,
        requested_peak,
    }
}

/// The child's entry point: measures allocator `name` and prints the one line the parent reads.
pub fn child_main(name: &str) -> Result<(), String> {
    let id = AllocatorId::parse(name).ok_or_else(|| format!("unknown allocator {name}"))?;
    if id == AllocatorId::Smalloc {
        crate::allocators::check_smalloc_reserved()?;
    }
    let f = with_allocator!(id, |a| measure(a));
    println!(
        "footprint {} {} {} {}",
        f.baseline_kib, f.peak_kib, f.after_free_kib, f.requested_peak
    );
    Ok(())
}

/// The parent's side: runs a child for allocator `id` and parses its reading.
pub fn run_child(id: AllocatorId) -> Result<Footprint, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
    let out = Command::new(exe)
        .arg(CHILD_COMMAND)
        .arg(id.name())
        .output()
        .map_err(|e| format!("cannot start footprint child: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "footprint child for {id} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let nums: Vec<u64> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("footprint "))
        .ok_or_else(|| format!("footprint child for {id} printed no reading"))?
        .split_whitespace()
        .map(|w| {
            w.parse()
                .map_err(|e| format!("bad footprint reading {w}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    match nums[..] {
        [baseline_kib, peak_kib, after_free_kib, requested_peak] => Ok(Footprint {
            baseline_kib,
            peak_kib,
            after_free_kib,
            requested_peak,
        }),
        _ => Err(format!("footprint child for {id} printed {stdout}")),
    }
}
