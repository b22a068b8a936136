//! What the calling thread has used of the machine so far: CPU time in
//! user mode and in the kernel, and minor page faults
//! (`getrusage(RUSAGE_THREAD)`, Linux; zero elsewhere). Each offline worker
//! reads it at its start and once its flows are flushed, so a run's
//! timeline says what every worker cost, not only the process's total
//! (`docs/performance.md`: two workers against one).

use std::time::Duration;

/// A thread's usage so far, or the difference of two readings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadUsage {
    /// CPU time in user mode.
    pub user: Duration,
    /// CPU time in the kernel (page faults, `madvise`, waking threads).
    pub system: Duration,
    /// Minor page faults (a page mapped without reading the disk).
    pub minor_faults: u64,
}

impl ThreadUsage {
    /// The calling thread's usage so far.
    pub fn now() -> ThreadUsage {
        #[cfg(target_os = "linux")]
        {
            let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
            // SAFETY: getrusage writes one `rusage` into the pointer it is
            // given, which points at a zeroed one of that type.
            if unsafe { libc::getrusage(libc::RUSAGE_THREAD, ru.as_mut_ptr()) } == 0 {
                // SAFETY: zeroed, then filled by a successful getrusage.
                let ru = unsafe { ru.assume_init() };
                let time = |t: libc::timeval| {
                    Duration::from_secs(t.tv_sec.max(0) as u64)
                        + Duration::from_micros(t.tv_usec.max(0) as u64)
                };
                return ThreadUsage {
                    user: time(ru.ru_utime),
                    system: time(ru.ru_stime),
                    minor_faults: ru.ru_minflt.max(0) as u64,
                };
            }
        }
        ThreadUsage::default()
    }

    /// The usage since `earlier`, a reading of the same thread.
    pub fn since(self, earlier: ThreadUsage) -> ThreadUsage {
        ThreadUsage {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
            minor_faults: self.minor_faults.saturating_sub(earlier.minor_faults),
        }
    }

    /// User and kernel CPU time together.
    pub fn cpu(&self) -> Duration {
        self.user + self.system
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_thread_uses_cpu_time_and_faults_fresh_pages() {
        let before = ThreadUsage::now();
        // Fresh anonymous pages of a mapping of its own (not memory the
        // allocator may have touched before), each written once: a minor
        // fault apiece.
        let mut pages = memmap2::MmapMut::map_anon(4 << 20).expect("anonymous map");
        #[cfg(target_os = "linux")]
        pages
            .advise(memmap2::Advice::NoHugePage)
            .expect("no huge pages");
        for p in pages.iter_mut().step_by(4096) {
            *p = 1;
        }
        // Work the thread's clock must show, however loaded the machine.
        let mut x = 0u64;
        for _ in 0..20_000_000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let used = ThreadUsage::now().since(before);
        assert_eq!(pages.iter().map(|&b| u64::from(b)).sum::<u64>(), 1024);
        if cfg!(target_os = "linux") {
            assert!(used.cpu() > Duration::ZERO, "{used:?}");
            assert!(used.minor_faults >= 512, "{used:?}");
        }
    }
}
