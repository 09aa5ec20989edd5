//! The client against a real cachee.
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cachee::{Address, Client, Code, ErrorKind, Item, PrewarmOptions, SetOptions};
use common::{Server, TempDir};

fn key(name: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("rs:{name}:{}:{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

async fn client(s: &Server) -> Client {
    Client::builder()
        .address(format!("unix://{}", s.sock.display()))
        .shm_dir(&s.shm)
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .unwrap()
}

#[tokio::test]
async fn get_set_delete() {
    let s = Server::start();
    let c = client(&s).await;
    let k = key("gsd");
    assert_eq!(c.get(&k).await.unwrap(), None);
    let value: Vec<u8> = (0..120).map(|i| [0u8, 1, 0xff][i % 3]).collect(); // binary-safe
    assert!(c.set(&k, &value, SetOptions::default().ttl(Duration::from_secs(3600))).await.unwrap());
    assert_eq!(c.get(&k).await.unwrap(), Some(value));
    assert!(c.delete(&k).await.unwrap());
    assert!(!c.delete(&k).await.unwrap());
    assert_eq!(c.get(&k).await.unwrap(), None);
    // A present key may hold an empty value.
    c.set(&k, b"", SetOptions::default()).await.unwrap();
    assert_eq!(c.get(&k).await.unwrap(), Some(vec![]));
}

#[tokio::test]
async fn conditions_and_ttl() {
    let s = Server::start();
    let c = client(&s).await;
    let k = key("cond");
    assert!(!c.set(&k, "x", SetOptions::default().only_if_present()).await.unwrap());
    assert!(c.set(&k, "1", SetOptions::default().only_if_absent()).await.unwrap());
    assert!(!c.set(&k, "2", SetOptions::default().only_if_absent()).await.unwrap());
    assert!(c.set(&k, "3", SetOptions::default().only_if_present()).await.unwrap());
    assert_eq!(c.get(&k).await.unwrap().as_deref(), Some(&b"3"[..]));

    let t = key("ttl");
    c.set(&t, "v", SetOptions::default().ttl(Duration::from_millis(50))).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.get(&t).await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "key did not expire"); // the server's clock decides
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn batches_and_stats() {
    let s = Server::start();
    let c = client(&s).await;
    let k: Vec<String> = (0..3).map(|i| key(&format!("batch{i}"))).collect();
    let stored = c
        .set_many([
            Item::new(&k[0], "a"),
            Item::new(&k[1], "b").options(SetOptions::default().ttl(Duration::from_secs(60))),
            Item::new(&k[0], "z").options(SetOptions::default().only_if_absent()),
        ])
        .await
        .unwrap();
    assert_eq!(stored, vec![true, true, false]);
    let got = c.get_many([&k[1], &k[2], &k[0], &k[1]]).await.unwrap();
    assert_eq!(got, vec![Some(b"b".to_vec()), None, Some(b"a".to_vec()), Some(b"b".to_vec())]);

    let st = c.stats().await.unwrap();
    assert!(st.sets >= 2 && st.hits >= 3 && st.misses >= 1, "{st:?}");
    assert!(st.entries >= 2 && st.memory_limit_bytes > 0 && st.uptime > Duration::ZERO);
    assert_eq!(st.eviction, "cachee-lfu");
}

#[tokio::test]
async fn prewarm_without_source_is_failed_precondition() {
    let s = Server::start();
    let c = client(&s).await;
    let e = c.prewarm(PrewarmOptions::default(), |_| {}).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PrewarmNotConfigured, "{e}");
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(e.reason(), Some("PREWARM_NOT_CONFIGURED"));
}

#[tokio::test]
async fn errors_carry_kind_and_reason() {
    let s = Server::start();
    let c = client(&s).await;
    let e = c.get("").await.unwrap_err();
    assert_eq!((e.kind(), e.reason()), (ErrorKind::KeyEmpty, Some("KEY_EMPTY")));
    assert!(e.is(ErrorKind::InvalidArgument));
    // The cause is kept: the gRPC status is the error's source.
    assert!(std::error::Error::source(&e).is_some_and(|s| s.to_string().contains("key")), "{e:?}");
    let e = c.set(key("big"), vec![0u8; (1 << 20) + 1], SetOptions::default()).await.unwrap_err();
    assert_eq!((e.kind(), e.reason()), (ErrorKind::ValueTooLarge, Some("VALUE_TOO_LARGE")));
    assert_eq!(e.metadata().get("field").map(String::as_str), Some("value"));
    let e = c.get_many(vec!["k"; 1001]).await.unwrap_err();
    assert_eq!(e.reason(), Some("BATCH_TOO_LARGE"));
    // Over the server's message limit (reason MESSAGE_TOO_LARGE; from gRPC itself,
    // RESOURCE_EXHAUSTED without one: the same class either way).
    let e = c.set(key("huge"), vec![0u8; 2 << 20], SetOptions::default()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MessageTooLarge, "{e}");
    assert!(e.is(ErrorKind::InvalidArgument));
    // The caller's own deadline: DeadlineExceeded alone.
    let e = c.with_timeout(Duration::ZERO).get("k").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DeadlineExceeded);
    assert!(!e.is(ErrorKind::Unavailable));
    let e = Client::builder().address("nonsense").connect().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

#[tokio::test]
async fn concurrent_calls_share_one_connection() {
    let s = Server::start();
    let c = client(&s).await;
    let k = key("many");
    c.set(&k, "v", SetOptions::default()).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (c, k) = (c.clone(), k.clone());
        tasks.spawn(async move { c.get(&k).await });
    }
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.unwrap().unwrap().as_deref(), Some(&b"v"[..]));
    }
}

#[tokio::test]
async fn environment_selects_tcp() {
    let s = Server::start();
    let (host, port) = s.tcp.split_once(':').unwrap();
    let vars = |k: &str| match k {
        "CACHE_HOST" => Some(host.to_string()),
        "CACHE_PORT" => Some(port.to_string()),
        _ => None,
    };
    assert_eq!(Address::from_vars(vars), Address::Tcp(s.tcp.clone()));
    let tcp = Client::builder().address(&s.tcp).connect().await.unwrap();
    let k = key("tcp");
    assert!(tcp.set(&k, "over tcp", SetOptions::default()).await.unwrap());
    assert_eq!(client(&s).await.get(&k).await.unwrap().as_deref(), Some(&b"over tcp"[..]));
}

#[test]
fn addresses() {
    assert_eq!(Address::parse("unix:///x.sock"), Some(Address::Unix("/x.sock".into())));
    assert_eq!(Address::parse("/x.sock"), Some(Address::Unix("/x.sock".into())));
    assert_eq!(Address::parse("h:1"), Some(Address::Tcp("h:1".into())));
    assert_eq!(Address::parse("h"), None);
    assert_eq!(Address::from_vars(|_| None), Address::Unix("/var/run/cachee/cachee.sock".into()));
    // The contract's cases (sdk/testdata/contract/address.json) are checked in the unit tests.
}

/// While the sidecar is down, calls fail at once with Unavailable (a connection that
/// cannot be made is not retried), and the same client works once it is up.
#[tokio::test]
async fn a_sidecar_that_is_down_fails_fast_until_it_is_up() {
    let dir = TempDir::new();
    let sock = dir.0.join("late.sock");
    let c = Client::builder().address(sock.to_str().unwrap()).timeout(Duration::from_secs(30)).without_shm().connect().await.unwrap();
    let t0 = Instant::now();
    let e = c.set("late", "v", SetOptions::default()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    // Generous for a loaded machine: it did not wait out its 30 s deadline in retries.
    assert!(t0.elapsed() < Duration::from_secs(10));
    let _s = Server::start_at(dir, sock, &[]);
    assert!(c.set("late", "v", SetOptions::default()).await.unwrap());
}

/// The client's default deadline running out is DeadlineExceeded and Unavailable: the
/// sidecar did not answer in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_deadline_is_also_unavailable() {
    let s = Server::start();
    let c = Client::builder().address(format!("unix://{}", s.sock.display())).without_shm().timeout(Duration::from_millis(200)).connect().await.unwrap();
    c.set("k", "v", SetOptions::default()).await.unwrap();
    s.signal("STOP");
    let e = c.get("k").await.unwrap_err();
    s.signal("CONT");
    assert_eq!(e.kind(), ErrorKind::DeadlineExceeded, "{e}");
    assert!(e.is(ErrorKind::Unavailable), "{e}");
}
