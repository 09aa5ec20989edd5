//! docs/sdk-contract.md end to end, against a real cachee: an OVERLOADED retry, prewarm
//! with progress and with a failing callback, cancellation, calls after close, and the
//! bearer token.
mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cachee::{Client, ErrorKind, Item, PrewarmError, PrewarmOptions, RetryPolicy, SetOptions};
use common::{eventually, Server};

fn addr(s: &Server) -> String {
    format!("unix://{}", s.sock.display())
}

async fn client(s: &Server) -> Client {
    Client::builder().address(addr(s)).shm_dir(&s.shm).timeout(Duration::from_secs(10)).connect().await.unwrap()
}

/// A redis-server on a free loopback port, without persistence; killed on drop.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (make deps installs it)");
        let r = Redis { child, port };
        for _ in 0..500 {
            if r.connection().is_ok() {
                return r;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server did not start");
    }

    fn connection(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(format!("redis://127.0.0.1:{}", self.port))?.get_connection()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A sidecar whose prewarm source holds n keys.
fn prewarm_setup(n: usize) -> (Redis, Server) {
    let r = Redis::start();
    let mut c = r.connection().unwrap();
    let mut pipe = redis::pipe();
    for i in 0..n {
        pipe.cmd("SET").arg(format!("warm:{i}")).arg(format!("value {i}")).ignore();
    }
    pipe.query::<()>(&mut c).unwrap();
    let source = format!("--prewarm-source=redis://127.0.0.1:{}", r.port);
    let s = Server::start_with(&[&source, "--prewarm-keys=0", "--prewarm-timeout=30s"]);
    (r, s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overloaded_calls_are_retried() {
    // The least client memory the 8mb sidecar takes, little more than one call of the
    // largest message: concurrent Gets of a large value each reserve the value's bytes
    // for their answer, and those that find no room are refused OVERLOADED before
    // anything is sent.
    let s = Server::start_with(&["--max-client-memory=2334720"]);
    let value = vec![7u8; 700 << 10];
    Client::builder().address(addr(&s)).without_shm().connect().await.unwrap().set("ov:big", &value, SetOptions::default()).await.unwrap();
    let attempt = |retry: RetryPolicy, rounds: usize| {
        let (a, value) = (addr(&s), value.clone());
        async move {
            let overloaded = Arc::new(AtomicU64::new(0));
            let c = Client::builder().address(&a).without_shm().retry(retry).timeout(Duration::from_secs(60)).connect().await.unwrap();
            for _ in 0..rounds {
                let mut tasks = tokio::task::JoinSet::new();
                for _ in 0..32 {
                    let (c, value, overloaded) = (c.clone(), value.clone(), overloaded.clone());
                    tasks.spawn(async move {
                        match c.get("ov:big").await {
                            Ok(v) => assert_eq!(v.as_deref(), Some(&value[..])),
                            Err(e) if e.kind() == ErrorKind::Overloaded => {
                                assert!(e.is(ErrorKind::Unavailable), "{e}");
                                assert_eq!(e.reason(), Some("OVERLOADED"));
                                overloaded.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => panic!("{e}"),
                        }
                    });
                }
                while let Some(r) = tasks.join_next().await {
                    r.unwrap();
                }
                if retry.max_attempts == 1 && overloaded.load(Ordering::Relaxed) > 0 {
                    break;
                }
            }
            overloaded.load(Ordering::Relaxed)
        }
    };
    // Without retries some calls fail OVERLOADED ...
    let once = RetryPolicy { max_attempts: 1, ..RetryPolicy::default() };
    let failed = attempt(once, 20).await;
    assert!(failed > 0, "the sidecar never refused a call: the test does not load it enough");
    // ... and with enough retries, under the same load, none does.
    let patient = RetryPolicy {
        max_attempts: 1000,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(20),
        multiplier: 2.0,
    };
    assert_eq!(attempt(patient, 5).await, 0, "calls failed OVERLOADED despite retries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prewarm_progress_callback_and_stream() {
    let (_redis, s) = prewarm_setup(3000);
    let c = client(&s).await;
    let opts = PrewarmOptions { keys: 3000, ..Default::default() };
    let mut seen = Vec::new();
    // A prewarm at start may still run; the sidecar refuses another meanwhile.
    let last = loop {
        seen.clear();
        match c.prewarm(opts, |p| seen.push(p.clone())).await {
            Err(e) if e.kind() == ErrorKind::PrewarmRunning => tokio::time::sleep(Duration::from_millis(10)).await,
            r => break r.unwrap(),
        }
    };
    assert!(last.done && last.requested > 0 && last.loaded + last.skipped + last.failed <= last.requested, "{last:?}");
    assert!(seen.iter().all(|p| !p.done));
    assert_eq!(c.get("warm:17").await.unwrap().as_deref(), Some(&b"value 17"[..]));

    // The same as a stream: every message, the final counts last.
    // The sidecar releases its prewarm a moment after the final counts.
    let mut stream = None;
    while stream.is_none() {
        match c.prewarm_stream(opts).await {
            Ok(st) => stream = Some(st),
            Err(e) if e.kind() == ErrorKind::PrewarmRunning => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(e) => panic!("{e}"),
        }
    }
    let mut stream = stream.unwrap();
    let mut items = Vec::new();
    while let Some(p) = std::future::poll_fn(|cx| futures_core::Stream::poll_next(std::pin::Pin::new(&mut stream), cx)).await {
        items.push(p.unwrap());
    }
    let final_counts = items.last().expect("at least the final counts");
    assert!(final_counts.done && items[..items.len() - 1].iter().all(|p| !p.done), "{items:?}");
}

#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stop")
    }
}

impl std::error::Error for Stop {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prewarm_callback_error_cancels_it() {
    let (_redis, s) = prewarm_setup(20_000);
    let c = client(&s).await;
    let opts = PrewarmOptions { keys: 20_000, ..Default::default() };
    let mut calls;
    let e = loop {
        calls = 0;
        match c
            .try_prewarm(opts, |_| {
                calls += 1;
                Err(Stop)
            })
            .await
        {
            Err(PrewarmError::Cachee(e)) if e.kind() == ErrorKind::PrewarmRunning => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            r => break r.unwrap_err(),
        }
    };
    assert!(matches!(e, PrewarmError::Callback(Stop)), "the callback's own error: {e}");
    assert_eq!(calls, 1, "no progress after the callback failed");
    // The stream was cancelled: the sidecar is not left running that prewarm, so the next
    // one is not refused as PREWARM_RUNNING (for long: the cancellation reaches it at once).
    let mut last = None;
    eventually("a new prewarm to be accepted", || {
        last = Some(futures_block(c.prewarm(PrewarmOptions { keys: 10, ..Default::default() }, |_| {})));
        !matches!(&last, Some(Err(e)) if e.kind() == ErrorKind::PrewarmRunning)
    })
    .await;
    last.unwrap().unwrap();
}

/// Runs a future on a fresh thread's runtime (for a condition polled by eventually).
fn futures_block<F: std::future::Future + Send>(f: F) -> F::Output
where
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f))
            .join()
            .unwrap()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_calls_leave_the_client_working() {
    let s = Server::start();
    let c = client(&s).await;
    c.set("k", "v", SetOptions::default()).await.unwrap();
    // With the sidecar stopped, a call waits; dropping it (here by aborting its task)
    // cancels its RPC.
    s.signal("STOP");
    let slow = c.with_timeout(Duration::from_secs(30));
    let task = tokio::spawn(async move { slow.set("k2", "v2", SetOptions::default()).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    s.signal("CONT");
    let g = Client::builder().address(addr(&s)).without_shm().connect().await.unwrap();
    assert_eq!(g.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(c.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_after_close_fail_closed() {
    let s = Server::start();
    let c = client(&s).await;
    c.set("k", "v", SetOptions::default()).await.unwrap();
    let gen = c.stats().await.unwrap().generation;
    eventually("the segment to be confirmed", || c.shm_status().and_then(|st| st.generation) == Some(gen)).await;
    assert_eq!(c.get("k").await.unwrap().as_deref(), Some(&b"v"[..])); // a shared-memory hit
    let clone = c.clone();
    c.close().await;
    c.close().await; // idempotent
    for (name, e) in [
        ("get", clone.get("k").await.unwrap_err()),
        ("get_many", clone.get_many(["k"]).await.unwrap_err()),
        ("set", clone.set("k", "v", SetOptions::default()).await.unwrap_err()),
        ("set_many", clone.set_many([Item::new("k", "v")]).await.unwrap_err()),
        ("delete", clone.delete("k").await.unwrap_err()),
        ("stats", clone.stats().await.unwrap_err()),
        ("prewarm", clone.prewarm(PrewarmOptions::default(), |_| {}).await.unwrap_err()),
    ] {
        assert_eq!(e.kind(), ErrorKind::Closed, "{name}: {e}");
    }
    assert_eq!(clone.shm_status().unwrap().generation, None, "shared memory is released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token() {
    let token = "0123456789abcdef0123456789abcdef";
    let s = Server::start_with(&[&format!("--auth-token={token}")]);
    let without = client(&s).await;
    let e = without.get("k").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert!(std::error::Error::source(&e).is_some(), "the status is the error's source");
    let e = Client::builder().address(addr(&s)).auth_token("wrong-token-wrong-token").connect().await.unwrap().get("k").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    let with = Client::builder().address(addr(&s)).shm_dir(&s.shm).auth_token(token).connect().await.unwrap();
    assert!(with.set("k", "v", SetOptions::default()).await.unwrap());
    assert_eq!(with.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    // Shared memory is confirmed with the token too (Stats), and its hits are reported.
    let gen = with.stats().await.unwrap().generation;
    eventually("the segment to be confirmed", || with.shm_status().and_then(|st| st.generation) == Some(gen)).await;
    let base = with.stats().await.unwrap().hits;
    for _ in 0..100 {
        with.get("k").await.unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while with.stats().await.unwrap().hits < base + 100 {
        assert!(std::time::Instant::now() < deadline, "hits never reported with the token");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
