//! Helpers shared by smalloc's tests and benchmarks: byte patterns that prove a block kept its
//! contents, readings of `/proc` (resident memory, the CPU: [`procfs`]), and running a test in a
//! child process under limits.

#![deny(missing_docs)]

pub mod procfs;

use std::alloc::{self, Layout};
use std::process::{Command, Output};

use rand::{Rng, SeedableRng, rngs::StdRng};

pub mod ops;

/// Resident memory of this process, in KiB (see [`procfs::rss_kib`]).
pub use procfs::rss_kib;

/// The 8-byte word of the pattern of `seed` at word index `index`. Varies with both, so two
/// blocks sharing memory, or a block holding stale data, disagree somewhere.
#[inline]
fn pattern_word(seed: u64, index: usize) -> u64 {
    let x = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((index as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
    x ^ (x >> 29) ^ (x >> 47)
}

/// The byte a block filled by [`fill`] with `seed` holds at `index`.
#[inline]
pub fn pattern_byte(seed: u64, index: usize) -> u8 {
    pattern_word(seed, index / 8).to_le_bytes()[index % 8]
}

/// Fills `buf` with the pattern of `seed` (a word at a time: tests fill gigabytes).
pub fn fill(buf: &mut [u8], seed: u64) {
    let mut chunks = buf.chunks_exact_mut(8);
    for (j, c) in chunks.by_ref().enumerate() {
        c.copy_from_slice(&pattern_word(seed, j).to_le_bytes());
    }
    let start = buf.len() / 8 * 8;
    for (i, b) in buf[start..].iter_mut().enumerate() {
        *b = pattern_byte(seed, start + i);
    }
}

/// Whether `buf` still holds the pattern of `seed`; on mismatch, the first bad index.
pub fn check(buf: &[u8], seed: u64) -> Result<(), usize> {
    let words = buf.len() / 8;
    for j in 0..words {
        let c = &buf[j * 8..j * 8 + 8];
        if c != pattern_word(seed, j).to_le_bytes() {
            let k = (0..8).find(|&k| c[k] != pattern_byte(seed, j * 8 + k));
            return Err(j * 8 + k.unwrap_or(0));
        }
    }
    match (words * 8..buf.len()).find(|&i| buf[i] != pattern_byte(seed, i)) {
        None => Ok(()),
        Some(i) => Err(i),
    }
}

/// Fills the `len` bytes at `ptr` with the pattern of `seed`.
///
/// # Safety
/// `ptr` must be valid for writes of `len` bytes.
pub unsafe fn fill_raw(ptr: *mut u8, len: usize, seed: u64) {
    // SAFETY: forwarded from the caller.
    fill(unsafe { std::slice::from_raw_parts_mut(ptr, len) }, seed);
}

/// [`check`] on the `len` bytes at `ptr`.
///
/// # Safety
/// `ptr` must be valid for reads of `len` bytes.
pub unsafe fn check_raw(ptr: *const u8, len: usize, seed: u64) -> Result<(), usize> {
    // SAFETY: forwarded from the caller.
    check(unsafe { std::slice::from_raw_parts(ptr, len) }, seed)
}

/// Environment variable that tells a test binary it is the child of [`run_test_in_child`].
pub const CHILD_ENV: &str = "SMALLOC_TEST_CHILD";

/// Whether this process is a child started by [`run_test_in_child`].
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// Runs the test named `test_name` of the current test binary in a child process, after the
/// shell command `setup` (for example `ulimit -v 8000000`), and returns its output.
///
/// The child sees [`CHILD_ENV`] set; the test should do its real work only then (see
/// [`is_child`]), so that in the parent the same test is just the launcher.
pub fn run_test_in_child(test_name: &str, setup: &str) -> Output {
    let exe = std::env::current_exe().expect("current test binary");
    Command::new("sh")
        .arg("-c")
        .arg(format!("{setup} && exec \"$0\" \"$@\""))
        .arg(exe)
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .output()
        .expect("spawn sh")
}

/// Panics with the child's output unless it exited successfully and really ran `test_name`.
pub fn assert_child_passed(out: &Output, test_name: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child test {test_name} failed: {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
}

/// A block handed between threads or kept by [`Churn`]: where it is, its layout, and the seed of
/// the pattern it holds.
#[derive(Debug)]
pub struct Block {
    /// Start of the block.
    pub ptr: *mut u8,
    /// The layout it was allocated (or last reallocated) with.
    pub layout: Layout,
    /// Seed of the pattern filling it.
    pub seed: u64,
}

// SAFETY: a Block is a plain description of memory from the global allocator, which any thread
// may access and free; the tests hand each block to exactly one thread at a time.
unsafe impl Send for Block {}

impl Block {
    /// Allocates `layout` from the global allocator (zeroed or not) and fills it with `seed`'s
    /// pattern. Panics if the allocator returns null or, when `zeroed`, a non-zero byte.
    pub fn new(layout: Layout, seed: u64, zeroed: bool) -> Block {
        // SAFETY: layout has non-zero size (callers use sizes >= 1); the block is then ours.
        unsafe {
            let ptr = if zeroed {
                alloc::alloc_zeroed(layout)
            } else {
                alloc::alloc(layout)
            };
            assert!(!ptr.is_null(), "allocation of {layout:?} failed");
            assert_eq!(ptr as usize % layout.align(), 0, "{layout:?} misaligned");
            if zeroed {
                let bytes = std::slice::from_raw_parts(ptr, layout.size());
                assert!(
                    bytes.iter().all(|&b| b == 0),
                    "alloc_zeroed gave dirty memory"
                );
            }
            fill_raw(ptr, layout.size(), seed);
            Block { ptr, layout, seed }
        }
    }

    /// Panics unless the block still holds its pattern.
    pub fn verify(&self) {
        // SAFETY: the block is live and layout.size() bytes long.
        if let Err(i) = unsafe { check_raw(self.ptr, self.layout.size(), self.seed) } {
            panic!(
                "block {:?} ({:?}) corrupted at byte {i}",
                self.ptr, self.layout
            );
        }
    }

    /// Verifies the block, reallocates it to `new_size`, checks the kept prefix and refills it
    /// with `seed`'s pattern.
    pub fn realloc(&mut self, new_size: usize, seed: u64) {
        self.verify();
        // SAFETY: the block is live with this layout; new_size >= 1 and rounds within isize.
        unsafe {
            let p = alloc::realloc(self.ptr, self.layout, new_size);
            assert!(!p.is_null(), "realloc to {new_size} failed");
            assert_eq!(
                p as usize % self.layout.align(),
                0,
                "realloc lost the alignment"
            );
            let kept = self.layout.size().min(new_size);
            if let Err(i) = check_raw(p, kept, self.seed) {
                panic!("realloc {:?} -> {new_size} lost byte {i}", self.layout);
            }
            self.ptr = p;
            self.layout = Layout::from_size_align_unchecked(new_size, self.layout.align());
            fill_raw(p, new_size, seed);
        }
        self.seed = seed;
    }

    /// Verifies and frees the block.
    pub fn free(self) {
        self.verify();
        // SAFETY: the block is live with this layout and is not used again.
        unsafe { alloc::dealloc(self.ptr, self.layout) };
    }
}

/// A random mix of allocations, reallocations and frees through the global allocator, checking
/// every byte it wrote before letting go of it.
pub struct Churn {
    rng: StdRng,
    live: Vec<Block>,
    max_log2: u32,
    next_seed: u64,
}

impl Churn {
    /// A churn with its own random stream, sizes up to `2^max_log2` bytes (log-uniform, so
    /// small sizes dominate as in real programs).
    pub fn new(seed: u64, max_log2: u32) -> Churn {
        Churn {
            rng: StdRng::seed_from_u64(seed),
            live: Vec::new(),
            max_log2,
            next_seed: seed << 32,
        }
    }

    fn random_layout(&mut self) -> Layout {
        let log = self.rng.gen_range(0..=self.max_log2);
        let size = self
            .rng
            .gen_range((1usize << log) / 2..=(1usize << log))
            .max(1);
        let align = match self.rng.gen_range(0..16) {
            0 => 4096,
            1..=3 => 1usize << self.rng.gen_range(0..=6),
            _ => 8,
        };
        Layout::from_size_align(size, align).unwrap()
    }

    /// Allocates a fresh block (sometimes zeroed) and keeps it.
    pub fn alloc(&mut self) {
        let layout = self.random_layout();
        let zeroed = self.rng.gen_bool(0.2);
        self.next_seed += 1;
        self.live.push(Block::new(layout, self.next_seed, zeroed));
    }

    /// Takes a random live block out (to free it here or hand it to another thread).
    pub fn take(&mut self) -> Option<Block> {
        if self.live.is_empty() {
            return None;
        }
        let i = self.rng.gen_range(0..self.live.len());
        Some(self.live.swap_remove(i))
    }

    /// Runs `ops` random operations. Keeps up to `max_live` blocks alive.
    pub fn run(&mut self, ops: usize, max_live: usize) {
        for _ in 0..ops {
            match self.rng.gen_range(0..10) {
                0..=3 if self.live.len() < max_live => self.alloc(),
                4..=5 if !self.live.is_empty() => {
                    let i = self.rng.gen_range(0..self.live.len());
                    let grow = self.rng.gen_bool(0.7);
                    let old = self.live[i].layout.size();
                    let new_size = if grow {
                        old.saturating_mul(self.rng.gen_range(2..=4))
                            .min(1 << self.max_log2)
                    } else {
                        (old / self.rng.gen_range(1..=8)).max(1)
                    };
                    self.next_seed += 1;
                    self.live[i].realloc(new_size.max(1), self.next_seed);
                }
                _ => {
                    if let Some(b) = self.take() {
                        b.free();
                    }
                }
            }
        }
    }

    /// Number of blocks alive.
    pub fn live(&self) -> usize {
        self.live.len()
    }

    /// Verifies and frees every live block.
    pub fn finish(mut self) {
        for b in self.live.drain(..) {
            b.free();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_detect_changes() {
        let mut a = vec![0u8; 4099];
        fill(&mut a, 7);
        assert!((0..a.len()).all(|i| a[i] == pattern_byte(7, i)));
        assert_eq!(check(&a, 7), Ok(()));
        assert!(check(&a, 8).is_err(), "another seed must not match");
        a[1234] ^= 1;
        assert_eq!(check(&a, 7), Err(1234));
        a[1234] ^= 1;
        a[4098] ^= 1;
        assert_eq!(check(&a, 7), Err(4098));
    }

    #[test]
    fn churn_runs_and_verifies() {
        let mut c = Churn::new(1, 16);
        c.run(5_000, 200);
        assert!(c.live() > 0);
        c.finish();
    }

    #[test]
    #[should_panic(expected = "corrupted")]
    fn a_corrupted_block_is_caught() {
        let b = Block::new(Layout::from_size_align(64, 8).unwrap(), 3, false);
        // SAFETY: the block is live and 64 bytes long.
        unsafe { *b.ptr.add(10) ^= 0xFF };
        b.verify();
    }
}
