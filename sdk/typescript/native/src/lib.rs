//! The Node face of cachee-shm, the Rust reader of the sidecar's shared-memory segment,
//! as a Node-API addon (napi-rs). It only wraps the crate's API: the reader itself (the
//! seqlock, the bounds checks, the liveness checks, the hit buffer) is cachee-shm's. The
//! TypeScript SDK schedules it (src/shm.ts): maintain() every check interval, confirm()
//! with the sidecar's Stats, drainHits() into RecordAccess.

use std::path::PathBuf;
use std::time::Duration;

use cachee_shm::{OpenError, ReaderOptions, Step};
use napi::bindgen_prelude::*;
use napi_derive::napi;

/// How a Reader decides when a segment may be read; every field has cachee-shm's default.
#[napi(object)]
pub struct ReaderConfig {
    /// Read a segment only once confirm() gave the sidecar's generation (default true).
    pub confirm: Option<bool>,
    /// How often maintain() is meant to run, in ms (default 20).
    pub check_interval_ms: Option<f64>,
    /// The largest lag of the writer's clock behind real time, in ms (default 500).
    pub max_lag_ms: Option<f64>,
}

fn millis(what: &str, ms: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(ms / 1000.0).map_err(|e| Error::new(Status::InvalidArg, format!("{what} {ms} ms: {e}")))
}

/// The value of a hit as a new Uint8Array (its bytes copied into a new ArrayBuffer: no
/// finalizer to run), or null for any fallback. A Uint8Array, not a Buffer, so that a
/// hit is the same type as the value the gRPC path returns.
#[inline(always)]
fn lookup<'env>(r: &cachee_shm::Reader, env: &'env Env, key: &[u8]) -> Result<Option<Uint8ArraySlice<'env>>> {
    match r.get_with(key, |v| Uint8ArraySlice::copy_from(env, v)) {
        Ok(b) => b.map(Some),
        Err(_) => Ok(None),
    }
}

/// The reader an SDK holds (cachee_shm::Reader): which segment, if any, lookups read,
/// kept fresh by maintain(), with the hits it served buffered for RecordAccess.
#[napi]
pub struct Reader {
    inner: cachee_shm::Reader,
}

#[napi]
impl Reader {
    /// A reader of the segment in `dir`; it maps nothing until maintain().
    #[napi(constructor)]
    pub fn new(dir: String, config: Option<ReaderConfig>) -> Result<Self> {
        let mut opts = ReaderOptions::new(PathBuf::from(dir));
        if let Some(c) = config {
            if let Some(confirm) = c.confirm {
                opts.confirm = confirm;
            }
            if let Some(ms) = c.check_interval_ms {
                opts.check_interval = millis("checkIntervalMs", ms)?;
            }
            if let Some(ms) = c.max_lag_ms {
                opts.max_lag = millis("maxLagMs", ms)?;
            }
        }
        Ok(Reader { inner: cachee_shm::Reader::new(opts) })
    }

    /// The value under a key given as bytes, or undefined: a miss, or any reason the
    /// segment cannot answer (none mapped, stale, contended, corrupt, another type).
    /// A hit is recorded for RecordAccess.
    #[napi]
    pub fn get<'env>(&self, env: &'env Env, key: &[u8]) -> Result<Option<Uint8ArraySlice<'env>>> {
        lookup(&self.inner, env, key)
    }

    /// get() for a key given as a string, looked up as its UTF-8 bytes.
    #[napi]
    pub fn get_str<'env>(&self, env: &'env Env, key: String) -> Result<Option<Uint8ArraySlice<'env>>> {
        lookup(&self.inner, env, key.as_bytes())
    }

    /// Checks the published segment, or works toward publishing one; returns the
    /// generation to confirm with the sidecar's Stats, or null.
    #[napi]
    pub fn maintain(&self) -> Option<BigInt> {
        match self.inner.maintain() {
            Step::Confirm(g) => Some(BigInt::from(g)),
            Step::Idle => None,
        }
    }

    /// The sidecar's answer to maintain()'s generation: its Stats generation, or null
    /// and why it could not be asked.
    #[napi]
    pub fn confirm(&self, generation: BigInt, sidecar: Option<BigInt>, error: Option<String>) {
        let answer = match sidecar {
            Some(g) => Ok(g.get_u64().1),
            None => Err(error.unwrap_or_else(|| "no answer".into())),
        };
        self.inner.confirm(generation.get_u64().1, answer);
    }

    /// Whether a lookup found the segment stale since the last maintain().
    #[napi]
    pub fn wants_check(&self) -> bool {
        self.inner.wants_check()
    }

    /// The refs of the hits since the last drain, and the count of further hits they
    /// do not name: RecordAccess's refs and unreported_hits.
    #[napi]
    pub fn drain_hits(&self) -> DrainedHits {
        let mut refs = Vec::new();
        let unreported = self.inner.drain_hits(&mut refs);
        DrainedHits { refs: BigUint64Array::new(refs), unreported: unreported as f64 }
    }

    /// Whether enough hits are buffered to report them before the next interval.
    #[napi]
    pub fn hits_pending(&self) -> bool {
        self.inner.hits_pending()
    }

    /// Counts `n` drained refs that could not be reported.
    #[napi]
    pub fn hits_lost(&self, n: u32) {
        self.inner.hits_lost(n.into())
    }

    /// What the reader is doing.
    #[napi]
    pub fn status(&self) -> ReaderStatus {
        let s = self.inner.status();
        ReaderStatus {
            generation: s.generation.map(BigInt::from),
            reason: s.reason,
            maps: s.maps as f64,
            drops: s.drops as f64,
            hits: s.hits as f64,
            dropped_refs: s.dropped_refs as f64,
        }
    }

    /// Stops reading shared memory for good. Final; idempotent.
    #[napi]
    pub fn close(&self) {
        self.inner.close()
    }
}

/// What drainHits() took from the hit buffer.
#[napi(object)]
pub struct DrainedHits {
    pub refs: BigUint64Array,
    pub unreported: f64,
}

/// Reader.status(): the generation read (null: none), why none is, and counters.
#[napi(object)]
pub struct ReaderStatus {
    pub generation: Option<BigInt>,
    pub reason: Option<String>,
    pub maps: f64,
    pub drops: f64,
    pub hits: f64,
    pub dropped_refs: f64,
}

/// One segment file opened on its own, for the conformance fixtures: lookups at an
/// injected real-time clock, with the result named as the fixtures name it.
#[napi]
pub struct Segment {
    inner: cachee_shm::Segment,
}

/// Segment.lookup(): result is one of hit, miss, wrong_type, retry, corrupt, stale.
#[napi(object)]
pub struct Lookup {
    pub result: String,
    pub value: Option<Buffer>,
    pub r#ref: BigInt,
}

#[napi]
impl Segment {
    /// Opens the segment file at `path`. An error's message starts with its kind and a
    /// colon: io, format or stale.
    #[napi(constructor)]
    pub fn new(path: String) -> Result<Self> {
        cachee_shm::Segment::open_file(&PathBuf::from(path)).map(|inner| Segment { inner }).map_err(|e| {
            let kind = match e {
                OpenError::Io(_) => "io",
                OpenError::Format(_) => "format",
                OpenError::Stale(_) => "stale",
            };
            Error::new(Status::GenericFailure, format!("{kind}: {e}"))
        })
    }

    /// Looks `key` up as if real time were `nowMs`.
    #[napi]
    pub fn lookup(&self, key: &[u8], now_ms: i64) -> Lookup {
        match self.inner.get_with_at(key, || now_ms, |v| v.to_vec()) {
            Ok((v, r)) => Lookup { result: "hit".into(), value: Some(v.into()), r#ref: BigInt::from(r) },
            Err(f) => Lookup { result: f.name().into(), value: None, r#ref: BigInt::from(0u64) },
        }
    }

    /// The segment's generation.
    #[napi(getter)]
    pub fn generation(&self) -> BigInt {
        BigInt::from(self.inner.generation())
    }

    /// The writer's clock, in unix ms.
    #[napi(getter)]
    pub fn clock_ms(&self) -> i64 {
        self.inner.clock_ms()
    }
}

/// The default segment directory, cachee-shm's.
#[napi]
pub const DEFAULT_SHM_DIR: &str = cachee_shm::DEFAULT_SHM_DIR;
