//! Hands freed heap pages back to the system. glibc keeps memory a burst
//! of connections freed (fragmented among long-lived allocations) in its
//! arenas, so after an attack the daemon's RSS would stay at its peak;
//! `malloc_trim(0)` releases every free page. The tick calls it after the
//! buffer budget or the connection count has dropped a lot, at most once a
//! second: it walks the heap (~1 ms for tens of MB).
#![allow(unsafe_code)]

/// Releases free heap pages to the system (glibc); a no-op elsewhere.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn release_free_memory() {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> core::ffi::c_int;
    }
    // SAFETY: glibc's malloc_trim takes a byte count, touches only the
    // allocator's own free lists (under the allocator's locks) and is
    // documented MT-safe; Rust's global allocator is this malloc, so it
    // frees nothing Rust still owns. Tested below.
    unsafe {
        malloc_trim(0);
    }
}

/// Releases free heap pages to the system (glibc); a no-op elsewhere.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn release_free_memory() {}

/// When to trim: after the buffer bytes or the open connections fell well
/// below their high-water mark since the last trim.
#[derive(Debug, Default)]
pub(crate) struct TrimPolicy {
    buffer_high: usize,
    conns_high: i64,
}

/// A drop in buffer bytes worth a trim.
const BUFFER_DROP: usize = 1 << 20;
/// A drop in open connections worth a trim (each freed a few KB of task,
/// session and queue).
const CONN_DROP: i64 = 256;

impl TrimPolicy {
    /// Notes the current figures; `true` when it is time to trim.
    pub(crate) fn due(&mut self, buffer_bytes: usize, conns: i64) -> bool {
        self.buffer_high = self.buffer_high.max(buffer_bytes);
        self.conns_high = self.conns_high.max(conns);
        let due =
            self.buffer_high - buffer_bytes >= BUFFER_DROP || self.conns_high - conns >= CONN_DROP;
        if due {
            self.buffer_high = buffer_bytes;
            self.conns_high = conns;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_after_big_drops_only() {
        let mut p = TrimPolicy::default();
        assert!(!p.due(0, 0));
        assert!(!p.due(5 << 20, 100));
        assert!(!p.due(5 << 20, 50));
        assert!(p.due(3 << 20, 50));
        // The mark was reset to the new level.
        assert!(!p.due(3 << 20, 50));
        assert!(!p.due(3 << 20, 300));
        assert!(p.due(3 << 20, 10));
    }

    fn rss_kb() -> u64 {
        let s = std::fs::read_to_string("/proc/self/status").unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap()
    }

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn freed_pages_go_back_to_the_system() {
        // 64 MB in 16 KB buffers with small live allocations between them
        // (as sockets leave them), then all buffers freed: without a trim
        // glibc keeps the pages; with it, RSS falls back.
        let mut keep = Vec::new();
        let mut bufs = Vec::new();
        for i in 0..4096u32 {
            bufs.push(vec![i as u8; 16 * 1024]);
            keep.push(Box::new(i));
        }
        let full = rss_kb();
        drop(bufs);
        release_free_memory();
        let after = rss_kb();
        assert!(
            full - after > 32 * 1024,
            "RSS {full} kB full, {after} kB after the trim"
        );
        assert_eq!(
            keep.iter().map(|b| u64::from(**b)).sum::<u64>(),
            4095 * 4096 / 2
        );
    }
}
