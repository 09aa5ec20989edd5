//! One mapped segment: its header checked, keys looked up with the seqlock protocol of
//! docs/segment-format.md, and the liveness checks.

use std::fmt;
use std::fs::File;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::layout::*;
use crate::mem::Mem;

/// Why a segment cannot be opened or read.
#[derive(Debug)]
pub enum OpenError {
    /// The file could not be opened, inspected or mapped.
    Io(io::Error),
    /// The file is not a segment this reader can read: another magic, version, size or
    /// layout, or shorter than its header says.
    Format(String),
    /// The segment is not served: its state is not active, its writer holds no lock, or
    /// its clock stopped.
    Stale(String),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Io(e) => write!(f, "segment: {e}"),
            OpenError::Format(m) => write!(f, "segment: unknown format: {m}"),
            OpenError::Stale(m) => write!(f, "segment: stale: {m}"),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for OpenError {
    fn from(e: io::Error) -> Self {
        OpenError::Io(e)
    }
}

/// Why a lookup did not return a value from the segment. Each means: ask the sidecar
/// (a miss too, since the sidecar may read through to an L2); they differ in what the
/// owner of the mapping should do besides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fallback {
    /// The segment holds no live entry for the key (absent, deleted or expired). The
    /// sidecar may still have it elsewhere (an L2), so an SDK asks it.
    Miss,
    /// The key holds a value of another type than a string (w0 bits 61..63 nonzero).
    WrongType,
    /// The writer kept changing what the lookup read: its bounded attempts ran out.
    Retry,
    /// The segment's bytes contradict the format while nothing was changing them.
    Corrupt,
    /// The segment is no longer served (closed, retired, or a writer restarted on it);
    /// the owner of the mapping should remap.
    Stale,
    /// No segment is in use (a [`crate::Reader`] that has none mapped or confirmed yet).
    NoSegment,
    /// The caller's buffer is smaller than the value, which has this many bytes.
    BufferTooSmall(usize),
}

impl Fallback {
    /// The fallback's name in the conformance fixtures (`sdk/testdata/segments`) and
    /// in the bindings: `miss`, `wrong_type`, `retry`, `corrupt`, `stale`, and, for the
    /// two that only a caller's situation produces, `no_segment` and `buffer_too_small`.
    pub fn name(&self) -> &'static str {
        match self {
            Fallback::Miss => "miss",
            Fallback::WrongType => "wrong_type",
            Fallback::Retry => "retry",
            Fallback::Corrupt => "corrupt",
            Fallback::Stale => "stale",
            Fallback::NoSegment => "no_segment",
            Fallback::BufferTooSmall(_) => "buffer_too_small",
        }
    }
}

/// A hit's ref: the slot word, which the sidecar's RecordAccess takes to count the read
/// in its statistics and eviction policy.
pub type Ref = u64;

/// Where a lookup copies a value: `start(n)` returns room for n bytes, or None.
pub(crate) trait Sink {
    fn start(&mut self, n: usize) -> Option<*mut u8>;
}

struct VecSink<'a> {
    v: &'a mut Vec<u8>,
    at: usize,
}

impl Sink for VecSink<'_> {
    fn start(&mut self, n: usize) -> Option<*mut u8> {
        self.v.truncate(self.at);
        self.v.reserve(n);
        // SAFETY: reserve made room for n more bytes; the length is set only once the
        // copy has written them (finish).
        Some(unsafe { self.v.as_mut_ptr().add(self.at) })
    }
}

struct SliceSink<'a> {
    s: &'a mut [MaybeUninit<u8>],
}

impl Sink for SliceSink<'_> {
    fn start(&mut self, n: usize) -> Option<*mut u8> {
        (n <= self.s.len()).then(|| self.s.as_mut_ptr().cast())
    }
}

/// Raw outcome of view lookups.
enum Res {
    Hit { vlen: usize, slot: u64 },
    Miss,
    WrongType,
    Retry,
    Corrupt,
    Stale,
    TooSmall(usize),
}

/// A segment mapped read-only: the header checked against the geometry its size gives,
/// so that no field of a corrupt header can send a read outside the mapping.
///
/// Lookups are lock-free and allocate nothing of their own; a `Segment` is `Sync`.
pub struct Segment {
    mem: Mem,
    path: PathBuf,
    file: Mutex<Option<File>>,
    dev: u64,
    ino: u64,
    generation: u64,
    seed: u64,
    nb_log2: u32,
    max_depth: u32,
    dir_off: u64,
    lo: u64,
    max_key: u64,
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment")
            .field("path", &self.path)
            .field("size", &self.mem.len())
            .field("generation", &format_args!("{:016x}", self.generation))
            .finish()
    }
}

/// The current time in unix ms, from CLOCK_REALTIME (the clock the writer publishes).
pub fn unix_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// The file of the segment in dir.
pub fn segment_path(dir: &Path) -> PathBuf {
    dir.join(SEGMENT_FILE)
}

fn open_file(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
}

/// Whether a writer holds the exclusive lock of f: a shared lock succeeds only if not
/// (and is dropped at once).
fn writer_holds_lock(f: &File) -> io::Result<bool> {
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0 {
        unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_UN) };
        return Ok(false);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(true)
    } else {
        Err(err)
    }
}

/// Says, without mapping anything, whether the segment in dir looks served by a live
/// writer: a regular file whose header has the magic and state active, and whose lock a
/// writer holds. Probing first keeps a dead or restarting sidecar from costing a mapping
/// per check.
pub fn probe(dir: &Path) -> Result<(), OpenError> {
    let path = segment_path(dir);
    let f = open_file(&path)?;
    let md = f.metadata()?;
    if !md.file_type().is_file() {
        return Err(OpenError::Format(format!("{} is not a regular file", path.display())));
    }
    let mut hdr = [0u8; (H_STATE + 4) as usize];
    // SAFETY: pread into our buffer of that length.
    let n = unsafe { libc::pread(f.as_raw_fd(), hdr.as_mut_ptr().cast(), hdr.len(), 0) };
    if n != hdr.len() as isize {
        return Err(OpenError::Format(format!("{}: short header", path.display())));
    }
    let word = |off: u64| u64::from_le_bytes(hdr[off as usize..off as usize + 8].try_into().unwrap());
    if word(H_MAGIC) != MAGIC {
        return Err(OpenError::Format(format!("{}: bad magic", path.display())));
    }
    let state = u32::from_le_bytes(hdr[H_STATE as usize..].try_into().unwrap());
    if state != STATE_ACTIVE {
        return Err(OpenError::Stale(format!("{}: state {state}", path.display())));
    }
    if !writer_holds_lock(&f)? {
        return Err(OpenError::Stale(format!("{}: no sidecar holds the segment", path.display())));
    }
    Ok(())
}

impl Segment {
    /// Maps `dir/cachee.seg` read-only and checks its header. It neither probes the
    /// writer's lock nor its clock: [`Segment::check`] does.
    pub fn open(dir: &Path) -> Result<Segment, OpenError> {
        Segment::open_file(&segment_path(dir))
    }

    /// As [`Segment::open`], for the segment file at path.
    pub fn open_file(path: &Path) -> Result<Segment, OpenError> {
        let f = open_file(path)?;
        let md = f.metadata()?;
        let size = md.len();
        if !md.file_type().is_file() || !(MIN_SIZE..=MAX_SIZE).contains(&size) || size % PAGE_MULTIPLE != 0 {
            return Err(OpenError::Format(format!("{} is not a segment ({size} bytes)", path.display())));
        }
        let mem = Mem::map(&f, size)?;
        let mut s = Segment {
            mem,
            path: path.to_path_buf(),
            file: Mutex::new(Some(f)),
            dev: md.dev(),
            ino: md.ino(),
            generation: 0,
            seed: 0,
            nb_log2: 0,
            max_depth: 0,
            dir_off: 0,
            lo: 0,
            max_key: 0,
        };
        s.validate()?;
        Ok(s)
    }

    fn validate(&mut self) -> Result<(), OpenError> {
        let m = &self.mem;
        let size = m.len();
        if m.load(H_MAGIC) != MAGIC {
            return Err(OpenError::Format("bad magic".into()));
        }
        if m.load32(H_VERSION) != VERSION {
            return Err(OpenError::Format(format!("version {}, this reader knows {VERSION}", m.load32(H_VERSION))));
        }
        if m.load32(H_HEADER_SIZE) as u64 != HEADER_SIZE || m.load(H_SEGMENT_SIZE) != size {
            return Err(OpenError::Format("header describes another size".into()));
        }
        let (nb_log2, max_depth, dir_off, arena_off) = geometry(size);
        if m.load32(H_BUCKETS_LOG2) != nb_log2
            || m.load32(H_DIR_MAX_DEPTH) != max_depth
            || m.load(H_DIR_OFFSET) != dir_off
            || m.load(H_ARENA_OFFSET) != arena_off
            || m.load(H_ARENA_SIZE) != size - arena_off
        {
            return Err(OpenError::Format("header describes another layout".into()));
        }
        let state = m.load32(H_STATE);
        if state != STATE_ACTIVE {
            return Err(OpenError::Stale(format!("state {state}")));
        }
        // Read the generation after the state, as every lookup does.
        fence(Ordering::Acquire);
        self.generation = m.load(H_GENERATION);
        self.seed = m.load(H_SEED);
        self.max_key = (m.load32(H_MAX_KEY) as u64).min(MAX_KEY_LIMIT);
        self.nb_log2 = nb_log2;
        self.max_depth = max_depth;
        self.dir_off = dir_off;
        self.lo = arena_off;
        Ok(())
    }

    /// The writer's session: it changes whenever a writer (re)opens the segment. An SDK
    /// compares it with the sidecar's Stats generation before it trusts the segment.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The segment file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The size of the segment in bytes.
    pub fn size(&self) -> u64 {
        self.mem.len()
    }

    /// The longest key the writer accepts (the header's max_key).
    pub fn max_key(&self) -> usize {
        self.max_key as usize
    }

    /// Replaces the mapping with zero pages (a lookup still running reads zeros and
    /// fails as stale) and closes the file. For a segment that is shared by pointer and
    /// cannot be dropped yet; [`Segment::check`] then reports it stale.
    pub(crate) fn release(&self) {
        let _ = self.mem.blank();
        self.file.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// The writer's clock in unix ms, as last published.
    pub fn clock_ms(&self) -> i64 {
        self.mem.load_acquire(H_CLOCK) as i64
    }

    /// Whether the segment is still the one opened, in state active.
    #[inline]
    pub fn is_live(&self) -> bool {
        let m = &self.mem;
        let st = m.load32(H_STATE);
        fence(Ordering::Acquire);
        st == STATE_ACTIVE && m.load(H_GENERATION) == self.generation
    }

    /// Reports [`OpenError::Stale`] when the segment no longer reflects a live writer:
    /// closed or retired, a writer restarted on it, the file at the path is another, no
    /// process holds the writer's lock, or the writer's clock lags real time (`now_ms`)
    /// by more than max_lag. A stale segment should be dropped and, once the sidecar is
    /// back, opened again.
    pub fn check(&self, max_lag: Duration, now_ms: i64) -> Result<(), OpenError> {
        let st = self.mem.load32(H_STATE);
        if st != STATE_ACTIVE {
            return Err(OpenError::Stale(format!("state {st}")));
        }
        if self.mem.load(H_GENERATION) != self.generation {
            return Err(OpenError::Stale("writer restarted".into()));
        }
        match std::fs::metadata(&self.path) {
            Ok(md) if md.dev() == self.dev && md.ino() == self.ino => {}
            _ => return Err(OpenError::Stale("segment file replaced".into())),
        }
        {
            let f = self.file.lock().unwrap_or_else(|e| e.into_inner());
            let Some(f) = f.as_ref() else {
                return Err(OpenError::Stale("segment released".into()));
            };
            if !writer_holds_lock(f)? {
                return Err(OpenError::Stale("no writer".into()));
            }
        }
        let lag = now_ms - self.clock_ms();
        if lag > max_lag.as_millis() as i64 {
            return Err(OpenError::Stale(format!("writer clock {lag}ms behind")));
        }
        Ok(())
    }

    /// Looks key up and appends its value to out on a hit. out grows only when it has
    /// too little room: reuse one Vec and a hit allocates nothing.
    pub fn get_into(&self, key: &[u8], out: &mut Vec<u8>) -> Result<Ref, Fallback> {
        self.get_into_at(key, out, unix_ms)
    }

    /// As [`Segment::get_into`], with the reader's own clock (unix ms) given: the Expiry
    /// rule calls it only for an entry within NEAR_MS of the header clock. For tests.
    pub fn get_into_at(&self, key: &[u8], out: &mut Vec<u8>, now: impl FnOnce() -> i64) -> Result<Ref, Fallback> {
        let at = out.len();
        let mut sink = VecSink { v: out, at };
        match self.lookup(key, &mut sink, now) {
            Res::Hit { vlen, slot } => {
                // SAFETY: the lookup wrote vlen bytes after at, within the reserved room.
                unsafe { sink.v.set_len(at + vlen) };
                Ok(slot)
            }
            r => {
                sink.v.truncate(at);
                Err(fallback(r))
            }
        }
    }

    /// Looks key up and copies its value into buf on a hit, returning its length and the
    /// ref. A value longer than buf is [`Fallback::BufferTooSmall`] with its length.
    pub fn get_to_slice(&self, key: &[u8], buf: &mut [u8]) -> Result<(usize, Ref), Fallback> {
        // SAFETY: u8 and MaybeUninit<u8> have one layout; we only write initialized bytes.
        let s = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
        self.get_uninit(key, s, unix_ms)
    }

    fn get_uninit(
        &self,
        key: &[u8],
        buf: &mut [MaybeUninit<u8>],
        now: impl FnOnce() -> i64,
    ) -> Result<(usize, Ref), Fallback> {
        match self.lookup(key, &mut SliceSink { s: buf }, now) {
            Res::Hit { vlen, slot } => Ok((vlen, slot)),
            r => Err(fallback(r)),
        }
    }

    /// Looks key up and, on a hit, calls f with the value's bytes and returns what f
    /// returns, with the ref. The bytes are a copy taken under the seqlock (the segment's
    /// own memory may change at any moment); values up to 512 bytes are copied to the
    /// stack, longer ones to a buffer kept per thread, so a hit allocates nothing once
    /// that buffer has grown to the longest value read.
    pub fn get_with<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<(R, Ref), Fallback> {
        self.get_with_at(key, unix_ms, f)
    }

    /// As [`Segment::get_with`], with the reader's own clock given (see
    /// [`Segment::get_into_at`]).
    pub fn get_with_at<R>(
        &self,
        key: &[u8],
        now: impl Fn() -> i64,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<(R, Ref), Fallback> {
        let mut stack = [MaybeUninit::<u8>::uninit(); STACK_VALUE];
        match self.get_uninit(key, &mut stack, &now) {
            Ok((n, r)) => {
                // SAFETY: the lookup initialized the first n bytes.
                let v = unsafe { std::slice::from_raw_parts(stack.as_ptr().cast::<u8>(), n) };
                Ok((f(v), r))
            }
            Err(Fallback::BufferTooSmall(_)) => {
                // Take the thread's buffer (leaving an empty one, which a nested call
                // would grow on its own) and put it back after f.
                let mut buf = SPILL.with(|c| c.take());
                buf.clear();
                let res = self.get_into_at(key, &mut buf, &now).map(|r| (f(&buf), r));
                SPILL.with(|c| c.set(buf));
                res
            }
            Err(e) => Err(e),
        }
    }

    /// The lookup of docs/segment-format.md ("Reading a key"), with the Expiry rule and
    /// the value-type check.
    fn lookup(&self, key: &[u8], out: &mut impl Sink, now: impl FnOnce() -> i64) -> Res {
        let m = &self.mem;
        if !self.is_live() {
            return Res::Stale;
        }
        if key.is_empty() || key.len() as u64 > self.max_key {
            return Res::Miss; // the writer never stores such a key
        }
        let h = xxhash_rust::xxh3::xxh3_64_with_seed(key, self.seed);
        let clock = m.load_acquire(H_CLOCK) as i64;
        let nb = 1u64 << self.nb_log2;
        let home = h >> (64 - self.nb_log2);
        let tag = h >> 32;
        let mut now = Some(now);
        'attempt: for attempt in 0..MAX_READ_RETRIES {
            if attempt > 0 && attempt % 8 == 0 {
                std::thread::yield_now();
            }
            let ver = m.load_acquire(H_INDEX_VERSION);
            if ver & 1 != 0 {
                std::hint::spin_loop();
                continue;
            }
            let Some(t) = self.table_at(h, m.load32(H_GLOBAL_DEPTH)) else {
                if self.stable(ver) {
                    return Res::Corrupt;
                }
                continue;
            };
            let mut ovf = 0;
            for p in 0..PROBE_WINDOW {
                let b = t + ((home + p) & (nb - 1)) * BUCKET_BYTES;
                let c = m.load_acquire(b);
                if c & CTRL_SEQ_ONE != 0 {
                    continue 'attempt;
                }
                if p == 0 {
                    ovf = c & CTRL_OVF_MASK;
                }
                for i in 0..SLOTS_PER_BUCKET {
                    let s = m.load(b + 8 + i * 8);
                    if s == 0 || s >> 32 != tag {
                        continue;
                    }
                    let e = (s & 0xffff_ffff) * UNIT;
                    let Some(w0) = self.entry_w0(e) else {
                        // A writer recovering the segment rewrites buckets under the index
                        // version alone, so both must hold still to call this corruption.
                        if self.bucket_stable(b, c) && self.stable(ver) {
                            return Res::Corrupt;
                        }
                        continue 'attempt;
                    };
                    let klen = (w0 >> W0_KLEN_SHIFT) & W0_KLEN_MASK;
                    if klen != key.len() as u64 || !m.equal(e + ENTRY_HEADER, key) {
                        continue;
                    }
                    let w1 = m.load(e + 8);
                    let size = (w0 & W0_SIZE_MASK) * UNIT;
                    let pad = (w0 >> W0_PAD_SHIFT) & W0_PAD_MASK;
                    let vlen = (size - ENTRY_HEADER - klen - pad) as usize;
                    let Some(dst) = out.start(vlen) else {
                        if self.bucket_stable(b, c) && self.stable(ver) {
                            return Res::TooSmall(vlen);
                        }
                        continue 'attempt;
                    };
                    // SAFETY: the sink gave room for vlen bytes; the block [e, e+size)
                    // was checked to lie inside the mapping.
                    unsafe { m.copy_out(dst, e + ENTRY_HEADER + klen, vlen) };
                    if !self.bucket_stable(b, c) || !self.stable(ver) {
                        continue 'attempt;
                    }
                    let exp = (w1 & W1_EXPIRY_MASK) as i64;
                    let gone = match now.take() {
                        Some(now) => expired(exp, clock, now),
                        None => expired(exp, clock, unix_ms),
                    };
                    if gone {
                        return Res::Miss;
                    }
                    if w0 >> W0_VALUE_TYPE_SHIFT != 0 {
                        return Res::WrongType;
                    }
                    return Res::Hit { vlen, slot: s };
                }
                // A slot we skipped may have changed under us (an overwrite frees the
                // old entry): only a bucket that held still proves the key is absent.
                if !self.bucket_stable(b, c) {
                    continue 'attempt;
                }
                if p == 0 && ovf == 0 {
                    break;
                }
            }
            if self.stable(ver) {
                return Res::Miss;
            }
        }
        Res::Retry
    }

    /// The byte offset of the index table that holds hash h, or None if the directory
    /// entry is not a table inside the arena.
    #[inline]
    fn table_at(&self, h: u64, depth: u32) -> Option<u64> {
        if depth > self.max_depth {
            return None;
        }
        let idx = h & ((1u64 << depth) - 1);
        let t = self.mem.load32(self.dir_off + idx * 4) as u64 * UNIT;
        let hi = self.mem.len();
        (t >= self.lo && t.is_multiple_of(CACHE_LINE) && t + (BUCKET_BYTES << self.nb_log2) <= hi).then_some(t)
    }

    /// w0 of the entry block at e, if it is a whole entry inside the arena.
    #[inline]
    fn entry_w0(&self, e: u64) -> Option<u64> {
        let hi = self.mem.len();
        if e < self.lo || e + MIN_BLOCK > hi {
            return None;
        }
        let w0 = self.mem.load(e);
        let size = (w0 & W0_SIZE_MASK) * UNIT;
        let klen = (w0 >> W0_KLEN_SHIFT) & W0_KLEN_MASK;
        let pad = (w0 >> W0_PAD_SHIFT) & W0_PAD_MASK;
        let ok = w0 >> W0_FREE_BIT & 1 == 0
            && (w0 >> W0_KIND_SHIFT) & W0_KIND_MASK == KIND_ENTRY
            && size <= hi - e
            && ENTRY_HEADER + klen + pad <= size;
        ok.then_some(w0)
    }

    /// Whether bucket b still holds the control word c: the reads since are consistent.
    #[inline(always)]
    fn bucket_stable(&self, b: u64, c: u64) -> bool {
        // The loads of the data must not move after this re-check of the sequence.
        fence(Ordering::Acquire);
        self.mem.load(b) == c
    }

    /// Whether the index version is still ver.
    #[inline(always)]
    fn stable(&self, ver: u64) -> bool {
        fence(Ordering::Acquire);
        self.mem.load(H_INDEX_VERSION) == ver
    }
}

/// The Expiry rule of docs/segment-format.md: the header clock decides unless the
/// deadline is within NEAR_MS of it; then the reader's own clock does.
#[inline]
pub fn expired(expiry: i64, clock: i64, now: impl FnOnce() -> i64) -> bool {
    if expiry == 0 {
        return false;
    }
    if expiry <= clock {
        return true;
    }
    if expiry - clock > NEAR_MS {
        return false;
    }
    expiry <= now()
}

/// Values up to this long are copied to the stack by get_with.
const STACK_VALUE: usize = 512;

thread_local! {
    static SPILL: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

fn fallback(r: Res) -> Fallback {
    match r {
        Res::Hit { .. } => unreachable!("a hit is not a fallback"),
        Res::Miss => Fallback::Miss,
        Res::WrongType => Fallback::WrongType,
        Res::Retry => Fallback::Retry,
        Res::Corrupt => Fallback::Corrupt,
        Res::Stale => Fallback::Stale,
        Res::TooSmall(n) => Fallback::BufferTooSmall(n),
    }
}
