//! The reader an SDK holds: which segment, if any, lookups read, kept fresh by
//! periodic checks, with the hits it served buffered for RecordAccess.

use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::access::AccessBuffer;
use crate::layout::MAX_LAG_MS;
use crate::segment::{probe, unix_ms, Fallback, OpenError, Ref, Segment};

/// The check interval of the Go SDK, and of every SDK built on this crate.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_millis(20);
/// How far the writer's clock may lag real time before its segment counts as stale.
pub const DEFAULT_MAX_LAG: Duration = Duration::from_millis(MAX_LAG_MS as u64);
/// How often hits are reported with RecordAccess.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_millis(50);
/// The default segment directory, when neither an option nor CACHEE_SHM names one.
pub const DEFAULT_SHM_DIR: &str = "/dev/shm/cachee";

/// Backoffs after a failure that cost a mapping: a dropped mapping keeps its address
/// range reserved (see [`Reader`]), so mapping in a tight loop would eat address space.
const MIN_MAP_BACKOFF: Duration = Duration::from_millis(100);
const MAX_MAP_BACKOFF: Duration = Duration::from_secs(5);
const MAX_VERIFY_WAIT: Duration = Duration::from_secs(1);

/// The segment directory an SDK uses: the explicit option, else `CACHEE_SHM` (set and
/// empty turns shared memory off: `None`), else `/dev/shm/cachee`.
pub fn resolve_dir(explicit: Option<&Path>) -> Option<PathBuf> {
    resolve_dir_from(explicit, |k| std::env::var_os(k))
}

/// [`resolve_dir`] over any lookup of environment variables.
pub fn resolve_dir_from(explicit: Option<&Path>, var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    if let Some(d) = explicit {
        return (!d.as_os_str().is_empty()).then(|| d.to_path_buf());
    }
    match var("CACHEE_SHM") {
        Some(d) if d.is_empty() => None,
        Some(d) => Some(PathBuf::from(d)),
        None => Some(PathBuf::from(DEFAULT_SHM_DIR)),
    }
}

/// How a [`Reader`] decides when a segment may be read.
#[derive(Debug, Clone)]
pub struct ReaderOptions {
    /// The directory that holds `cachee.seg` (the sidecar's `--shm`).
    pub dir: PathBuf,
    /// How often [`Reader::maintain`] is meant to run (default 20 ms); it paces the
    /// backoffs.
    pub check_interval: Duration,
    /// The largest lag of the writer's clock behind real time (default 500 ms).
    pub max_lag: Duration,
    /// Whether a segment is read only after the SDK confirmed its generation with the
    /// sidecar's Stats ([`Step::Confirm`]); default true. Turn it off only where no
    /// sidecar connection exists (a segment-only cache).
    pub confirm: bool,
}

impl ReaderOptions {
    /// The defaults, for the segment in dir.
    pub fn new(dir: impl Into<PathBuf>) -> ReaderOptions {
        ReaderOptions {
            dir: dir.into(),
            check_interval: DEFAULT_CHECK_INTERVAL,
            max_lag: DEFAULT_MAX_LAG,
            confirm: true,
        }
    }
}

/// What [`Reader::maintain`] asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do until the next check.
    Idle,
    /// Ask the sidecar for its generation (gRPC Stats) and pass the answer to
    /// [`Reader::confirm`]: the segment is read only if it is the sidecar's own.
    Confirm(u64),
}

/// What a [`Reader`] is doing, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// The generation of the segment lookups read, if any.
    pub generation: Option<u64>,
    /// Why no segment is read, or why the last one was dropped.
    pub reason: Option<String>,
    /// Segments published since the reader was made.
    pub maps: u64,
    /// Segments dropped as stale.
    pub drops: u64,
    /// Hits served from the segment.
    pub hits: u64,
    /// Refs of hits that never reached the sidecar (overwritten, or a failed report).
    pub dropped_refs: u64,
}

struct Watch {
    held: Option<NonNull<Segment>>, // published in current
    cand: Option<Box<Segment>>,     // mapped and checked, awaiting confirmation
    retired: Vec<NonNull<Segment>>, // blanked; freed when the Reader is dropped
    asked: Option<u64>,             // the generation a Confirm step is out for
    next_map: Option<Instant>,
    map_backoff: Duration,
    next_verify: Option<Instant>,
    verify_wait: Duration,
    reason: Option<String>,
    maps: u64,
    drops: u64,
    closed: bool,
}

/// The segment reader an SDK holds, shared by every thread.
///
/// Lookups load the published segment with one atomic load and read it lock-free; on a
/// hit the ref goes into a lossy buffer that the SDK drains ([`Reader::drain_hits`]) and
/// reports with RecordAccess. Everything else happens in [`Reader::maintain`], which the
/// SDK calls every [`ReaderOptions::check_interval`] (and soon after
/// [`Reader::wants_check`] turns true): it drops a stale segment (clock lag, file
/// replaced, lock free, state not active, new generation) and maps and confirms the next
/// one, with backoff.
///
/// A dropped segment is never unmapped while the Reader lives: its pages are replaced by
/// zero pages, so a lookup still running on it reads zeros (stale, or corrupt, and the
/// caller asks the sidecar) instead of faulting.
pub struct Reader {
    opts: ReaderOptions,
    current: AtomicPtr<Segment>,
    wake: AtomicBool,
    access: AccessBuffer,
    w: Mutex<Watch>,
}

// The raw segment pointers are owned by the Reader and only freed in Drop.
unsafe impl Send for Reader {}
unsafe impl Sync for Reader {}

impl Reader {
    /// A reader of the segment in opts.dir. It maps nothing until [`Reader::maintain`].
    pub fn new(opts: ReaderOptions) -> Reader {
        Reader {
            opts,
            current: AtomicPtr::new(std::ptr::null_mut()),
            wake: AtomicBool::new(false),
            access: AccessBuffer::new(),
            w: Mutex::new(Watch {
                held: None,
                cand: None,
                retired: Vec::new(),
                asked: None,
                next_map: None,
                map_backoff: Duration::ZERO,
                next_verify: None,
                verify_wait: Duration::ZERO,
                reason: None,
                maps: 0,
                drops: 0,
                closed: false,
            }),
        }
    }

    /// The options the reader was made with.
    pub fn options(&self) -> &ReaderOptions {
        &self.opts
    }

    #[inline(always)]
    fn segment(&self) -> Option<&Segment> {
        // SAFETY: a published pointer stays valid until the Reader is dropped.
        unsafe { self.current.load(Ordering::Acquire).as_ref() }
    }

    #[inline(always)]
    fn outcome<T>(&self, r: Result<(T, Ref), Fallback>) -> Result<(T, Ref), Fallback> {
        match &r {
            Ok((_, rf)) => self.access.record(*rf),
            Err(Fallback::Stale) => self.wake.store(true, Ordering::Relaxed),
            Err(_) => {}
        }
        r
    }

    /// Looks key up in the published segment and, on a hit, calls f with a copy of the
    /// value that allocates nothing (see [`Segment::get_with`]). The hit is recorded
    /// for RecordAccess.
    #[inline]
    pub fn get_with<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<R, Fallback> {
        let Some(seg) = self.segment() else { return Err(Fallback::NoSegment) };
        self.outcome(seg.get_with(key, f)).map(|(v, _)| v)
    }

    /// Looks key up and appends its value to out on a hit (out grows only when short of
    /// room).
    #[inline]
    pub fn get_into(&self, key: &[u8], out: &mut Vec<u8>) -> Result<(), Fallback> {
        let Some(seg) = self.segment() else { return Err(Fallback::NoSegment) };
        self.outcome(seg.get_into(key, out).map(|r| ((), r))).map(|_| ())
    }

    /// Looks key up and copies its value into buf, returning its length;
    /// [`Fallback::BufferTooSmall`] gives the length of a value that does not fit.
    #[inline]
    pub fn get_to_slice(&self, key: &[u8], buf: &mut [u8]) -> Result<usize, Fallback> {
        let Some(seg) = self.segment() else { return Err(Fallback::NoSegment) };
        self.outcome(seg.get_to_slice(key, buf)).map(|(n, _)| n)
    }

    /// Whether a lookup found the segment stale since the last maintain: call it now
    /// rather than at the next interval.
    pub fn wants_check(&self) -> bool {
        self.wake.load(Ordering::Relaxed)
    }

    /// Checks the published segment, or works toward publishing one. Call it every
    /// check interval, from one task or thread at a time (calls are serialized).
    pub fn maintain(&self) -> Step {
        self.wake.store(false, Ordering::Relaxed);
        let mut w = self.w.lock().unwrap_or_else(|e| e.into_inner());
        if w.closed {
            return Step::Idle;
        }
        let now = Instant::now();
        if let Some(held) = w.held {
            // SAFETY: held is alive until Drop.
            let seg = unsafe { held.as_ref() };
            match seg.check(self.opts.max_lag, unix_ms()) {
                Ok(()) => return Step::Idle,
                Err(e) => {
                    self.unpublish(&mut w);
                    w.drops += 1;
                    w.reason = Some(format!("stopped reading shared memory: {e}"));
                }
            }
        }
        if w.cand.is_none() {
            if w.next_map.is_some_and(|t| now < t) {
                return Step::Idle;
            }
            if let Err(e) = probe(&self.opts.dir) {
                w.reason = Some(e.to_string());
                return Step::Idle;
            }
            match Segment::open(&self.opts.dir) {
                Ok(s) => w.cand = Some(Box::new(s)),
                Err(e) => {
                    map_failed(&mut w, now, e);
                    return Step::Idle;
                }
            }
        }
        let cand = w.cand.as_ref().expect("a candidate");
        if let Err(e) = cand.check(self.opts.max_lag, unix_ms()) {
            // Never published: nobody can be reading it, so it is unmapped at once.
            w.cand = None;
            w.asked = None;
            map_failed(&mut w, now, e);
            return Step::Idle;
        }
        let gen = cand.generation();
        if !self.opts.confirm {
            self.publish(&mut w);
            return Step::Idle;
        }
        if w.asked == Some(gen) || w.next_verify.is_some_and(|t| now < t) {
            return Step::Idle;
        }
        w.asked = Some(gen);
        Step::Confirm(gen)
    }

    /// The sidecar's answer to [`Step::Confirm`]: its Stats generation, or why it could
    /// not be asked. The segment is published only if the generations are equal, so that
    /// shared-memory reads and gRPC calls reach the same store.
    pub fn confirm(&self, generation: u64, sidecar: Result<u64, String>) {
        let mut w = self.w.lock().unwrap_or_else(|e| e.into_inner());
        if w.asked != Some(generation) {
            return; // an answer about a segment since dropped
        }
        w.asked = None;
        let Some(cand) = w.cand.as_ref() else { return };
        if cand.generation() != generation {
            return;
        }
        let failure = match sidecar {
            Ok(g) if g == generation => None,
            Ok(g) => Some(format!(
                "segment {} has generation {generation:016x} but the sidecar reports {g:016x}: not its segment (yet)",
                cand.path().display()
            )),
            Err(e) => Some(format!("cannot confirm the segment with the sidecar: {e}")),
        };
        if let Some(f) = failure {
            w.verify_wait = (2 * w.verify_wait).clamp(self.opts.check_interval, MAX_VERIFY_WAIT);
            w.next_verify = Some(Instant::now() + w.verify_wait);
            w.reason = Some(f);
            return;
        }
        if !w.closed {
            self.publish(&mut w);
        }
    }

    fn publish(&self, w: &mut Watch) {
        let seg = NonNull::from(Box::leak(w.cand.take().expect("a candidate")));
        w.held = Some(seg);
        w.map_backoff = Duration::ZERO;
        w.verify_wait = Duration::ZERO;
        w.next_map = None;
        w.next_verify = None;
        w.reason = None;
        w.maps += 1;
        self.current.store(seg.as_ptr(), Ordering::Release);
    }

    /// Stops lookups from reading the held segment and blanks it.
    fn unpublish(&self, w: &mut Watch) {
        let Some(held) = w.held.take() else { return };
        self.current.store(std::ptr::null_mut(), Ordering::Release);
        // SAFETY: alive until Drop.
        let seg = unsafe { held.as_ref() };
        seg.release();
        w.retired.push(held);
    }

    /// Drains the refs of the hits made since the last drain into refs and returns the
    /// number of further hits they do not name: the two arguments of RecordAccess.
    pub fn drain_hits(&self, refs: &mut Vec<u64>) -> u64 {
        self.access.drain(refs)
    }

    /// Whether enough hits are buffered that the SDK should report them before the next
    /// flush interval.
    pub fn hits_pending(&self) -> bool {
        self.access.pending()
    }

    /// Counts n drained refs that could not be reported (the sidecar was unreachable).
    pub fn hits_lost(&self, n: u64) {
        self.access.lost(n);
    }

    /// What the reader is doing.
    pub fn status(&self) -> Status {
        let w = self.w.lock().unwrap_or_else(|e| e.into_inner());
        Status {
            // SAFETY: alive until Drop.
            generation: w.held.map(|h| unsafe { h.as_ref() }.generation()),
            reason: w.reason.clone(),
            maps: w.maps,
            drops: w.drops,
            hits: self.access.hits(),
            dropped_refs: self.access.dropped(),
        }
    }

    /// Stops reading shared memory for good: lookups then return
    /// [`Fallback::NoSegment`] and maintain does nothing. Final; idempotent.
    pub fn close(&self) {
        let mut w = self.w.lock().unwrap_or_else(|e| e.into_inner());
        w.closed = true;
        self.unpublish(&mut w);
        w.cand = None;
    }
}

fn map_failed(w: &mut Watch, now: Instant, e: OpenError) {
    w.map_backoff = (2 * w.map_backoff).clamp(MIN_MAP_BACKOFF, MAX_MAP_BACKOFF);
    w.next_map = Some(now + w.map_backoff);
    w.reason = Some(e.to_string());
}

impl Drop for Reader {
    fn drop(&mut self) {
        let w = self.w.get_mut().unwrap_or_else(|e| e.into_inner());
        // No lookup can be running: they all borrow self.
        for p in w.held.take().into_iter().chain(w.retired.drain(..)) {
            // SAFETY: leaked by publish, freed once here.
            drop(unsafe { Box::from_raw(p.as_ptr()) });
        }
    }
}
