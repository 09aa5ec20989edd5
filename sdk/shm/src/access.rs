//! The lossy buffer of shared-memory hits that an SDK reports with RecordAccess.
//!
//! Each hit claims a position in a ring with one atomic add and stores its ref there;
//! the flusher takes what it finds. When hits outrun the flushes the oldest refs are
//! overwritten: the sidecar's policy needs a fair sample of the hot keys, not every hit,
//! and reporting every hit of a tens-of-nanoseconds read loop would cost the sidecar
//! more than the reads. The count of hits stays exact (RecordAccess's unreported count
//! carries the hits the refs do not name).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

/// Refs one stripe holds between two flushes.
pub const RING_SLOTS: usize = 256;
/// Stripes at most: a flush then stays within RecordAccess's limit of 65536 refs.
const MAX_STRIPES: usize = 64;

#[repr(C, align(64))]
struct Stripe {
    head: AtomicU64, // positions claimed; the sum over stripes is the hit count
    _pad: [u64; 7],
    slots: [AtomicU64; RING_SLOTS],
}

pub(crate) struct AccessBuffer {
    stripes: Box<[Stripe]>,
    mask: usize,
    full: AtomicBool,
    flusher: Mutex<Flusher>,
    dropped: AtomicU64,
}

struct Flusher {
    tails: Vec<u64>,
    accounted: u64, // hits counted at the last drain
}

thread_local! {
    // Each thread keeps to one stripe, so concurrent readers of one hot key mostly
    // write different cache lines.
    static STRIPE: Cell<u32> = const { Cell::new(u32::MAX) };
}
static NEXT_STRIPE: AtomicU32 = AtomicU32::new(0);

fn stripe_index() -> usize {
    STRIPE.with(|s| {
        let mut i = s.get();
        if i == u32::MAX {
            i = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed);
            s.set(i);
        }
        i as usize
    })
}

impl AccessBuffer {
    pub(crate) fn new() -> AccessBuffer {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let n = (2 * cpus).next_power_of_two().min(MAX_STRIPES);
        let stripes = (0..n)
            .map(|_| Stripe {
                head: AtomicU64::new(0),
                _pad: [0; 7],
                slots: std::array::from_fn(|_| AtomicU64::new(0)),
            })
            .collect();
        AccessBuffer {
            stripes,
            mask: n - 1,
            full: AtomicBool::new(false),
            flusher: Mutex::new(Flusher { tails: vec![0; n], accounted: 0 }),
            dropped: AtomicU64::new(0),
        }
    }

    /// Notes one hit. Never blocks, never allocates.
    #[inline]
    pub(crate) fn record(&self, r: u64) {
        let s = &self.stripes[stripe_index() & self.mask];
        let i = s.head.fetch_add(1, Ordering::Relaxed);
        let slot = &s.slots[i as usize % RING_SLOTS];
        // A hot key finds its ref already there from the last lap: skip the store.
        if slot.load(Ordering::Relaxed) != r {
            slot.store(r, Ordering::Relaxed);
        }
        if i as usize % (RING_SLOTS / 2) == RING_SLOTS / 2 - 1 {
            self.full.store(true, Ordering::Relaxed);
        }
    }

    /// Whether a stripe filled half its ring since the last drain: flush soon.
    pub(crate) fn pending(&self) -> bool {
        self.full.load(Ordering::Relaxed)
    }

    /// Hits recorded so far.
    pub(crate) fn hits(&self) -> u64 {
        self.stripes.iter().map(|s| s.head.load(Ordering::Relaxed)).sum()
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Appends the refs recorded since the last drain to dst and returns the number of
    /// hits since then that they do not name. A reader that claimed a position but has
    /// not stored its ref yet leaves a zero, which is skipped.
    pub(crate) fn drain(&self, dst: &mut Vec<u64>) -> u64 {
        let mut f = self.flusher.lock().unwrap_or_else(|e| e.into_inner());
        self.full.store(false, Ordering::Relaxed);
        let before = dst.len();
        let mut total = 0;
        for (s, tail) in self.stripes.iter().zip(f.tails.iter_mut()) {
            let h = s.head.load(Ordering::Acquire);
            total += h;
            let mut t = *tail;
            if h - t > RING_SLOTS as u64 {
                self.dropped.fetch_add(h - t - RING_SLOTS as u64, Ordering::Relaxed);
                t = h - RING_SLOTS as u64;
            }
            while t < h {
                let r = s.slots[t as usize % RING_SLOTS].swap(0, Ordering::Relaxed);
                if r != 0 {
                    dst.push(r);
                }
                t += 1;
            }
            *tail = h;
        }
        let named = (dst.len() - before) as u64;
        // A ref stored after its hit was counted leaves nothing missing.
        let unreported = total.saturating_sub(f.accounted + named);
        f.accounted = total;
        unreported
    }

    /// Counts refs that were drained but could not be delivered.
    pub(crate) fn lost(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_counts_every_hit() {
        let a = AccessBuffer::new();
        for i in 1..=10u64 {
            a.record(i);
        }
        let mut refs = Vec::new();
        assert_eq!(a.drain(&mut refs), 0);
        assert_eq!(refs, (1..=10).collect::<Vec<_>>());
        // A lap and a half of one ref: the ring keeps at most a lap, the rest is counted.
        let n = RING_SLOTS as u64 * 3 / 2;
        for _ in 0..n {
            a.record(7);
        }
        assert!(a.pending(), "a stripe filled half its ring");
        refs.clear();
        let unreported = a.drain(&mut refs);
        assert!(!a.pending());
        assert!(refs.len() <= RING_SLOTS, "{} refs", refs.len());
        assert!(refs.iter().all(|&r| r == 7));
        assert_eq!(refs.len() as u64 + unreported, n);
        refs.clear();
        assert_eq!(a.drain(&mut refs), 0);
        assert!(refs.is_empty());
    }

    #[test]
    fn concurrent_hits_all_counted() {
        let a = std::sync::Arc::new(AccessBuffer::new());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let a = a.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000u64 {
                        a.record(t * 100_000 + i + 1);
                    }
                })
            })
            .collect();
        let mut refs = Vec::new();
        let mut counted = 0;
        for _ in 0..50 {
            counted += a.drain(&mut refs);
        }
        for t in threads {
            t.join().unwrap();
        }
        counted += a.drain(&mut refs);
        assert_eq!(a.hits(), 40_000);
        assert!(refs.iter().all(|&r| r % 100_000 >= 1 && r % 100_000 <= 10_000 && r / 100_000 < 4));
        // A drain that races a hit may miss its ref (the slot is claimed, not yet
        // stored) or name it a lap later: the report is a sample, its count near exact.
        let reported = counted + refs.len() as u64;
        assert!(reported.abs_diff(40_000) <= 400, "{reported} hits reported");
    }
}
