//! Readings from Linux's `/proc`: fields of `/proc/self/status` (the resident set `VmRSS`, its
//! peak `VmHWM`, the address space `VmSize`, ...), the processors of `/proc/cpuinfo` (model name,
//! count, flags) and the kernel's release.
//!
//! Every reader goes through [`for_each_line`], which reads the file through a fixed buffer on the
//! stack: a [`status_kib`] reading allocates nothing, so taking it in the middle of a measurement
//! does not disturb the heap being measured (in smalloc's tests the global allocator is smalloc
//! itself). The parsers of single lines ([`kib_field`], [`key_value`], [`flags_line_has`]) are
//! public so that what they accept can be checked on made-up text.

use std::io::{self, Read};
use std::ops::ControlFlow;

/// The status file of the calling process.
pub const SELF_STATUS: &str = "/proc/self/status";

/// The processors' descriptions, one block of `key : value` lines per logical CPU.
pub const CPUINFO: &str = "/proc/cpuinfo";

/// The file holding the running kernel's release, one line (e.g. `6.1.0-18-amd64`).
pub const OSRELEASE: &str = "/proc/sys/kernel/osrelease";

/// The buffer [`for_each_line`] reads through. Status lines are short, and the longest line of
/// `/proc/cpuinfo`, x86's `flags`, is about 1.5 KiB; a line that does not fit is skipped whole.
const LINE_BUFFER: usize = 4096;

/// Calls `f` on every line of the file at `path` (without its `\n`) until `f` breaks with a value,
/// and returns that value (`None` if `f` never broke).
///
/// The file is read through a 4 KiB buffer on the stack and nothing is allocated, whatever the
/// file's size. Lines longer than the buffer and lines that are not UTF-8 (a process name in
/// `status` can be any bytes) are skipped.
///
/// # Errors
/// When the file cannot be opened or read.
pub fn for_each_line<T>(
    path: &str,
    f: impl FnMut(&str) -> ControlFlow<T>,
) -> io::Result<Option<T>> {
    for_each_line_in::<LINE_BUFFER, T>(std::fs::File::open(path)?, f)
}

/// [`for_each_line`] over any reader, through a buffer of `N` bytes (a small `N` lets the tests
/// put line ends on every side of a buffer boundary).
fn for_each_line_in<const N: usize, T>(
    mut reader: impl Read,
    mut f: impl FnMut(&str) -> ControlFlow<T>,
) -> io::Result<Option<T>> {
    let mut buf = [0u8; N];
    // Bytes of an unfinished line kept at the start of `buf`.
    let mut held = 0;
    // Whether the bytes coming next end a line that did not fit and was dropped.
    let mut skipping = false;
    let mut call = |line: &[u8]| match std::str::from_utf8(line) {
        Ok(line) => f(line),
        Err(_) => ControlFlow::Continue(()),
    };
    loop {
        // `held < N` here (a full buffer without a line end is dropped below), so a read of 0
        // bytes is the end of the file.
        let n = match reader.read(&mut buf[held..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let end = held + n;
        let mut start = 0;
        while let Some(i) = buf[start..end].iter().position(|&b| b == b'\n') {
            let line = &buf[start..start + i];
            start += i + 1;
            if std::mem::take(&mut skipping) {
                continue;
            }
            if let ControlFlow::Break(t) = call(line) {
                return Ok(Some(t));
            }
        }
        if n == 0 {
            // A last line without `\n` still counts.
            if start < end
                && !skipping
                && let ControlFlow::Break(t) = call(&buf[start..end])
            {
                return Ok(Some(t));
            }
            return Ok(None);
        }
        if start == 0 && end == N {
            // One line fills the whole buffer: drop it, and its rest as it comes.
            skipping = true;
            held = 0;
        } else {
            buf.copy_within(start..end, 0);
            held = end - start;
        }
    }
}

/// The number of a `/proc/PID/status` line such as `VmRSS:     1234 kB`, if `line` is the line
/// of `field` and its value is in kB.
pub fn kib_field(line: &str, field: &str) -> Option<u64> {
    let rest = line.strip_prefix(field)?.strip_prefix(':')?;
    rest.trim().strip_suffix("kB")?.trim().parse().ok()
}

/// A field of `/proc/self/status` in KiB (for example `"VmRSS"`, `"VmHWM"`, `"VmSize"`), if the
/// file can be read and has it. Allocates nothing (see [`for_each_line`]).
pub fn status_kib(field: &str) -> Option<u64> {
    for_each_line(SELF_STATUS, |line| match kib_field(line, field) {
        Some(kib) => ControlFlow::Break(kib),
        None => ControlFlow::Continue(()),
    })
    .ok()
    .flatten()
}

/// The resident set of this process (`VmRSS`), KiB. Allocates nothing.
///
/// # Panics
/// If `/proc/self/status` cannot be read or lacks `VmRSS`: a measurement without it has nothing
/// to report.
pub fn rss_kib() -> u64 {
    status_kib("VmRSS").expect("cannot read VmRSS from /proc/self/status")
}

/// The peak resident set of this process so far (`VmHWM`, the "high water mark"), KiB. Allocates
/// nothing.
///
/// # Panics
/// If `/proc/self/status` cannot be read or lacks `VmHWM`.
pub fn hwm_kib() -> u64 {
    status_kib("VmHWM").expect("cannot read VmHWM from /proc/self/status")
}

/// A `key : value` line of `/proc/cpuinfo` (the key padded with tabs), both trimmed; `None` for a
/// line without a colon (the blank lines between processors).
pub fn key_value(line: &str) -> Option<(&str, &str)> {
    let (key, value) = line.split_once(':')?;
    Some((key.trim(), value.trim()))
}

/// Whether a `flags` line of `/proc/cpuinfo` lists `flag` (as a whole word); `None` when `line`
/// is another line.
pub fn flags_line_has(line: &str, flag: &str) -> Option<bool> {
    match key_value(line)? {
        ("flags", flags) => Some(flags.split_whitespace().any(|f| f == flag)),
        _ => None,
    }
}

/// Whether the first processor's `flags` line in `/proc/cpuinfo` lists `flag` (for example
/// `constant_tsc`); `false` where the file cannot be read or has no `flags` line (not x86).
/// Allocates nothing.
pub fn cpu_has_flag(flag: &str) -> bool {
    for_each_line(CPUINFO, |line| match flags_line_has(line, flag) {
        Some(has) => ControlFlow::Break(has),
        None => ControlFlow::Continue(()),
    })
    .ok()
    .flatten()
    .unwrap_or(false)
}

/// What `/proc/cpuinfo` says about the machine's processors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuInfo {
    /// The model of the first processor listed: its `model name` (x86 and some others), else the
    /// first `cpu model` or `Hardware` line (some MIPS and ARM kernels); `None` where the file has
    /// none of them (most arm64 kernels).
    pub model: Option<String>,
    /// Processors listed (`processor` lines): the logical CPUs online, which may be more than
    /// this process is allowed to run on.
    pub processors: usize,
}

impl CpuInfo {
    /// Reads `/proc/cpuinfo`.
    ///
    /// # Errors
    /// When the file cannot be read.
    pub fn read() -> io::Result<CpuInfo> {
        let mut parser = CpuInfoParser::default();
        for_each_line(CPUINFO, |line| {
            parser.line(line);
            ControlFlow::<()>::Continue(())
        })?;
        Ok(parser.finish())
    }

    /// Parses the text of a `/proc/cpuinfo`.
    pub fn parse(text: &str) -> CpuInfo {
        let mut parser = CpuInfoParser::default();
        text.lines().for_each(|line| parser.line(line));
        parser.finish()
    }
}

/// A [`CpuInfo`] under construction, line by line.
#[derive(Default)]
struct CpuInfoParser {
    info: CpuInfo,
    /// The first `cpu model` or `Hardware` value, for when there is no `model name`.
    fallback: Option<String>,
}

impl CpuInfoParser {
    fn line(&mut self, line: &str) {
        let Some((key, value)) = key_value(line) else {
            return;
        };
        match key {
            "processor" => self.info.processors += 1,
            "model name" if self.info.model.is_none() => self.info.model = Some(value.into()),
            "cpu model" | "Hardware" if self.fallback.is_none() => {
                self.fallback = Some(value.into())
            }
            _ => {}
        }
    }

    fn finish(mut self) -> CpuInfo {
        self.info.model = self.info.model.or(self.fallback);
        self.info
    }
}

/// The running kernel's release (as `uname -r` prints it), if `/proc` has it.
pub fn kernel_release() -> Option<String> {
    for_each_line(OSRELEASE, |line| {
        ControlFlow::Break(line.trim().to_string())
    })
    .ok()
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line of `text` as [`for_each_line_in`] with an `N`-byte buffer hands them out.
    fn lines_through<const N: usize>(text: &[u8]) -> Vec<String> {
        let mut v = Vec::new();
        let r = for_each_line_in::<N, ()>(text, |line| {
            v.push(line.to_string());
            ControlFlow::Continue(())
        });
        assert_eq!(r.unwrap(), None);
        v
    }

    #[test]
    fn lines_come_whole_across_buffer_boundaries() {
        let text = "a\nbc\n\ndefgh\nij\nklmnop\nq";
        let expected: Vec<&str> = text.lines().collect();
        // 8 bytes: every line fits, and line ends fall at every offset of some read.
        assert_eq!(lines_through::<8>(text.as_bytes()), expected);
        assert_eq!(lines_through::<4096>(text.as_bytes()), expected);
        assert_eq!(lines_through::<8>(b"abc\n"), ["abc"]);
        assert!(lines_through::<8>(b"").is_empty());
    }

    #[test]
    fn lines_too_long_or_not_utf8_are_skipped() {
        // The second line fills an 8-byte buffer without its end, twice over.
        let text = b"ab\n0123456789abcdefghij\ncd\n\xff\xfe\nef";
        assert_eq!(lines_through::<8>(text), ["ab", "cd", "ef"]);
        // A line of exactly the buffer's size, without room for its `\n`, is too long as well.
        assert_eq!(lines_through::<4>(b"abcd\nxy\n"), ["xy"]);
    }

    #[test]
    fn the_first_break_ends_the_reading() {
        let mut seen = 0;
        let r = for_each_line_in::<8, usize>(&b"x\ny\nfound\nz\n"[..], |line| {
            seen += 1;
            if line == "found" {
                ControlFlow::Break(seen)
            } else {
                ControlFlow::Continue(())
            }
        });
        assert_eq!(r.unwrap(), Some(3));
    }

    #[test]
    fn status_lines_give_their_kib() {
        assert_eq!(kib_field("VmRSS:\t    1234 kB", "VmRSS"), Some(1234));
        assert_eq!(kib_field("VmHWM: 7 kB", "VmHWM"), Some(7));
        // Another field, one whose name only starts the same way, a value without its unit.
        assert_eq!(kib_field("VmRSS:\t1234 kB", "VmHWM"), None);
        assert_eq!(kib_field("VmRSSX:\t1234 kB", "VmRSS"), None);
        assert_eq!(kib_field("Threads:\t5", "Threads"), None);
        assert_eq!(kib_field("VmRSS:\tlots kB", "VmRSS"), None);
    }

    #[test]
    fn status_of_this_process_has_its_sizes() {
        let rss = status_kib("VmRSS").unwrap();
        assert!(rss > 0);
        assert!(status_kib("VmSize").unwrap() >= rss);
        assert!(hwm_kib() >= rss);
        assert_eq!(status_kib("Threads"), None, "not a kB field");
        assert_eq!(status_kib("NoSuchField"), None);
    }

    #[test]
    fn rss_grows_when_memory_is_touched() {
        let before = rss_kib();
        let mut v = vec![0u8; 64 << 20];
        for i in (0..v.len()).step_by(4096) {
            v[i] = 1;
        }
        std::hint::black_box(&v);
        let after = rss_kib();
        assert!(after >= before + 60 * 1024, "{before} -> {after} KiB");
        assert!(hwm_kib() >= after);
    }

    /// Two processors as an x86 kernel lists them (shortened).
    const X86: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) \
                       CPU @ 2.20GHz\nflags\t\t: fpu tsc constant_tsc sse2\n\nprocessor\t: 1\n\
                       model name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\nflags\t\t: fpu tsc \
                       constant_tsc sse2\n";

    #[test]
    fn cpuinfo_gives_the_model_and_the_processors() {
        let info = CpuInfo::parse(X86);
        assert_eq!(
            info.model.as_deref(),
            Some("Intel(R) Xeon(R) CPU @ 2.20GHz")
        );
        assert_eq!(info.processors, 2);
        // arm64 kernels name no model; some name the board, after the processors.
        let arm = "processor\t: 0\nBogoMIPS\t: 50.00\nCPU part\t: 0xd0c\n\nprocessor\t: 1\n";
        assert_eq!(
            CpuInfo::parse(arm),
            CpuInfo {
                model: None,
                processors: 2
            }
        );
        let board = format!("{arm}\nHardware\t: BCM2835\n");
        assert_eq!(CpuInfo::parse(&board).model.as_deref(), Some("BCM2835"));
        let both = format!("{board}model name\t: ARMv7 Processor rev 4 (v7l)\n");
        assert_eq!(
            CpuInfo::parse(&both).model.as_deref(),
            Some("ARMv7 Processor rev 4 (v7l)"),
            "a model name wins over the board"
        );
    }

    #[test]
    fn flags_are_whole_words_of_the_flags_line() {
        let flags = X86.lines().find(|l| l.starts_with("flags")).unwrap();
        assert_eq!(flags_line_has(flags, "constant_tsc"), Some(true));
        assert_eq!(flags_line_has(flags, "fpu"), Some(true));
        assert_eq!(
            flags_line_has(flags, "constant"),
            Some(false),
            "part of a flag"
        );
        assert_eq!(
            flags_line_has("model name\t: constant_tsc", "constant_tsc"),
            None
        );
    }

    #[test]
    fn this_machine_has_processors_and_a_kernel() {
        let info = CpuInfo::read().unwrap();
        let available = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert!(
            info.processors >= available,
            "{info:?}, {available} available"
        );
        assert!(!kernel_release().unwrap().is_empty());
        #[cfg(target_arch = "x86_64")]
        assert!(cpu_has_flag("fpu"), "every x86_64 CPU has an FPU");
        assert!(!cpu_has_flag("no_such_flag"));
    }
}
