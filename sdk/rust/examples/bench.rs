//! The Rust row of `make bench`'s "SDK paths" section (bench/report/sdks.go): one hot
//! key read through shared memory, over gRPC, and with the `redis` crate over the
//! sidecar's socket (RESP). Configured by the environment: CACHEE_SOCKET, CACHEE_SHM,
//! BENCH_KEY, BENCH_N (calls per path), BENCH_TIME_LIMIT (seconds, for the whole run).
//! Prints one JSON object per path:
//! {"sdk":"rust","path":"shm","p50_ns":..,"p99_ns":..,"mean_ns":..,"n":..,"timing":"batch"}.
//!
//! Shared-memory reads take about as long as reading the clock, so they are timed in
//! batches of 100 calls ("batch": each sample is a batch's time over 100); the others
//! are timed call by call ("spaced").

use std::time::{Duration, Instant};

const BATCH: usize = 100;

fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"))
}

fn report(path: &str, mut ns: Vec<u64>, n: usize, timing: &str) {
    ns.sort_unstable();
    let q = |p: f64| ns[((ns.len() as f64 * p).ceil() as usize).clamp(1, ns.len()) - 1];
    let mean = ns.iter().sum::<u64>() / ns.len() as u64;
    println!(
        r#"{{"sdk":"rust","path":"{path}","p50_ns":{},"p99_ns":{},"mean_ns":{mean},"n":{n},"timing":"{timing}"}}"#,
        q(0.50),
        q(0.99)
    );
}

/// Times call one call at a time, n calls or until the deadline, after a tenth as many
/// untimed ones.
async fn spaced<F: std::future::Future<Output = usize>>(n: usize, deadline: Instant, mut call: impl FnMut() -> F) -> Vec<u64> {
    for _ in 0..n / 10 {
        call().await;
    }
    let mut ns = Vec::with_capacity(n);
    while ns.len() < n && Instant::now() < deadline {
        let t0 = Instant::now();
        std::hint::black_box(call().await);
        ns.push(t0.elapsed().as_nanos() as u64);
    }
    ns
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sock = env("CACHEE_SOCKET");
    let shm = env("CACHEE_SHM");
    let key = env("BENCH_KEY");
    let n: usize = env("BENCH_N").parse()?;
    let limit = Duration::from_secs_f64(env("BENCH_TIME_LIMIT").parse()?);
    let start = Instant::now();
    let per_path = limit / 4;

    let c = cachee::Client::builder().address(sock.as_str()).shm_dir(&shm).timeout(Duration::from_secs(30)).connect().await?;
    let g = cachee::Client::builder().address(sock.as_str()).without_shm().timeout(Duration::from_secs(30)).connect().await?;
    let want = g.get(&key).await?.ok_or("the hot key is missing")?.len();
    while c.shm_status().and_then(|s| s.generation).is_none() {
        if start.elapsed() > per_path {
            return Err(format!("the segment in {shm} was never confirmed: {:?}", c.shm_status()).into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Shared memory: Client::get_with, which copies the value to the stack and
    // allocates nothing.
    let shm_get = || async { c.get_with(&key, |v| v.len()).await.unwrap().expect("hit") };
    let hits0 = c.shm_status().unwrap().hits;
    for _ in 0..n / 10 {
        assert_eq!(shm_get().await, want);
    }
    let deadline = Instant::now() + per_path;
    let mut ns = Vec::with_capacity(n / BATCH);
    while ns.len() * BATCH < n && Instant::now() < deadline {
        let t0 = Instant::now();
        for _ in 0..BATCH {
            std::hint::black_box(shm_get().await);
        }
        ns.push(t0.elapsed().as_nanos() as u64 / BATCH as u64);
    }
    let calls = ns.len() * BATCH;
    let served = c.shm_status().unwrap().hits - hits0;
    if served < (calls + n / 10) as u64 {
        return Err(format!("{served} of {} reads came from shared memory", calls + n / 10).into());
    }
    report("shm", ns, calls, "batch");

    // gRPC on the Unix socket.
    let mut buf = Vec::with_capacity(want + 64);
    let deadline = Instant::now() + per_path;
    let mut ns = Vec::with_capacity(n);
    for _ in 0..n / 10 {
        g.get_into(&key, &mut buf).await?;
    }
    while ns.len() < n && Instant::now() < deadline {
        buf.clear();
        let t0 = Instant::now();
        let found = g.get_into(&key, &mut buf).await?;
        ns.push(t0.elapsed().as_nanos() as u64);
        assert!(found && buf.len() == want);
    }
    let calls = ns.len();
    report("grpc", ns, calls, "spaced");

    // The redis crate's GET on the same socket (cachee's RESP).
    let client = redis::Client::open(redis::ConnectionInfo {
        addr: redis::ConnectionAddr::Unix(sock.clone().into()),
        redis: redis::RedisConnectionInfo { protocol: redis::ProtocolVersion::RESP2, ..Default::default() },
    })?;
    let mut conn = client.get_connection()?;
    let mut get = || -> usize {
        let v: Vec<u8> = redis::cmd("GET").arg(&key).query(&mut conn).expect("GET");
        v.len()
    };
    let ns = spaced(n, Instant::now() + per_path, || std::future::ready(get())).await;
    let calls = ns.len();
    report("redis", ns, calls, "spaced");
    Ok(())
}
