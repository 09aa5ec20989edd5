//! `cachee._native`: the Python face of cachee-shm, the Rust reader of the sidecar's
//! shared-memory segment. It only wraps the crate's API: the reader itself (the
//! seqlock, the bounds checks, the liveness checks, the hit buffer) is cachee-shm's.

use std::path::PathBuf;
use std::time::Duration;

use cachee_shm::{OpenError, ReaderOptions, Step};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

create_exception!(_native, SegmentError, PyException, "A segment that cannot be opened: args are (kind, message), kind one of io, format, stale.");

/// The bytes of a key: bytes as they are, str as UTF-8 (cached by CPython on the str).
#[inline(always)]
fn key_bytes<'a>(key: &'a Bound<'_, PyAny>) -> PyResult<&'a [u8]> {
    if let Ok(b) = key.cast::<PyBytes>() {
        return Ok(b.as_bytes());
    }
    if let Ok(s) = key.cast::<PyString>() {
        return Ok(s.to_str()?.as_bytes());
    }
    Err(PyTypeError::new_err("a key is bytes or str"))
}

/// The reader an SDK holds (cachee_shm::Reader): which segment, if any, lookups read,
/// kept fresh by maintain(), with the hits it served buffered for RecordAccess.
#[pyclass(frozen, module = "cachee._native")]
struct Reader {
    inner: cachee_shm::Reader,
}

#[pymethods]
impl Reader {
    /// A reader of the segment in ``dir`` (maps nothing until maintain()). With
    /// ``confirm`` (the default) a segment is read only once confirm() gave the
    /// sidecar's generation; without, as soon as it passes the liveness checks.
    #[new]
    #[pyo3(signature = (dir, *, confirm = true, check_interval = 0.02, max_lag = 0.5))]
    fn new(dir: PathBuf, confirm: bool, check_interval: f64, max_lag: f64) -> PyResult<Self> {
        let mut opts = ReaderOptions::new(dir);
        opts.confirm = confirm;
        opts.check_interval = seconds(check_interval)?;
        opts.max_lag = seconds(max_lag)?;
        Ok(Reader { inner: cachee_shm::Reader::new(opts) })
    }

    /// The value under ``key`` from the segment, or None: a miss, or any reason the
    /// segment cannot answer (none mapped, stale, contended, corrupt, another type).
    /// A hit is recorded for RecordAccess. Holds the GIL: it takes less than
    /// releasing it would.
    #[inline]
    fn get<'py>(&self, py: Python<'py>, key: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let k = key_bytes(key)?;
        Ok(self.inner.get_with(k, |v| PyBytes::new(py, v)).ok())
    }

    /// Checks the published segment, or works toward publishing one; returns the
    /// generation to confirm with the sidecar's Stats, or None. Releases the GIL.
    fn maintain(&self, py: Python<'_>) -> Option<u64> {
        match py.detach(|| self.inner.maintain()) {
            Step::Confirm(g) => Some(g),
            Step::Idle => None,
        }
    }

    /// The sidecar's answer to maintain()'s generation: its Stats generation, or why
    /// it could not be asked (``error``).
    #[pyo3(signature = (generation, sidecar, error = None))]
    fn confirm(&self, generation: u64, sidecar: Option<u64>, error: Option<String>) {
        let answer = match sidecar {
            Some(g) => Ok(g),
            None => Err(error.unwrap_or_else(|| "no answer".into())),
        };
        self.inner.confirm(generation, answer);
    }

    /// Whether a lookup found the segment stale since the last maintain().
    fn wants_check(&self) -> bool {
        self.inner.wants_check()
    }

    /// The refs of the hits since the last drain, and the count of further hits they
    /// do not name: RecordAccess's refs and unreported_hits.
    fn drain_hits(&self) -> (Vec<u64>, u64) {
        let mut refs = Vec::new();
        let unreported = self.inner.drain_hits(&mut refs);
        (refs, unreported)
    }

    /// Whether enough hits are buffered to report them before the next interval.
    fn hits_pending(&self) -> bool {
        self.inner.hits_pending()
    }

    /// Counts ``n`` drained refs that could not be reported.
    fn hits_lost(&self, n: u64) {
        self.inner.hits_lost(n)
    }

    /// What the reader is doing: generation (None when no segment is read), reason,
    /// maps, drops, hits, dropped_refs.
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.status();
        let d = PyDict::new(py);
        d.set_item("generation", s.generation)?;
        d.set_item("reason", s.reason)?;
        d.set_item("maps", s.maps)?;
        d.set_item("drops", s.drops)?;
        d.set_item("hits", s.hits)?;
        d.set_item("dropped_refs", s.dropped_refs)?;
        Ok(d)
    }

    /// Stops reading shared memory for good. Final; idempotent.
    fn close(&self) {
        self.inner.close()
    }
}

fn seconds(s: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s).map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("{s} s: {e}")))
}

/// One segment file opened on its own, for the conformance fixtures: lookups at an
/// injected real-time clock, with the result named as the fixtures name it.
#[pyclass(frozen, module = "cachee._native")]
struct Segment {
    inner: cachee_shm::Segment,
}

#[pymethods]
impl Segment {
    /// Opens the segment file at ``path``; SegmentError(kind, message) when it cannot.
    #[new]
    fn new(path: PathBuf) -> PyResult<Self> {
        match cachee_shm::Segment::open_file(&path) {
            Ok(inner) => Ok(Segment { inner }),
            Err(e) => {
                let kind = match e {
                    OpenError::Io(_) => "io",
                    OpenError::Format(_) => "format",
                    OpenError::Stale(_) => "stale",
                };
                Err(SegmentError::new_err((kind, e.to_string())))
            }
        }
    }

    /// Looks ``key`` up as if real time were ``now_ms``: (result, value, ref), the
    /// result one of hit, miss, wrong_type, retry, corrupt, stale.
    fn lookup<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        now_ms: i64,
    ) -> PyResult<(&'static str, Option<Bound<'py, PyBytes>>, u64)> {
        let k = key_bytes(key)?;
        Ok(match self.inner.get_with_at(k, || now_ms, |v| PyBytes::new(py, v)) {
            Ok((v, r)) => ("hit", Some(v), r),
            Err(f) => (f.name(), None, 0),
        })
    }

    #[getter]
    fn generation(&self) -> u64 {
        self.inner.generation()
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Reader>()?;
    m.add_class::<Segment>()?;
    m.add("SegmentError", m.py().get_type::<SegmentError>())?;
    m.add("DEFAULT_SHM_DIR", cachee_shm::DEFAULT_SHM_DIR)?;
    Ok(())
}
