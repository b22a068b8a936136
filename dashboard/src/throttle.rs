//! Sign-in under attack: failed sign-ins limited per client address, a
//! backoff per name *and* address (so guessing a name from one address
//! never locks its owner out at another), and a budget for password
//! hashing (argon2 takes about 19 MiB and a core's time per try).
//!
//! State is per process and bounded: entries end with their window or
//! backoff and are pruned; at most [`MAX_KEYS`] are kept per map, and a
//! client that would need a new entry beyond that is refused (deny by
//! default) until old ones expire.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Most addresses, and most (name, address) pairs, tracked at once.
pub const MAX_KEYS: usize = 100_000;

/// The window failed sign-ins per address are counted in.
const WINDOW: Duration = Duration::from_secs(60);

/// Longest name kept as a key (valid names are shorter).
const MAX_NAME_CHARS: usize = 64;

/// Why a sign-in may not be tried now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Too many failures (from this address, or for this name from this
    /// address): try again after this long.
    Throttled(Duration),
    /// Every password-hashing slot is taken and the queue is full.
    Busy,
}

struct Window {
    start: Instant,
    failures: u32,
}

struct Backoff {
    failures: u32,
    until: Instant,
}

/// The sign-in limits of one server.
pub struct LoginGuard {
    per_minute: u32,
    backoff_max: Duration,
    by_address: Mutex<HashMap<IpAddr, Window>>,
    by_name: Mutex<HashMap<(String, IpAddr), Backoff>>,
    slots: Arc<Semaphore>,
    queue: usize,
    waiting: Arc<AtomicUsize>,
}

/// A place in the password-hashing queue; leaving it (even by a cancelled
/// request) frees it.
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn name_key(name: &str, addr: IpAddr) -> (String, IpAddr) {
    (name.chars().take(MAX_NAME_CHARS).collect(), addr)
}

impl LoginGuard {
    /// Limits: `per_minute` failed sign-ins per address, backoff per name
    /// and address up to `backoff_max`, `concurrency` hashes at once with
    /// `queue` more waiting.
    pub fn new(per_minute: u32, backoff_max: Duration, concurrency: usize, queue: usize) -> Self {
        LoginGuard {
            per_minute: per_minute.max(1),
            backoff_max: backoff_max.max(Duration::from_secs(1)),
            by_address: Mutex::new(HashMap::new()),
            by_name: Mutex::new(HashMap::new()),
            slots: Arc::new(Semaphore::new(concurrency.clamp(1, Semaphore::MAX_PERMITS))),
            queue,
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Whether `name` may be tried from `addr` now.
    pub fn check(&self, addr: IpAddr, name: &str) -> Result<(), Refusal> {
        let now = Instant::now();
        let full = || Refusal::Throttled(WINDOW);
        {
            let mut map = self.by_address.lock().map_err(|_| full())?;
            if let Some(w) = map.get(&addr)
                && now < w.start + WINDOW
                && w.failures >= self.per_minute
            {
                return Err(Refusal::Throttled(w.start + WINDOW - now));
            }
            if !map.contains_key(&addr) && map.len() >= MAX_KEYS {
                map.retain(|_, w| now < w.start + WINDOW);
                if map.len() >= MAX_KEYS {
                    return Err(full());
                }
            }
        }
        let map = self.by_name.lock().map_err(|_| full())?;
        if let Some(b) = map.get(&name_key(name, addr))
            && now < b.until
        {
            return Err(Refusal::Throttled(b.until - now));
        }
        Ok(())
    }

    /// Record a failed sign-in for `name` from `addr`.
    pub fn failed(&self, addr: IpAddr, name: &str) {
        let now = Instant::now();
        if let Ok(mut map) = self.by_address.lock() {
            let w = map.entry(addr).or_insert(Window {
                start: now,
                failures: 0,
            });
            if now >= w.start + WINDOW {
                *w = Window {
                    start: now,
                    failures: 0,
                };
            }
            w.failures = w.failures.saturating_add(1);
        }
        if let Ok(mut map) = self.by_name.lock() {
            let key = name_key(name, addr);
            if !map.contains_key(&key) && map.len() >= MAX_KEYS {
                let max = self.backoff_max;
                map.retain(|_, b| now < b.until + max);
            }
            if map.len() < MAX_KEYS || map.contains_key(&key) {
                let b = map.entry(key).or_insert(Backoff {
                    failures: 0,
                    until: now,
                });
                b.failures = b.failures.saturating_add(1);
                let wait = Duration::from_secs(1u64 << (b.failures - 1).min(30));
                b.until = now + wait.min(self.backoff_max);
            }
        }
    }

    /// Record a successful sign-in: that name's backoff at that address ends.
    pub fn succeeded(&self, addr: IpAddr, name: &str) {
        if let Ok(mut map) = self.by_name.lock() {
            map.remove(&name_key(name, addr));
        }
    }

    /// A password-hashing slot, waiting for one if the queue has room;
    /// `Busy` when it has none. Hold the permit for as long as the hash runs.
    pub async fn hash_slot(&self) -> Result<OwnedSemaphorePermit, Refusal> {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok(p);
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(Refusal::Busy);
        }
        let _place = Waiting(self.waiting.clone());
        self.slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Refusal::Busy)
    }

    /// Forget windows and backoffs that have ended (and, for backoffs,
    /// stayed quiet as long again).
    pub fn prune(&self) {
        let now = Instant::now();
        if let Ok(mut map) = self.by_address.lock() {
            map.retain(|_, w| now < w.start + WINDOW);
            map.shrink_to_fit();
        }
        if let Ok(mut map) = self.by_name.lock() {
            let max = self.backoff_max;
            map.retain(|_, b| now < b.until + max);
            map.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_per_name_and_address() {
        let g = LoginGuard::new(100, Duration::from_secs(900), 1, 0);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert_eq!(g.check(a, "ana"), Ok(()));
        g.failed(a, "ana");
        assert!(matches!(g.check(a, "ana"), Err(Refusal::Throttled(_))));
        assert_eq!(g.check(b, "ana"), Ok(()));
        assert_eq!(g.check(a, "bob"), Ok(()));
        g.succeeded(a, "ana");
        assert_eq!(g.check(a, "ana"), Ok(()));
    }

    #[test]
    fn failures_per_address_are_limited() {
        let g = LoginGuard::new(3, Duration::from_secs(1), 1, 0);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for i in 0..3 {
            assert_eq!(g.check(a, &format!("n{i}")), Ok(()));
            g.failed(a, &format!("n{i}"));
        }
        assert!(matches!(g.check(a, "new"), Err(Refusal::Throttled(_))));
        assert_eq!(g.check("10.0.0.2".parse().unwrap(), "new"), Ok(()));
    }
}
