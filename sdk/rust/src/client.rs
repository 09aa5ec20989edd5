use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use cachee_proto::v1::{
    BatchGetRequest, BatchGetResponse, BatchSetItem, BatchSetRequest, BatchSetResponse, DeleteRequest, DeleteResponse,
    GetRequest, GetResponse, PrewarmRequest, PrewarmResponse, SetCondition, SetRequest, SetResponse, StatsRequest,
    StatsResponse,
};
use hyper_util::rt::TokioIo;
use futures_core::Stream;
use tonic::transport::{Endpoint, Uri};

use crate::address::{resolve_token, Address};
use crate::error::{connect_failed, Code, Error};
use crate::retry::{should_retry, Method, RetryPolicy, DEFAULT_PREWARM_TIMEOUT, DEFAULT_TIMEOUT};
use crate::rpc::{Auth, Rpc};
use crate::shm::{Shm, ShmOptions, ShmStatus};

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

/// A prewarm that failed: the sidecar's or the transport's error, or the error the
/// progress callback returned (which cancelled the prewarm's stream at once).
#[derive(Debug)]
pub enum PrewarmError<E> {
    /// The call failed.
    Cachee(Error),
    /// The progress callback returned this error.
    Callback(E),
}

impl<E: fmt::Display> fmt::Display for PrewarmError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrewarmError::Cachee(e) => e.fmt(f),
            PrewarmError::Callback(e) => write!(f, "the prewarm progress callback failed: {e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for PrewarmError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PrewarmError::Cachee(e) => Some(e),
            PrewarmError::Callback(e) => Some(e),
        }
    }
}

/// Options of a [`Client`].
#[derive(Debug, Clone, Default)]
pub struct Builder {
    address: Option<String>,
    timeout: Option<Duration>,
    retry: RetryPolicy,
    shm: ShmOptions,
    token: Option<String>,
}

impl Builder {
    /// `unix:///path.sock`, a socket path, or `host:port`; unset or empty: the
    /// environment ([`Address::from_env`]).
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// The deadline of a call whose caller gives none (default 1 s);
    /// [`Client::with_timeout`] gives one per call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Which failures are retried how often (default: 3 attempts, 10 ms to 200 ms).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The sidecar's bearer token (its `--auth-token`), sent on every call as
    /// `authorization: Bearer <token>`. Unset: `CACHEE_AUTH_TOKEN`, when set and not empty.
    pub fn auth_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
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

    /// Creates the client. Connecting is lazy: until the sidecar answers, calls fail
    /// with [`crate::ErrorKind::Unavailable`]. Must run inside a tokio runtime.
    pub async fn connect(self) -> Result<Client, Error> {
        let var = |k: &str| std::env::var(k).ok();
        let address = Address::resolve(self.address.as_deref(), var).ok_or_else(|| {
            Error::invalid_address(format!(
                "invalid address {:?}: want unix:///path.sock, /path.sock or host:port",
                self.address.as_deref().unwrap_or_default()
            ))
        })?;
        let auth = Auth::new(resolve_token(self.token.as_deref(), var).as_deref())?;
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
        let rpc = Rpc::new(channel, auth);
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let shm = Shm::start(&self.shm, rpc.clone(), timeout).await;
        let inner = Inner {
            rpc,
            address,
            retry: self.retry,
            shm,
            closed: AtomicBool::new(false),
            down: AtomicBool::new(false),
        };
        Ok(Client { inner: Arc::new(inner), timeout, caller_deadline: false })
    }
}

struct Inner {
    rpc: Rpc,
    address: Address,
    retry: RetryPolicy,
    shm: Option<Shm>,
    closed: AtomicBool,
    // The last connection attempt failed and no call has succeeded since: a call that
    // fails to connect is not retried (docs/sdk-contract.md, known_down).
    down: AtomicBool,
}

/// A client of one cachee sidecar: gRPC on its Unix socket or over TCP, and, where the
/// sidecar's segment is mounted, hits read from shared memory. Cheap to clone: clones
/// share one HTTP/2 connection and one segment reader; [`Client::close`] closes them all.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    timeout: Duration,
    caller_deadline: bool,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("address", &self.inner.address).field("timeout", &self.timeout).finish()
    }
}

fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration { seconds: d.as_secs() as i64, nanos: d.subsec_nanos() as i32 }
}

fn std_duration(d: Option<prost_types::Duration>) -> Duration {
    d.and_then(|d| Duration::try_from(d).ok()).unwrap_or_default()
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
        &self.inner.address
    }

    /// This client with the caller's own deadline per call, for one call or many:
    /// `client.with_timeout(Duration::from_millis(200)).get("k").await`.
    pub fn with_timeout(&self, timeout: Duration) -> Client {
        Client { timeout, caller_deadline: true, ..self.clone() }
    }

    /// Closes the client and every clone of it: shared-memory reads stop, the hits not
    /// reported yet are reported (best effort, within the default deadline), and every
    /// call after it fails with [`crate::ErrorKind::Closed`] at once, without network
    /// I/O. Final and idempotent.
    pub async fn close(&self) {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(shm) = &self.inner.shm {
            shm.close().await;
        }
    }

    /// Sends msg as method, retrying as docs/sdk-contract.md says; conditional: a write
    /// condition on any item. The message is built once and shared by every attempt.
    async fn call<Req, Resp>(&self, method: Method, conditional: bool, msg: Req) -> Result<Resp, Error>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + 'static,
    {
        let inner = &*self.inner;
        if inner.closed.load(Ordering::Relaxed) {
            return Err(Error::closed());
        }
        let msg = Arc::new(msg);
        let deadline = Instant::now() + self.timeout;
        let mut attempt = 1;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(Error::deadline(!self.caller_deadline));
            }
            let err = match tokio::time::timeout(remaining, inner.rpc.unary(method.name(), Arc::clone(&msg), remaining)).await {
                Ok(Ok(r)) => {
                    inner.down.store(false, Ordering::Relaxed);
                    return Ok(r);
                }
                // tonic ends a call whose grpc-timeout ran out as CANCELLED: it is this
                // call's deadline, not a cancellation.
                Ok(Err(status)) if status.code() == tonic::Code::Cancelled && Instant::now() >= deadline => {
                    Error::deadline(!self.caller_deadline)
                }
                Ok(Err(status)) => {
                    if status.code() == tonic::Code::Unavailable && connect_failed(&status) {
                        inner.down.store(true, Ordering::Relaxed);
                    }
                    Error::from_status(status)
                }
                Err(_) => Error::deadline(!self.caller_deadline),
            };
            if inner.closed.load(Ordering::Relaxed) {
                return Err(Error::closed());
            }
            let known_down = inner.down.load(Ordering::Relaxed);
            // A stream the sidecar refused unread is retried as a refusal (OVERLOADED) is.
            let retry = if err.refused_unread() {
                should_retry(method, conditional, Code::Unavailable, Some("OVERLOADED"), known_down)
            } else {
                should_retry(method, conditional, err.code(), err.reason(), known_down)
            };
            if attempt >= inner.retry.max_attempts || !retry {
                return Err(err);
            }
            let wait = inner.retry.backoff(attempt);
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
        if let Some(shm) = &self.inner.shm {
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
        if let Some(shm) = &self.inner.shm {
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
        let r: GetResponse = self.call(Method::Get, false, GetRequest { key: key.to_vec() }).await?;
        Ok(r.found.then_some(r.value))
    }

    /// What the shared-memory reader is doing (the segment's generation while one is
    /// read, why none is, hits served), or `None` when shared memory is off.
    pub fn shm_status(&self) -> Option<ShmStatus> {
        self.inner.shm.as_ref().map(|s| s.reader.status())
    }

    /// Stores `value`; `false` only when a condition was not met.
    pub async fn set(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>, options: SetOptions) -> Result<bool, Error> {
        let m = SetRequest {
            key: key.as_ref().to_vec(),
            value: value.as_ref().to_vec(),
            ttl: options.ttl.map(duration),
            condition: options.condition as i32,
        };
        let conditional = options.condition != SetCondition::Unspecified;
        let r: SetResponse = self.call(Method::Set, conditional, m).await?;
        Ok(r.stored)
    }

    /// Removes `key`; whether it was there.
    pub async fn delete(&self, key: impl AsRef<[u8]>) -> Result<bool, Error> {
        let r: DeleteResponse = self.call(Method::Delete, false, DeleteRequest { key: key.as_ref().to_vec() }).await?;
        Ok(r.deleted)
    }

    /// Values in the order of `keys`, `None` where absent; at most 1000 keys.
    pub async fn get_many<K: AsRef<[u8]>>(&self, keys: impl IntoIterator<Item = K>) -> Result<Vec<Option<Vec<u8>>>, Error> {
        let m = BatchGetRequest { keys: keys.into_iter().map(|k| k.as_ref().to_vec()).collect() };
        let r: BatchGetResponse = self.call(Method::BatchGet, false, m).await?;
        Ok(r.results.into_iter().map(|x| x.found.then_some(x.value)).collect())
    }

    /// Stores items in order; one flag per item. On error, earlier items may be stored.
    pub async fn set_many(&self, items: impl IntoIterator<Item = Item>) -> Result<Vec<bool>, Error> {
        let items: Vec<BatchSetItem> = items
            .into_iter()
            .map(|it| BatchSetItem {
                key: it.key,
                value: it.value,
                ttl: it.options.ttl.map(duration),
                condition: it.options.condition as i32,
            })
            .collect();
        let conditional = items.iter().any(|it| it.condition != SetCondition::Unspecified as i32);
        let r: BatchSetResponse = self.call(Method::BatchSet, conditional, BatchSetRequest { items }).await?;
        Ok(r.stored)
    }

    /// The server's statistics.
    pub async fn stats(&self) -> Result<Stats, Error> {
        let r: StatsResponse = self.call(Method::Stats, false, StatsRequest {}).await?;
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
    /// prewarm source the server fails it with [`crate::ErrorKind::PrewarmNotConfigured`].
    pub async fn prewarm(
        &self,
        options: PrewarmOptions,
        mut on_progress: impl FnMut(&PrewarmProgress),
    ) -> Result<PrewarmProgress, Error> {
        let infallible = |p: &PrewarmProgress| -> Result<(), Infallible> {
            on_progress(p);
            Ok(())
        };
        match self.try_prewarm(options, infallible).await {
            Ok(p) => Ok(p),
            Err(PrewarmError::Cachee(e)) => Err(e),
            Err(PrewarmError::Callback(never)) => match never {},
        }
    }

    /// As [`Client::prewarm`], with a callback that may fail: its error cancels the
    /// prewarm's stream at once and is what the call returns.
    pub async fn try_prewarm<E>(
        &self,
        options: PrewarmOptions,
        mut on_progress: impl FnMut(&PrewarmProgress) -> Result<(), E>,
    ) -> Result<PrewarmProgress, PrewarmError<E>> {
        let mut stream = self.prewarm_stream(options).await.map_err(PrewarmError::Cachee)?;
        let mut last = None;
        while let Some(p) = std::future::poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await {
            let p = p.map_err(PrewarmError::Cachee)?;
            if !p.done {
                // Dropping the stream on a failed callback cancels the call.
                on_progress(&p).map_err(PrewarmError::Callback)?;
            }
            last = Some(p);
        }
        match last {
            Some(p) if p.done => Ok(p),
            _ => Err(PrewarmError::Cachee(Error::new(
                crate::ErrorKind::Internal,
                Code::Internal,
                "prewarm ended without final counts",
            ))),
        }
    }

    /// Starts a prewarm and returns its progress as a [`futures_core::Stream`]: every
    /// message, the last one with `done` set. Dropping the stream cancels the prewarm's
    /// call.
    pub async fn prewarm_stream(&self, options: PrewarmOptions) -> Result<PrewarmStream, Error> {
        if self.inner.closed.load(Ordering::Relaxed) {
            return Err(Error::closed());
        }
        let default_deadline = options.timeout.is_none();
        let timeout = options.timeout.unwrap_or(DEFAULT_PREWARM_TIMEOUT);
        let deadline = tokio::time::Instant::now() + timeout;
        let m = PrewarmRequest {
            keys: options.keys.min(i32::MAX as u32) as i32,
            timeout: options.source_timeout.map(duration),
        };
        let start = tokio::time::timeout_at(deadline, self.inner.rpc.server_streaming(Method::Prewarm.name(), Arc::new(m), timeout));
        let inner = match start.await {
            Err(_) => return Err(Error::deadline(default_deadline)),
            Ok(Err(status)) => return Err(Error::from_status(status)),
            Ok(Ok(s)) => s,
        };
        Ok(PrewarmStream { inner, deadline: Box::pin(tokio::time::sleep_until(deadline)), default_deadline, ended: false })
    }
}

/// A prewarm's progress (see [`Client::prewarm_stream`]).
pub struct PrewarmStream {
    inner: tonic::Streaming<PrewarmResponse>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    default_deadline: bool,
    ended: bool,
}

impl fmt::Debug for PrewarmStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrewarmStream").field("ended", &self.ended).finish()
    }
}

impl Stream for PrewarmStream {
    type Item = Result<PrewarmProgress, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.ended = true;
            return Poll::Ready(Some(Err(Error::deadline(self.default_deadline))));
        }
        let item = match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => None,
            Poll::Ready(Some(Err(status))) => Some(Err(Error::from_status(status))),
            Poll::Ready(Some(Ok(msg))) => {
                let c = msg.counts.unwrap_or_default();
                Some(Ok(PrewarmProgress {
                    requested: c.requested,
                    loaded: c.loaded,
                    skipped: c.skipped,
                    failed: c.failed,
                    elapsed: std_duration(c.elapsed),
                    done: msg.done,
                }))
            }
        };
        if !matches!(item, Some(Ok(_))) {
            self.ended = true;
        }
        Poll::Ready(item)
    }
}
