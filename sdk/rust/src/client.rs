use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachee_proto::v1::cache_service_client::CacheServiceClient;
use cachee_proto::v1::{
    BatchGetRequest, BatchSetItem, BatchSetRequest, DeleteRequest, GetRequest, PrewarmRequest, SetCondition,
    SetRequest, StatsRequest,
};
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::Code;

use crate::address::Address;
use crate::error::{Error, ErrorKind};
use crate::shm::{Shm, ShmOptions, ShmStatus};

/// The deadline of a call when the client was given none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// A prewarm runs until the server's own `--prewarm-timeout`; the call must outlive it.
pub const DEFAULT_PREWARM_TIMEOUT: Duration = Duration::from_secs(60);

/// Retries of calls that failed with UNAVAILABLE (the server is restarting or not up
/// yet), with exponential backoff and jitter. Calls safe to repeat (`get`, `get_many`,
/// `stats`, `set` without a condition) are retried on any UNAVAILABLE; a conditional
/// `set`, `delete` and `set_many` only when the server refused them unapplied (reason
/// `OVERLOADED` or `SHUTTING_DOWN`), since a connection reset may follow an applied
/// write. No retry waits past the call's deadline: when the next wait would end after
/// it, the last error is returned.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 turns retries off.
    pub max_attempts: u32,
    /// The wait before the first retry (jittered over its upper half).
    pub initial_backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
    /// How much each wait grows.
    pub multiplier: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
            multiplier: 2.0,
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, retry: u32) -> Duration {
        let step = self.initial_backoff.as_secs_f64() * self.multiplier.powi(retry as i32 - 1);
        let step = step.min(self.max_backoff.as_secs_f64());
        // RandomState is randomly keyed, which is all the jitter needs.
        let r = RandomState::new().hash_one(retry) as f64 / u64::MAX as f64;
        Duration::from_secs_f64(step / 2.0 + r * step / 2.0)
    }
}

/// A write's time to live and condition:
/// `SetOptions::default().ttl(Duration::from_secs(300)).only_if_absent()`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SetOptions {
    ttl: Option<Duration>,
    condition: SetCondition,
}

impl SetOptions {
    /// Expire the entry after `ttl`; zero means no expiry.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Store only if the key is absent (Redis SET NX); replaces `only_if_present`.
    pub fn only_if_absent(mut self) -> Self {
        self.condition = SetCondition::IfAbsent;
        self
    }

    /// Store only if the key is present (Redis SET XX); replaces `only_if_absent`.
    pub fn only_if_present(mut self) -> Self {
        self.condition = SetCondition::IfPresent;
        self
    }
}

/// One write of [`Client::set_many`].
#[derive(Debug, Clone)]
pub struct Item {
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// Its TTL and condition.
    pub options: SetOptions,
}

impl Item {
    /// An unconditional write without expiry.
    pub fn new(key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Self {
        Item { key: key.as_ref().to_vec(), value: value.as_ref().to_vec(), options: SetOptions::default() }
    }

    /// The same write with `options`.
    pub fn options(mut self, options: SetOptions) -> Self {
        self.options = options;
        self
    }
}

/// The server's counters since it started; see `proto/cachee/v1/cache_service.proto`.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct Stats {
    pub hits: u64,
    pub misses: u64,
    pub sets: u64,
    pub deletes: u64,
    pub evictions: u64,
    pub expirations: u64,
    pub entries: i64,
    pub memory_used_bytes: i64,
    pub memory_limit_bytes: i64,
    pub hit_rate: f64,
    pub uptime: Duration,
    pub latency_p50: Duration,
    pub latency_p95: Duration,
    pub latency_p99: Duration,
    pub generation: u64,
    pub eviction: String,
    pub segment_path: String,
}

/// How far a prewarm has got; `done` is true on the final counts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct PrewarmProgress {
    pub requested: i64,
    pub loaded: i64,
    pub skipped: i64,
    pub failed: i64,
    pub elapsed: Duration,
    pub done: bool,
}

/// What [`Client::prewarm`] asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrewarmOptions {
    /// How many hot keys to load; 0: the server's `--prewarm-keys`.
    pub keys: u32,
    /// How long the server may spend; `None`: its `--prewarm-timeout`.
    pub source_timeout: Option<Duration>,
    /// The call's deadline; `None`: [`DEFAULT_PREWARM_TIMEOUT`].
    pub timeout: Option<Duration>,
}

/// Options of a [`Client`].
#[derive(Debug, Clone, Default)]
pub struct Builder {
    address: Option<String>,
    timeout: Option<Duration>,
    retry: RetryPolicy,
    shm: ShmOptions,
}

impl Builder {
    /// `unix:///path.sock`, a socket path, or `host:port`; unset: [`Address::from_env`].
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// The deadline of each call (default 5 s); [`Client::with_timeout`] changes it per call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How UNAVAILABLE is retried.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The directory of the sidecar's shared-memory segment (its `--shm`). Unset:
    /// `CACHEE_SHM` (set and empty turns shared memory off), else `/dev/shm/cachee`. An
    /// empty path turns shared memory off. The client reads the segment only while it
    /// is there, valid, written by a live sidecar, and the very one the gRPC address
    /// serves (its generation equals the one Stats reports); otherwise every get goes
    /// over gRPC.
    pub fn shm_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.shm.dir = Some(dir.into());
        self.shm.off = false;
        self
    }

    /// Turns shared-memory reads off: every call goes over gRPC.
    pub fn without_shm(mut self) -> Self {
        self.shm.off = true;
        self
    }

    /// How the client decides that a mapped segment no longer reflects a live sidecar:
    /// it checks every `interval` (default 20 ms) that the sidecar still holds the
    /// segment's lock, still has it at the same path and generation, and that its clock
    /// lags real time by at most `max_lag` (default 500 ms).
    pub fn shm_staleness(mut self, interval: Duration, max_lag: Duration) -> Self {
        self.shm.check_interval = interval;
        self.shm.max_lag = max_lag;
        self
    }

    /// How often hits served from shared memory are reported to the sidecar (default
    /// 50 ms), so that they count in its statistics and eviction policy.
    pub fn shm_flush_interval(mut self, interval: Duration) -> Self {
        self.shm.flush_interval = interval;
        self
    }

    /// Creates the client. Connecting is lazy: an unreachable server surfaces at the
    /// first call. Must run inside a tokio runtime.
    pub async fn connect(self) -> Result<Client, Error> {
        let address = match &self.address {
            Some(a) => Address::parse(a).ok_or_else(|| {
                Error::invalid_address(format!("invalid address {a:?}: want unix:///path.sock or host:port"))
            })?,
            None => Address::from_env(),
        };
        let channel = match &address {
            Address::Unix(path) => {
                let path = Arc::new(path.clone());
                // The URI only names the :authority; every connection is the socket.
                Endpoint::from_static("http://localhost").connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                    let path = Arc::clone(&path);
                    async move { Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(&*path).await?)) }
                }))
            }
            Address::Tcp(hostport) => Endpoint::from_shared(format!("http://{hostport}"))
                .map_err(|e| Error::invalid_address(format!("invalid address {hostport:?}: {e}")))?
                .connect_lazy(),
        };
        let rpc = CacheServiceClient::new(channel)
            // BatchGet of many large values exceeds tonic's 4 MiB default; the sidecar is
            // local and bounds what it accepts itself.
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let shm = Shm::start(&self.shm, rpc.clone(), timeout).await;
        Ok(Client { rpc, address, timeout, retry: self.retry, shm })
    }
}

/// A connection to a cachee sidecar over gRPC, on its Unix socket or over TCP. Cheap to
/// clone: clones share one HTTP/2 connection.
#[derive(Debug, Clone)]
pub struct Client {
    rpc: CacheServiceClient<Channel>,
    address: Address,
    timeout: Duration,
    retry: RetryPolicy,
    shm: Option<Arc<Shm>>,
}

fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration { seconds: d.as_secs() as i64, nanos: d.subsec_nanos() as i32 }
}

fn std_duration(d: Option<prost_types::Duration>) -> Duration {
    d.and_then(|d| Duration::try_from(d).ok()).unwrap_or_default()
}

/// ErrorInfo reasons of an UNAVAILABLE the server sends before it applies anything.
const REFUSED_REASONS: [&str; 2] = ["OVERLOADED", "SHUTTING_DOWN"];

/// Whether a call that failed with `err` may be sent again. Only UNAVAILABLE is retried.
/// `safe` calls (get, get_many, stats, set without a condition) give the same result when
/// repeated, so any UNAVAILABLE is retried; any other call (a conditional set, delete,
/// set_many) only when the server refused it before applying it (reason OVERLOADED or
/// SHUTTING_DOWN): a plain UNAVAILABLE, e.g. a connection reset, may follow an applied write.
fn may_retry(safe: bool, err: &Error) -> bool {
    err.kind() == ErrorKind::Unavailable && (safe || err.reason().is_some_and(|r| REFUSED_REASONS.contains(&r)))
}

fn request<M>(message: M, timeout: Duration) -> tonic::Request<M> {
    let mut r = tonic::Request::new(message);
    r.set_timeout(timeout); // the server stops working on it, too, at the deadline
    r
}

impl Client {
    /// Connects to the address the environment names ([`Address::from_env`]).
    pub async fn connect() -> Result<Client, Error> {
        Builder::default().connect().await
    }

    /// Options for a client.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The address this client dials.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// This client with another deadline per call, for one call or many:
    /// `client.with_timeout(Duration::from_millis(200)).get("k").await`.
    pub fn with_timeout(&self, timeout: Duration) -> Client {
        Client { timeout, ..self.clone() }
    }

    /// Calls `attempt_once`, retrying as [`may_retry`] allows; `safe`: the call may be
    /// repeated after it was applied.
    async fn call<T, F, Fut>(&self, safe: bool, mut attempt_once: F) -> Result<T, Error>
    where
        F: FnMut(CacheServiceClient<Channel>, Duration) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let deadline = Instant::now() + self.timeout;
        let mut attempt = 1;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(Error::new(Code::DeadlineExceeded, "deadline passed before the call"));
            }
            let err = match tokio::time::timeout(remaining, attempt_once(self.rpc.clone(), remaining)).await {
                Ok(Ok(r)) => return Ok(r.into_inner()),
                // tonic ends a call whose grpc-timeout ran out as CANCELLED: it is this
                // call's deadline, not a cancellation.
                Ok(Err(status)) if status.code() == Code::Cancelled && Instant::now() >= deadline => {
                    Error::new(Code::DeadlineExceeded, "deadline exceeded")
                }
                Ok(Err(status)) => Error::from_status(&status),
                Err(_) => Error::new(Code::DeadlineExceeded, "deadline exceeded"),
            };
            if !may_retry(safe, &err) || attempt >= self.retry.max_attempts {
                return Err(err);
            }
            let wait = self.retry.backoff(attempt);
            if Instant::now() + wait >= deadline {
                return Err(err);
            }
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// The value under `key`, or `None` when it is absent or expired. A hit in the
    /// shared-memory segment returns without a round trip; anything else goes over gRPC.
    pub async fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, Error> {
        self.get_with(key, <[u8]>::to_vec).await
    }

    /// The value under `key`, passed to `f`, whose result is returned; `None` when the
    /// key is absent or expired. A hit in the shared-memory segment allocates nothing:
    /// `f` gets a copy of the value on the stack (values up to 512 bytes) or in a buffer
    /// kept per thread.
    pub async fn get_with<R>(&self, key: impl AsRef<[u8]>, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, Error> {
        let key = key.as_ref();
        let mut f = Some(f);
        if let Some(shm) = &self.shm {
            if let Ok(r) = shm.reader.get_with(key, |v| f.take().expect("called once")(v)) {
                return Ok(Some(r));
            }
        }
        let f = f.expect("not called on a fallback");
        Ok(self.get_rpc(key).await?.map(|v| f(&v)))
    }

    /// Appends the value under `key` to `out` and returns true, or returns false when it
    /// is absent or expired. A hit in the shared-memory segment allocates only when out
    /// is short of room: reuse one buffer and hits allocate nothing.
    pub async fn get_into(&self, key: impl AsRef<[u8]>, out: &mut Vec<u8>) -> Result<bool, Error> {
        let key = key.as_ref();
        if let Some(shm) = &self.shm {
            if shm.reader.get_into(key, out).is_ok() {
                return Ok(true);
            }
        }
        match self.get_rpc(key).await? {
            Some(v) => {
                out.extend_from_slice(&v);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn get_rpc(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let m = GetRequest { key: key.to_vec() };
        let r = self.call(true, |mut rpc, t| { let req = request(m.clone(), t); async move { rpc.get(req).await } }).await?;
        Ok(r.found.then_some(r.value))
    }

    /// What the shared-memory reader is doing (the segment's generation while one is
    /// read, why none is, hits served), or `None` when shared memory is off.
    pub fn shm_status(&self) -> Option<ShmStatus> {
        self.shm.as_ref().map(|s| s.reader.status())
    }

    /// Stores `value`; `false` only when a condition was not met.
    pub async fn set(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>, options: SetOptions) -> Result<bool, Error> {
        let m = SetRequest {
            key: key.as_ref().to_vec(),
            value: value.as_ref().to_vec(),
            ttl: options.ttl.map(duration),
            condition: options.condition as i32,
        };
        // A conditional set repeated after it was applied would report its own write.
        let safe = options.condition == SetCondition::Unspecified;
        let r = self.call(safe, |mut rpc, t| { let req = request(m.clone(), t); async move { rpc.set(req).await } }).await?;
        Ok(r.stored)
    }

    /// Removes `key`; whether it was there.
    pub async fn delete(&self, key: impl AsRef<[u8]>) -> Result<bool, Error> {
        let m = DeleteRequest { key: key.as_ref().to_vec() };
        let r = self.call(false, |mut rpc, t| { let req = request(m.clone(), t); async move { rpc.delete(req).await } }).await?;
        Ok(r.deleted)
    }

    /// Values in the order of `keys`, `None` where absent; at most 1000 keys.
    pub async fn get_many<K: AsRef<[u8]>>(&self, keys: impl IntoIterator<Item = K>) -> Result<Vec<Option<Vec<u8>>>, Error> {
        let m = BatchGetRequest { keys: keys.into_iter().map(|k| k.as_ref().to_vec()).collect() };
        let r = self.call(true, |mut rpc, t| { let req = request(m.clone(), t); async move { rpc.batch_get(req).await } }).await?;
        Ok(r.results.into_iter().map(|x| x.found.then_some(x.value)).collect())
    }

    /// Stores items in order; one flag per item. On error, earlier items may be stored.
    pub async fn set_many(&self, items: impl IntoIterator<Item = Item>) -> Result<Vec<bool>, Error> {
        let m = BatchSetRequest {
            items: items
                .into_iter()
                .map(|it| BatchSetItem {
                    key: it.key,
                    value: it.value,
                    ttl: it.options.ttl.map(duration),
                    condition: it.options.condition as i32,
                })
                .collect(),
        };
        let r = self.call(false, |mut rpc, t| { let req = request(m.clone(), t); async move { rpc.batch_set(req).await } }).await?;
        Ok(r.stored)
    }

    /// The server's statistics.
    pub async fn stats(&self) -> Result<Stats, Error> {
        let r = self
            .call(true, |mut rpc, t| { let req = request(StatsRequest {}, t); async move { rpc.stats(req).await } })
            .await?;
        Ok(Stats {
            hits: r.hits,
            misses: r.misses,
            sets: r.sets,
            deletes: r.deletes,
            evictions: r.evictions,
            expirations: r.expirations,
            entries: r.entries,
            memory_used_bytes: r.memory_used_bytes,
            memory_limit_bytes: r.memory_limit_bytes,
            hit_rate: r.hit_rate,
            uptime: std_duration(r.uptime),
            latency_p50: std_duration(r.latency_p50),
            latency_p95: std_duration(r.latency_p95),
            latency_p99: std_duration(r.latency_p99),
            generation: r.generation,
            eviction: r.eviction,
            segment_path: r.segment_path,
        })
    }

    /// Loads the hottest keys from the server's prewarm source, passing each progress
    /// message to `on_progress`, and returns the final counts. Not retried: a prewarm
    /// that failed part-way is not restarted behind the caller's back. Without a
    /// prewarm source the server fails it with [`ErrorKind::FailedPrecondition`].
    pub async fn prewarm(
        &self,
        options: PrewarmOptions,
        mut on_progress: impl FnMut(&PrewarmProgress),
    ) -> Result<PrewarmProgress, Error> {
        let timeout = options.timeout.unwrap_or(DEFAULT_PREWARM_TIMEOUT);
        let req = request(
            PrewarmRequest { keys: options.keys.min(i32::MAX as u32) as i32, timeout: options.source_timeout.map(duration) },
            timeout,
        );
        let mut rpc = self.rpc.clone();
        let run = async move {
            let mut stream = rpc.prewarm(req).await?.into_inner();
            let mut last: Option<PrewarmProgress> = None;
            while let Some(msg) = stream.message().await? {
                let c = msg.counts.unwrap_or_default();
                let p = PrewarmProgress {
                    requested: c.requested,
                    loaded: c.loaded,
                    skipped: c.skipped,
                    failed: c.failed,
                    elapsed: std_duration(c.elapsed),
                    done: msg.done,
                };
                if !p.done {
                    on_progress(&p);
                }
                last = Some(p);
            }
            Ok::<_, tonic::Status>(last)
        };
        match tokio::time::timeout(timeout, run).await {
            Err(_) => Err(Error::new(Code::DeadlineExceeded, "deadline exceeded")),
            Ok(Err(status)) => Err(Error::from_status(&status)),
            Ok(Ok(Some(p))) if p.done => Ok(p),
            Ok(Ok(_)) => Err(Error::new(Code::Internal, "prewarm ended without final counts")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use tonic_types::{ErrorDetails, StatusExt};

    use super::*;

    fn status(code: Code, reason: Option<&str>) -> Error {
        let s = match reason {
            Some(r) => tonic::Status::with_error_details(
                code,
                "x",
                ErrorDetails::with_error_info(r, crate::ERROR_DOMAIN, HashMap::<String, String>::new()),
            ),
            None => tonic::Status::new(code, "x"),
        };
        Error::from_status(&s)
    }

    #[test]
    fn retries_only_calls_safe_to_repeat_or_refused_unapplied() {
        // A connection reset (no reason) after a conditional write may hide an applied write.
        assert!(!may_retry(false, &status(Code::Unavailable, None)));
        assert!(may_retry(true, &status(Code::Unavailable, None))); // get, get_many, stats, plain set
        // The server refused the call before applying it: any call may go again.
        assert!(may_retry(false, &status(Code::Unavailable, Some("OVERLOADED"))));
        assert!(may_retry(false, &status(Code::Unavailable, Some("SHUTTING_DOWN"))));
        assert!(!may_retry(false, &status(Code::Unavailable, Some("PREWARM_SOURCE_UNAVAILABLE"))));
        assert!(!may_retry(true, &status(Code::InvalidArgument, Some("KEY_EMPTY"))));
    }
}
