//! Shared-memory reads against a real cachee: hits equal gRPC results, and a read loop
//! survives the sidecar being killed, restarted and stopped.
mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cachee::{Client, ErrorKind, SetOptions};
use common::{eventually, Server};

async fn shm_client(s: &Server) -> Client {
    Client::builder()
        .address(format!("unix://{}", s.sock.display()))
        .shm_dir(&s.shm)
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .unwrap()
}

async fn grpc_client(s: &Server) -> Client {
    Client::builder().address(format!("unix://{}", s.sock.display())).without_shm().connect().await.unwrap()
}

fn generation(c: &Client) -> Option<u64> {
    c.shm_status().and_then(|s| s.generation)
}

#[tokio::test]
async fn shm_hits_equal_grpc_results() {
    let s = Server::start();
    let c = shm_client(&s).await;
    let g = grpc_client(&s).await;
    let want = g.stats().await.unwrap().generation;
    eventually("the segment to be confirmed", || generation(&c) == Some(want)).await;

    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("rs:shm:empty".into(), vec![]),
        ("rs:shm:100".into(), (0..100u8).collect()),
        ("rs:shm:every-byte".into(), (0..=255u8).collect()),
        ("rs:shm:big".into(), (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect()),
    ];
    for n in 1..40 {
        cases.push((format!("rs:shm:{n}"), (0..n * 3).map(|i| i as u8 ^ 0x5a).collect()));
    }
    for (k, v) in &cases {
        assert!(c.set(k, v, SetOptions::default()).await.unwrap());
    }
    let before = c.shm_status().unwrap().hits;
    let mut buf = Vec::new();
    for (k, v) in &cases {
        let via_grpc = g.get(k).await.unwrap();
        assert_eq!(via_grpc.as_ref(), Some(v), "{k} over gRPC");
        assert_eq!(c.get(k).await.unwrap().as_ref(), Some(v), "{k} through shared memory");
        assert_eq!(c.get_with(k, |x| x.to_vec()).await.unwrap().as_ref(), Some(v), "{k} get_with");
        buf.clear();
        assert!(c.get_into(k, &mut buf).await.unwrap());
        assert_eq!(&buf, v, "{k} get_into");
    }
    let hits = c.shm_status().unwrap().hits - before;
    assert_eq!(hits, 3 * cases.len() as u64, "every get was a shared-memory hit");
    // Misses go over gRPC, and agree.
    assert_eq!(c.get("rs:shm:absent").await.unwrap(), None);
    assert_eq!(g.get("rs:shm:absent").await.unwrap(), None);
    // An expired key is a miss in both.
    c.set("rs:shm:ttl", "v", SetOptions::default().ttl(Duration::from_millis(30))).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.get("rs:shm:ttl").await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "the key never expired");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(g.get("rs:shm:ttl").await.unwrap(), None);
    // The hits reach the sidecar's statistics through RecordAccess.
    let base = g.stats().await.unwrap().hits;
    for _ in 0..1000 {
        c.get("rs:shm:100").await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while g.stats().await.unwrap().hits < base + 1000 {
        assert!(Instant::now() < deadline, "shared-memory hits never reached the sidecar's stats");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A value that names its key and version and ends with a checksum of everything
/// before it, with a filler whose length varies with the version, so that a torn read
/// (half of one version, half of another, or another key's bytes) cannot pass check.
fn self_checking(key: &str, version: u64) -> Vec<u8> {
    let mut v = format!("{key}|{version}|").into_bytes();
    for i in 0..(version % 97 + 20) {
        v.push(b'a' + ((version + i) % 26) as u8);
    }
    let sum = fnv(&v);
    v.extend_from_slice(format!("|{sum:016x}").as_bytes());
    v
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf29ce484222325u64, |h, &x| (h ^ x as u64).wrapping_mul(0x100000001b3))
}

fn check_value(key: &str, v: &[u8]) -> Result<(), String> {
    let s = std::str::from_utf8(v).map_err(|_| format!("{key}: not UTF-8: {v:?}"))?;
    let mut parts = s.splitn(3, '|');
    let (k, ver) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if k != key {
        return Err(format!("{key}: value of key {k:?}"));
    }
    let ver: u64 = ver.parse().map_err(|_| format!("{key}: malformed {s:?}"))?;
    if v != self_checking(key, ver).as_slice() {
        return Err(format!("{key}: torn or wrong value {s:?}"));
    }
    Ok(())
}

/// Readers and a writer over keys, until stopped; every value read is checked, and
/// every error other than the ones a dead or stalled sidecar gives is recorded.
struct ReadLoop {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    found: Arc<AtomicU64>,
    unavailable: Arc<AtomicU64>,
    bad: Arc<Mutex<Vec<String>>>,
}

impl ReadLoop {
    fn start(c: &Client, keys: &[String]) -> ReadLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let found = Arc::new(AtomicU64::new(0));
        let unavailable = Arc::new(AtomicU64::new(0));
        let bad = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for r in 0..3u64 {
            let (c, keys, stop, found, unavailable, bad) =
                (c.clone(), keys.to_vec(), stop.clone(), found.clone(), unavailable.clone(), bad.clone());
            tasks.push(tokio::spawn(async move {
                let mut buf = Vec::with_capacity(256);
                let mut i = r * 7919;
                while !stop.load(Ordering::Relaxed) {
                    i = i.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let k = &keys[(i >> 33) as usize % keys.len()];
                    buf.clear();
                    match c.get_into(k, &mut buf).await {
                        Ok(true) => {
                            found.fetch_add(1, Ordering::Relaxed);
                            if let Err(e) = check_value(k, &buf) {
                                bad.lock().unwrap().push(e);
                            }
                        }
                        Ok(false) => {}
                        Err(e) if matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::DeadlineExceeded) => {
                            unavailable.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                        Err(e) => bad.lock().unwrap().push(format!("{k}: {e}")),
                    }
                    tokio::task::yield_now().await;
                }
            }));
        }
        let (c, keys, stop2, bad2) = (c.clone(), keys.to_vec(), stop.clone(), bad.clone());
        tasks.push(tokio::spawn(async move {
            let mut ver = 1u64;
            while !stop2.load(Ordering::Relaxed) {
                let k = &keys[(ver.wrapping_mul(2654435761) >> 7) as usize % keys.len()];
                match c.set(k, self_checking(k, ver), SetOptions::default()).await {
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::DeadlineExceeded) => {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err(e) => bad2.lock().unwrap().push(format!("set {k}: {e}")),
                }
                ver += 1;
            }
        }));
        ReadLoop { stop, tasks, found, unavailable, bad }
    }

    async fn end(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.expect("a read loop task panicked");
        }
        let bad = self.bad.lock().unwrap().clone();
        bad
    }
}

async fn killed_mid_read(restart_args: &[&str]) {
    let mut s = Server::start();
    let c = Client::builder()
        .address(format!("unix://{}", s.sock.display()))
        .shm_dir(&s.shm)
        .timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap();
    let g = grpc_client(&s).await;
    let gen0 = g.stats().await.unwrap().generation;
    eventually("the segment to be confirmed", || generation(&c) == Some(gen0)).await;
    let keys: Vec<String> = (0..200).map(|i| format!("restart:{i}")).collect();
    for k in &keys {
        c.set(k, self_checking(k, 0), SetOptions::default()).await.unwrap();
    }
    let l = ReadLoop::start(&c, &keys);
    let hits = |c: &Client| c.shm_status().unwrap().hits;
    eventually("shm hits before the kill", || hits(&c) > 5000).await;

    let drops = c.shm_status().unwrap().drops;
    let killed = Instant::now();
    s.kill();
    eventually("the client to drop the dead sidecar's segment", || {
        let st = c.shm_status().unwrap();
        st.generation.is_none() && st.drops > drops
    })
    .await;
    // Logged, not asserted: how long the dead sidecar's segment was still read (the
    // check interval, 20 ms, plus scheduling).
    eprintln!("segment dropped {:?} after SIGKILL", killed.elapsed());
    let unavailable = l.unavailable.clone();
    eventually("reads failing with Unavailable", || unavailable.load(Ordering::Relaxed) > 0).await;

    s.args.extend(restart_args.iter().map(|a| a.to_string()));
    s.restart();
    let maps = c.shm_status().unwrap().maps;
    eventually("the client to read the new segment", || {
        let st = c.shm_status().unwrap();
        st.generation.is_some() && st.maps > maps
    })
    .await;
    let after = hits(&c);
    eventually("shm hits after the restart", || hits(&c) > after + 5000).await;
    let found = l.found.load(Ordering::Relaxed);
    let bad = l.end().await;
    assert!(bad.is_empty(), "{} bad reads, first: {:?}", bad.len(), &bad[..bad.len().min(5)]);
    assert!(found > 10_000, "{found} values read");

    let g = grpc_client(&s).await;
    let gen1 = g.stats().await.unwrap().generation;
    assert_ne!(gen0, gen1, "the restarted sidecar kept the generation");
    assert_eq!(generation(&c), Some(gen1));
    // Every key reads the same through the new segment and over gRPC.
    for k in &keys {
        let a = c.get(k).await.unwrap();
        let b = g.get(k).await.unwrap();
        assert_eq!(a, b, "{k}");
        if let Some(v) = a {
            check_value(k, &v).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sidecar_killed_mid_read_warm_restart() {
    // Same file: the new writer recovers it and gives it a new generation.
    killed_mid_read(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sidecar_killed_mid_read_new_file() {
    // Another size: the new writer retires the old file and renames a new one over it.
    killed_mid_read(&["--max-memory=16mb"]).await;
}

/// SIGSTOP stops the sidecar's clock: the client stops reading its segment within the
/// staleness bound, gets that need the sidecar fail after the client's timeout instead
/// of hanging, and after SIGCONT the client maps the segment again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sidecar_stalled() {
    let s = Server::start();
    let c = Client::builder()
        .address(format!("unix://{}", s.sock.display()))
        .shm_dir(&s.shm)
        .shm_staleness(Duration::from_millis(10), Duration::from_millis(100))
        .timeout(Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    let g = grpc_client(&s).await;
    let gen = g.stats().await.unwrap().generation;
    eventually("the segment to be confirmed", || generation(&c) == Some(gen)).await;
    c.set("k", "v", SetOptions::default()).await.unwrap();
    // A read loop of self-checking values runs across the stall.
    let keys: Vec<String> = (0..50).map(|i| format!("stall:{i}")).collect();
    for k in &keys {
        c.set(k, self_checking(k, 0), SetOptions::default()).await.unwrap();
    }
    let l = ReadLoop::start(&c, &keys);
    s.signal("STOP");
    eventually("the client to stop reading a stalled sidecar's segment", || generation(&c).is_none()).await;
    let e = c.get("k").await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::DeadlineExceeded | ErrorKind::Unavailable), "get from a stalled sidecar: {e}");
    let maps = c.shm_status().unwrap().maps;
    s.signal("CONT");
    eventually("the client to read shared memory again", || {
        let st = c.shm_status().unwrap();
        st.generation == Some(gen) && st.maps > maps
    })
    .await;
    assert_eq!(c.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    let bad = l.end().await;
    assert!(bad.is_empty(), "{} bad reads, first: {:?}", bad.len(), &bad[..bad.len().min(5)]);
}
