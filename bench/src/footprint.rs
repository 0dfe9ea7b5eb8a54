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
//!
//! The memory cases ([`memory`](crate::memory)) run in children started the same way
//! (`child_reading`), with the case's name and amount as further arguments.

use std::alloc::GlobalAlloc;
use std::process::Command;

use devutils::procfs::{hwm_kib, rss_kib};

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

/// The child's side: runs the script through `a` and returns its readings.
pub fn measure<A: GlobalAlloc>(a: &A) -> Footprint {
    let mut rng = Rng::new(0xF007);
    // Every buffer of the harness is allocated before the baseline reading.
    let mut blocks: Vec<(*mut u8, usize)> = Vec::with_capacity(BLOCKS);
    let mut order: Vec<usize> = (0..BLOCKS).collect();
    rng.shuffle(&mut order);
    let baseline_kib = rss_kib();

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
    let peak_kib = hwm_kib();
    for (p, size) in blocks.drain(..) {
        // SAFETY: each block is freed once, with its layout.
        unsafe { a.dealloc(p, layout(size)) };
    }
    let after_free_kib = rss_kib();
    Footprint {
        baseline_kib,
        peak_kib,
        after_free_kib,
        requested_peak,
    }
}

/// The child's entry point. `args` (after [`CHILD_COMMAND`]) are the allocator's name, then
/// either nothing (the footprint script: prints the one line the parent reads) or a memory case's
/// name and amount (see [`memory`](crate::memory)).
pub fn child_main(args: &[String]) -> Result<(), String> {
    let name = args.first().map_or("", String::as_str);
    let id = AllocatorId::parse(name).ok_or_else(|| format!("unknown allocator {name}"))?;
    if id == AllocatorId::Smalloc {
        crate::allocators::check_smalloc_reserved()?;
    }
    if let [_, case, amount] = args {
        return crate::memory::child_main(id, case, amount);
    }
    let f = with_allocator!(id, |a| measure(a));
    println!(
        "footprint {} {} {} {}",
        f.baseline_kib, f.peak_kib, f.after_free_kib, f.requested_peak
    );
    Ok(())
}

/// Runs the bench binary again as a child, `bench` [`CHILD_COMMAND`] `args...`, and returns the
/// words after `tag` on the first line of its output that starts with `tag` and a space. `who`
/// names the child in error messages.
pub(crate) fn child_reading(args: &[&str], tag: &str, who: &str) -> Result<Vec<String>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
    let out = Command::new(exe)
        .arg(CHILD_COMMAND)
        .args(args)
        .output()
        .map_err(|e| format!("cannot start {who}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{who} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let prefix = format!("{tag} ");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map(|rest| rest.split_whitespace().map(String::from).collect())
        .ok_or_else(|| format!("{who} printed no reading: {stdout}"))
}

/// The parent's side: runs a child for allocator `id` and parses its reading.
pub fn run_child(id: AllocatorId) -> Result<Footprint, String> {
    let who = format!("footprint child for {id}");
    let nums: Vec<u64> = child_reading(&[id.name()], "footprint", &who)?
        .iter()
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
        _ => Err(format!("{who} printed {nums:?}")),
    }
}
