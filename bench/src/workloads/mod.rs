//! The timed workloads. Each [`Case`] is one named, fixed amount of work; running it through an
//! allocator returns the wall time of its timed part, and the report divides that by
//! [`Case::ops`] to get ns/op. Every allocator does exactly the same work for a case (same sizes,
//! same order, same seeds), so the times compare directly.

pub mod batch;
pub mod common;
pub mod cross_thread;
pub mod growth;
pub mod locality;
pub mod mixed;
pub mod multi_thread;
pub mod pair;
pub mod ring;
pub mod thread_churn;

use std::alloc::GlobalAlloc;
use std::time::Duration;

/// The workload families of the report, one table each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Workload {
    /// Alloc then free the same size, repeatedly.
    Pair,
    /// Allocate 1,000 blocks, then free them all (LIFO or random order).
    Batch,
    /// A realistic size mix with writes, over a working set of live blocks.
    Mixed,
    /// `Vec` and `String` growth through `realloc`.
    Growth,
    /// Producer/consumer (`cross-thread`) and a ring of threads (`ring-N`): every free is
    /// remote.
    CrossThread,
    /// 1, 2, 4, 32 threads each running the mixed workload on their own blocks.
    MultiThread,
    /// Many threads allocating and freeing in the same size class at once.
    Hotspot,
    /// Traversal of a linked list built from small allocations.
    Locality,
    /// Short-lived threads, one after another, each taking over its predecessor's blocks.
    ThreadChurn,
}

impl Workload {
    /// Every workload, in report order.
    pub const ALL: [Workload; 9] = [
        Workload::Pair,
        Workload::Batch,
        Workload::Mixed,
        Workload::Growth,
        Workload::CrossThread,
        Workload::ThreadChurn,
        Workload::MultiThread,
        Workload::Hotspot,
        Workload::Locality,
    ];

    /// Short name, the prefix of its cases' names.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Pair => "pair",
            Workload::Batch => "batch",
            Workload::Mixed => "mixed",
            Workload::Growth => "growth",
            Workload::CrossThread => "cross-thread",
            Workload::MultiThread => "multi-thread",
            Workload::Hotspot => "hotspot",
            Workload::Locality => "locality",
            Workload::ThreadChurn => "thread-churn",
        }
    }

    /// One line saying what it measures (the same line as in README.md).
    pub fn description(self) -> &'static str {
        match self {
            Workload::Pair => "alloc then free one block of the same size, repeatedly; ns per pair",
            Workload::Batch => {
                "allocate 1,000 blocks of 8-256 B, then free them in LIFO or random order; ns per \
                 alloc+free"
            }
            Workload::Mixed => {
                "256 live blocks, each op frees one at random and allocates a new one from a \
                 realistic mix (mostly < 256 B, tail to 1 MiB), writing and checking it; ns per op"
            }
            Workload::Growth => {
                "a Vec<u64> pushed to 10^6 elements (ns per push), and batches of Strings built \
                 piece by piece (ns per string), both growing through realloc"
            }
            Workload::CrossThread => {
                "blocks of 16-256 B allocated by one thread, handed through a lock-free ring to a \
                 thread on another CPU, which checks and frees them (cross-thread: one producer, \
                 one consumer; ring-N: N threads in a ring, each feeding the next); wall ns per \
                 block"
            }
            Workload::MultiThread => {
                "N threads each run the mixed workload on their own blocks, same total ops; wall \
                 ns per op over all threads"
            }
            Workload::Hotspot => {
                "N threads allocate 8 blocks of 64 B, write them and free them, over and over, \
                 all in one size class; wall ns per pair over all threads"
            }
            Workload::Locality => {
                "build a 256k-node linked list of 32 B nodes amid other allocations, then time \
                 only walking it; ns per node visited"
            }
            Workload::ThreadChurn => {
                "4 threads at a time, each runs 2,000 mixed ops and exits, the next one freeing \
                 half of the blocks it left and keeping the rest; wall ns per op over all threads"
            }
        }
    }
}

/// What a case does, with its parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// [`pair`] with this block size.
    Pair {
        /// Bytes per block.
        size: usize,
    },
    /// [`batch`], freeing in random order (`true`) or LIFO (`false`).
    Batch {
        /// Free in a shuffled order instead of last-allocated-first.
        random: bool,
    },
    /// [`mixed`] on one thread.
    Mixed,
    /// [`growth`]: a `Vec<u64>` pushed to 10^6 elements.
    GrowthVec,
    /// [`growth`]: `String`s built piece by piece.
    GrowthString,
    /// [`cross_thread`].
    CrossThread,
    /// [`ring`] with this many threads.
    Ring {
        /// Threads in the ring.
        threads: usize,
    },
    /// [`thread_churn`] with this many threads in all ([`thread_churn::LANES`] at a time).
    ThreadChurn {
        /// Threads started over the whole case.
        threads: usize,
    },
    /// [`multi_thread::independent`] with this many threads.
    MultiThread {
        /// Threads running at once.
        threads: usize,
    },
    /// [`multi_thread::hotspot`] with this many threads.
    Hotspot {
        /// Threads running at once.
        threads: usize,
    },
    /// [`locality`], with the heap churned first (`true`) or not.
    Locality {
        /// Free 256k blocks of the node size in random order before building the list.
        churned: bool,
    },
}

/// One named, fixed amount of work.
#[derive(Clone, Debug)]
pub struct Case {
    /// Unique name, e.g. `pair-64` or `multi-thread-32`.
    pub name: String,
    /// Its family.
    pub workload: Workload,
    /// What it does.
    pub kind: Kind,
    /// Operations the timed part performs (the divisor of ns/op).
    pub ops: u64,
    /// How many threads it runs (for the oversubscription note).
    pub threads: usize,
}

/// Threads of the multi-thread cases; `--thorough` adds [`THOROUGH_THREADS`].
pub const MULTI_THREADS: [usize; 4] = [1, 2, 4, 32];
/// Threads of the hotspot cases; `--thorough` adds [`THOROUGH_THREADS`].
pub const HOTSPOT_THREADS: [usize; 2] = [2, 32];
/// The slow thread count of `--thorough`.
pub const THOROUGH_THREADS: usize = 1024;

/// The cases of one run. `scale` multiplies every case's amount of work (1.0 is the default, tuned
/// so that the comparison of all allocators stays within a few minutes on two cores);
/// `thorough` adds the slow ones.
pub fn cases(scale: f64, thorough: bool) -> Vec<Case> {
    let n = |base: u64| ((base as f64 * scale).round() as u64).max(1);
    let mut v = Vec::new();
    let mut add = |workload: Workload, name: String, kind: Kind, ops: u64, threads: usize| {
        v.push(Case {
            name,
            workload,
            kind,
            ops,
            threads,
        })
    };
    for size in pair::SIZES {
        add(
            Workload::Pair,
            format!("pair-{size}"),
            Kind::Pair { size },
            n(4_000_000),
            1,
        );
    }
    let batches = n(2_000);
    for (random, label) in [(false, "lifo"), (true, "random")] {
        add(
            Workload::Batch,
            format!("batch-{label}"),
            Kind::Batch { random },
            batches * batch::BATCH as u64,
            1,
        );
    }
    add(
        Workload::Mixed,
        "mixed".into(),
        Kind::Mixed,
        n(1_000_000),
        1,
    );
    let vecs = n(8);
    add(
        Workload::Growth,
        "growth-vec".into(),
        Kind::GrowthVec,
        vecs * growth::VEC_LEN as u64,
        1,
    );
    let strings = n(200).max(1);
    add(
        Workload::Growth,
        "growth-string".into(),
        Kind::GrowthString,
        strings * growth::STRINGS_PER_BATCH as u64,
        1,
    );
    add(
        Workload::CrossThread,
        "cross-thread".into(),
        Kind::CrossThread,
        n(1_000_000),
        2,
    );
    let per_thread = (n(1_000_000) / ring::THREADS as u64).max(1);
    add(
        Workload::CrossThread,
        format!("ring-{}", ring::THREADS),
        Kind::Ring {
            threads: ring::THREADS,
        },
        per_thread * ring::THREADS as u64,
        ring::THREADS,
    );
    let lanes = thread_churn::LANES;
    let threads = (n(256) as usize / lanes).max(1) * lanes;
    add(
        Workload::ThreadChurn,
        "thread-churn".into(),
        Kind::ThreadChurn { threads },
        threads as u64 * thread_churn::THREAD_OPS,
        lanes,
    );
    let mut threads_mt = MULTI_THREADS.to_vec();
    let mut threads_hot = HOTSPOT_THREADS.to_vec();
    if thorough {
        threads_mt.push(THOROUGH_THREADS);
        threads_hot.push(THOROUGH_THREADS);
    }
    for threads in threads_mt {
        // Same total work whatever the thread count, rounded to whole threads.
        let per = (n(1_000_000) / threads as u64).max(1);
        add(
            Workload::MultiThread,
            format!("multi-thread-{threads}"),
            Kind::MultiThread { threads },
            per * threads as u64,
            threads,
        );
    }
    for threads in threads_hot {
        let per = (n(4_000_000) / threads as u64).max(multi_thread::BURST as u64);
        let per = per - per % multi_thread::BURST as u64;
        add(
            Workload::Hotspot,
            format!("hotspot-{threads}"),
            Kind::Hotspot { threads },
            per * threads as u64,
            threads,
        );
    }
    let passes = n(8);
    for (churned, name) in [(false, "locality"), (true, "locality-churned")] {
        add(
            Workload::Locality,
            name.to_string(),
            Kind::Locality { churned },
            passes * locality::NODES as u64,
            1,
        );
    }
    v
}

/// Runs `case` once through allocator `a` and returns the duration of its timed part.
///
/// Panics if the allocator returns null or hands back memory that does not hold what was written
/// to it: a benchmark of a broken allocator must not produce a number.
pub fn run<A: GlobalAlloc + Sync + 'static>(a: &'static A, case: &Case) -> Duration {
    match case.kind {
        Kind::Pair { size } => pair::run(a, size, case.ops),
        Kind::Batch { random } => batch::run(a, random, case.ops / batch::BATCH as u64),
        Kind::Mixed => mixed::run(a, case.ops),
        Kind::GrowthVec => growth::run_vec(a, case.ops / growth::VEC_LEN as u64),
        Kind::GrowthString => growth::run_strings(a, case.ops / growth::STRINGS_PER_BATCH as u64),
        Kind::CrossThread => cross_thread::run(a, case.ops),
        Kind::Ring { threads } => ring::run(a, threads, case.ops / threads as u64),
        Kind::ThreadChurn { threads } => thread_churn::run(a, threads),
        Kind::MultiThread { threads } => {
            multi_thread::independent(a, threads, case.ops / threads as u64)
        }
        Kind::Hotspot { threads } => multi_thread::hotspot(a, threads, case.ops / threads as u64),
        Kind::Locality { churned } => locality::run(a, churned, case.ops / locality::NODES as u64),
    }
}
