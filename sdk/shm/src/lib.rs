//! Lock-free reads of the cachee sidecar's shared-memory segment.
//!
//! The sidecar keeps its whole store in one file, `cachee.seg`, in its `--shm`
//! directory (by default `/dev/shm/cachee`), and writes it while any number of
//! processes read it through a read-only mapping, with no syscall and no lock per
//! read. `docs/segment-format.md` in the cachee repository is the contract; this crate
//! is its reader for Rust, and through bindings for Python (PyO3) and TypeScript
//! (napi-rs). The Go reader is `store.Reader`; both pass the same conformance fixtures
//! (`sdk/testdata/segments`).
//!
//! # Two levels
//!
//! [`Segment`] is one mapped segment: [`Segment::open`] checks its header against the
//! geometry its size gives, lookups follow the seqlock protocol (acquire loads of the
//! sequence words, the value copied with 8-byte atomic loads, at most 64 attempts), the
//! Expiry rule and the value-type bits, and [`Segment::check`] runs the liveness checks
//! (state, generation, the file at the path, the writer's lock, its clock).
//!
//! [`Reader`] is what an SDK holds: it decides which segment, if any, lookups read.
//!
//! ```no_run
//! use cachee_shm::{Fallback, Reader, ReaderOptions, Step};
//!
//! let reader = Reader::new(ReaderOptions::new("/dev/shm/cachee"));
//! // Every 20 ms (ReaderOptions::check_interval), and soon after a lookup found the
//! // segment stale (reader.wants_check()), from one background task or thread:
//! if let Step::Confirm(generation) = reader.maintain() {
//!     let sidecar = Ok(generation); // the sidecar's gRPC Stats().generation
//!     reader.confirm(generation, sidecar);
//! }
//! // Every 50 ms, or sooner when reader.hits_pending():
//! let mut refs = Vec::new();
//! let unreported = reader.drain_hits(&mut refs);
//! // ... RecordAccess(refs, unreported) to the sidecar.
//!
//! // On any thread:
//! match reader.get_with(b"user:42", |v| v.len()) {
//!     Ok(n) => println!("{n} bytes from shared memory"),
//!     Err(Fallback::NoSegment | Fallback::Miss | Fallback::Stale | _) => { /* ask the sidecar over gRPC */ }
//! }
//! ```
//!
//! A lookup returns the value or a [`Fallback`] that says why the segment could not
//! answer; every fallback means "ask the sidecar" (a miss too: the sidecar may read
//! through to an L2). Hits are buffered for the RecordAccess call, which is how reads
//! made here count in the sidecar's statistics and eviction policy.
//!
//! # Allocation
//!
//! [`Reader::get_with`] calls a closure with the value's bytes, copied to the stack
//! (values up to 512 bytes) or to a buffer kept per thread: a hit allocates nothing.
//! [`Reader::get_into`] appends to a `Vec` (it grows only when short of room) and
//! [`Reader::get_to_slice`] copies into the caller's buffer. The bytes are a copy taken
//! under the seqlock, never a reference into the segment, which the writer may change at
//! any moment.
//!
//! # Safety of the mapping
//!
//! Every offset read from the segment is checked against the mapping before it is
//! used, so a corrupt or hostile segment makes lookups fail ([`Fallback::Corrupt`]),
//! never read outside the mapping; the crate is fuzzed over arbitrary segment bytes. A
//! third party that truncates the file while it is mapped can still make a read fault
//! (SIGBUS): the sidecar never does, and it refuses a segment file that others may
//! write. A [`Reader`] never unmaps a segment it published while it lives: a dropped
//! segment's pages become zero pages, so lookups racing the drop read zeros.
//!
//! # Stability
//!
//! The Python and TypeScript SDKs bind this API; changes to it are additive.

#![warn(missing_docs)]

mod access;
pub mod layout;
mod mem;
mod reader;
mod segment;

pub use access::RING_SLOTS;
pub use reader::{
    resolve_dir, resolve_dir_from, Reader, ReaderOptions, Status, Step, DEFAULT_CHECK_INTERVAL, DEFAULT_FLUSH_INTERVAL,
    DEFAULT_MAX_LAG, DEFAULT_SHM_DIR,
};
pub use segment::{expired, probe, segment_path, unix_ms, Fallback, OpenError, Ref, Segment};
