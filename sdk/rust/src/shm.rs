//! Reads of the sidecar's shared-memory segment (the crate `cachee-shm`), driven by a
//! background task: it runs the reader's checks every 20 ms, confirms a new segment's
//! generation with the sidecar's Stats, and reports the hits it served with
//! RecordAccess every 50 ms (sooner when they pile up).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachee_proto::v1::{RecordAccessRequest, RecordAccessResponse, StatsRequest, StatsResponse};
use cachee_shm::{Reader, ReaderOptions, Step};

use crate::retry::Method;
use crate::rpc::Rpc;

pub use cachee_shm::{Status as ShmStatus, DEFAULT_FLUSH_INTERVAL};

/// The reader and the task that keeps it; the task stops when the last clone of the
/// client that owns this is dropped or closed.
pub(crate) struct Shm {
    pub(crate) reader: Arc<Reader>,
    task: tokio::task::AbortHandle,
    rpc: Rpc,
    timeout: Duration,
}

impl std::fmt::Debug for Shm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shm").field("dir", &self.reader.options().dir).finish()
    }
}

/// How shared memory is read, from the [`crate::Builder`].
#[derive(Debug, Clone)]
pub(crate) struct ShmOptions {
    pub(crate) dir: Option<PathBuf>, // None: the environment decides (cachee_shm::resolve_dir)
    pub(crate) off: bool,
    pub(crate) check_interval: Duration,
    pub(crate) max_lag: Duration,
    pub(crate) flush_interval: Duration,
}

impl Default for ShmOptions {
    fn default() -> Self {
        ShmOptions {
            dir: None,
            off: false,
            check_interval: cachee_shm::DEFAULT_CHECK_INTERVAL,
            max_lag: cachee_shm::DEFAULT_MAX_LAG,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
        }
    }
}

impl Shm {
    /// Starts reading the segment that opts name, if any. One check runs before it
    /// returns, so that a client made beside a running sidecar reads shared memory from
    /// its first get.
    pub(crate) async fn start(
        opts: &ShmOptions,
        rpc: Rpc,
        timeout: Duration,
    ) -> Option<Shm> {
        if opts.off {
            return None;
        }
        let dir = cachee_shm::resolve_dir(opts.dir.as_deref())?;
        let mut ro = ReaderOptions::new(dir);
        ro.check_interval = opts.check_interval;
        ro.max_lag = opts.max_lag;
        let reader = Arc::new(Reader::new(ro));
        step(&reader, &rpc, timeout).await;
        let task = tokio::spawn(run(Arc::clone(&reader), rpc.clone(), timeout, opts.flush_interval)).abort_handle();
        Some(Shm { reader, task, rpc, timeout })
    }

    /// Stops the task and reading shared memory, then reports the hits not reported yet
    /// (best effort, within the call timeout).
    pub(crate) async fn close(&self) {
        self.task.abort();
        self.reader.close();
        flush(&self.reader, &self.rpc, &mut Vec::new(), self.timeout).await;
    }
}

impl Drop for Shm {
    fn drop(&mut self) {
        self.task.abort();
        self.reader.close();
    }
}

async fn step(reader: &Reader, rpc: &Rpc, timeout: Duration) {
    if let Step::Confirm(generation) = reader.maintain() {
        let call = rpc.unary::<_, StatsResponse>(Method::Stats.name(), Arc::new(StatsRequest {}), timeout);
        let answer = match tokio::time::timeout(timeout, call).await {
            Ok(Ok(r)) => Ok(r.generation),
            Ok(Err(s)) => Err(format!("{:?}: {}", s.code(), s.message())),
            Err(_) => Err("Stats timed out".to_string()),
        };
        reader.confirm(generation, answer);
    }
}

async fn run(reader: Arc<Reader>, rpc: Rpc, timeout: Duration, flush_every: Duration) {
    let mut tick = tokio::time::interval(reader.options().check_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut refs = Vec::new();
    let mut last_flush = Instant::now();
    loop {
        tick.tick().await;
        step(&reader, &rpc, timeout).await;
        // Report every flush interval, or sooner when a ring fills, but at most five
        // times an interval, so a hot read loop costs the sidecar a bounded number of calls.
        let since = last_flush.elapsed();
        if since >= flush_every || (reader.hits_pending() && since >= flush_every / 5) {
            last_flush = Instant::now();
            flush(&reader, &rpc, &mut refs, timeout).await;
        }
    }
}

async fn flush(reader: &Reader, rpc: &Rpc, refs: &mut Vec<u64>, timeout: Duration) {
    refs.clear();
    let unreported = reader.drain_hits(refs);
    if refs.is_empty() && unreported == 0 {
        return;
    }
    let n = refs.len() as u64;
    let req = Arc::new(RecordAccessRequest { refs: std::mem::take(refs), unreported_hits: unreported });
    let call = rpc.unary::<_, RecordAccessResponse>(Method::RecordAccess.name(), req, timeout);
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(_)) => {}
        // The sidecar is gone or restarting: these refs are lost, which costs the policy a
        // sample and nothing else.
        _ => reader.hits_lost(n),
    }
}
