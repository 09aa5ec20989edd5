//! Reads of the sidecar's shared-memory segment (the crate `cachee-shm`), driven by a
//! background task: it runs the reader's checks every 20 ms, confirms a new segment's
//! generation with the sidecar's Stats, and reports the hits it served with
//! RecordAccess every 50 ms (sooner when they pile up).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachee_proto::v1::cache_service_client::CacheServiceClient;
use cachee_proto::v1::{RecordAccessRequest, StatsRequest};
use cachee_shm::{Reader, ReaderOptions, Step};
use tonic::transport::Channel;

pub use cachee_shm::{Status as ShmStatus, DEFAULT_FLUSH_INTERVAL};

/// The reader and the task that keeps it; the task stops when the last clone of the
/// client that owns this is dropped or closed.
pub(crate) struct Shm {
    pub(crate) reader: Arc<Reader>,
    task: tokio::task::AbortHandle,
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
        rpc: CacheServiceClient<Channel>,
        timeout: Duration,
    ) -> Option<Arc<Shm>> {
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
        Some(Arc::new(Shm { reader, task }))
    }
}

impl Drop for Shm {
    fn drop(&mut self) {
        self.task.abort();
        self.reader.close();
    }
}

async fn step(reader: &Reader, rpc: &CacheServiceClient<Channel>, timeout: Duration) {
    if let Step::Confirm(generation) = reader.maintain() {
        let mut rpc = rpc.clone();
        let mut req = tonic::Request::new(StatsRequest {});
        req.set_timeout(timeout);
        let answer = match tokio::time::timeout(timeout, rpc.stats(req)).await {
            Ok(Ok(r)) => Ok(r.into_inner().generation),
            Ok(Err(s)) => Err(format!("{:?}: {}", s.code(), s.message())),
            Err(_) => Err("Stats timed out".to_string()),
        };
        reader.confirm(generation, answer);
    }
}

async fn run(reader: Arc<Reader>, rpc: CacheServiceClient<Channel>, timeout: Duration, flush_every: Duration) {
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

async fn flush(reader: &Reader, rpc: &CacheServiceClient<Channel>, refs: &mut Vec<u64>, timeout: Duration) {
    refs.clear();
    let unreported = reader.drain_hits(refs);
    if refs.is_empty() && unreported == 0 {
        return;
    }
    let n = refs.len() as u64;
    let mut req = tonic::Request::new(RecordAccessRequest { refs: std::mem::take(refs), unreported_hits: unreported });
    req.set_timeout(timeout);
    let mut rpc = rpc.clone();
    match tokio::time::timeout(timeout, rpc.record_access(req)).await {
        Ok(Ok(_)) => {}
        // The sidecar is gone or restarting: these refs are lost, which costs the policy a
        // sample and nothing else.
        _ => reader.hits_lost(n),
    }
}
