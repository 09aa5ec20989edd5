//! Runs the real cachee binary for the tests: $CACHEE_BIN, or one built with go build.
#![allow(dead_code)] // each test crate uses a part of this

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

const START_TIMEOUT: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn binary() -> String {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(b) = std::env::var("CACHEE_BIN") {
            if !b.is_empty() {
                return b;
            }
        }
        let out = std::env::temp_dir().join(format!("cachee-rs-bin-{}", std::process::id())).join("cachee");
        let ok = Command::new("go")
            .args(["build", "-o"])
            .arg(&out)
            .arg("./cmd/cachee")
            .current_dir(repo())
            .status()
            .expect("go build");
        assert!(ok.success(), "go build failed");
        out.to_string_lossy().into_owned()
    })
    .clone()
}

/// A fresh short directory (socket paths are limited to 107 bytes), removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let d = PathBuf::from(format!("/tmp/cachee-rs-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One cachee process with free ports chosen by the kernel (--port=0), read back from
/// its "serving" log line, and a private segment directory. Killed on drop.
pub struct Server {
    pub sock: PathBuf,
    pub shm: PathBuf,
    pub tcp: String,
    pub resp: bool,
    /// Flags the process was started with, after the socket, shm and port flags.
    pub args: Vec<String>,
    child: Child,
    _dir: TempDir,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts with extra flags.
    pub fn start_with(args: &[&str]) -> Server {
        let dir = TempDir::new();
        let sock = dir.0.join("c.sock");
        Server::start_at(dir, sock, args)
    }

    /// Starts on `sock`; `dir` is removed when the server is dropped.
    pub fn start_at(dir: TempDir, sock: PathBuf, args: &[&str]) -> Server {
        let shm = dir.0.join("shm");
        std::fs::create_dir_all(&shm).unwrap();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let (child, tcp, resp) = spawn(&sock, &shm, &args);
        Server { sock, shm, tcp, resp, args, child, _dir: dir }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends a signal (SIGKILL, SIGSTOP, SIGCONT) to the process.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill").arg(format!("-{sig}")).arg(self.pid().to_string()).status().unwrap();
        assert!(ok.success(), "kill -{sig}");
    }

    /// SIGKILL, and wait for the process to go.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same socket and segment directory, with args
    /// (which it keeps for later restarts).
    pub fn restart(&mut self) {
        self.kill();
        let (child, tcp, resp) = spawn(&self.sock, &self.shm, &self.args);
        self.child = child;
        self.tcp = tcp;
        self.resp = resp;
    }
}

fn spawn(sock: &Path, shm: &Path, args: &[String]) -> (Child, String, bool) {
    let mut cmd = Command::new(binary());
    cmd.arg(format!("--socket={}", sock.display()))
        .arg(format!("--shm={}", shm.display()))
        .args(["--port=0", "--http-port=0", "--metrics-port=0", "--max-memory=8mb", "--log-format=json"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped()); // where cachee logs
    for (k, _) in std::env::vars() {
        if k.starts_with("CACHE_") || k.starts_with("CACHEE_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd.spawn().expect("start cachee");
    let out = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.contains(r#""msg":"serving""#) {
                let _ = tx.send(line);
            }
        }
    });
    let line = match rx.recv_timeout(START_TIMEOUT) {
        Ok(l) => l,
        Err(_) => {
            let _ = child.kill();
            panic!("cachee did not start");
        }
    };
    let port = field(&line, "addr").rsplit(':').next().unwrap().to_string();
    let resp = line.contains(r#""resp":true"#);
    (child, format!("127.0.0.1:{port}"), resp)
}

/// The string value of `key` in a flat JSON log line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let start = line.find(&format!(r#""{key}":""#)).expect(key) + key.len() + 4;
    let end = start + line[start..].find('"').unwrap();
    &line[start..end]
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-CONT").arg(self.pid().to_string()).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls cond until it holds; panics naming what after a generous bound (a failure
/// bound, not a timing assertion).
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    // Long: the machine these run on may be shared and heavily loaded.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
