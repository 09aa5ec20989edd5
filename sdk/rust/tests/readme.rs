//! The README's example is examples/readme.rs; this checks that the two agree and runs
//! the example binary (built by `cargo test`) against a real cachee.
mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn readme_example_prints_the_value() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let example = std::fs::read_to_string(dir.join("examples/readme.rs")).unwrap();
    assert!(
        readme.contains(&format!("## Example\n\n```rust,no_run\n{example}```")),
        "README's example differs from examples/readme.rs"
    );
    // target/debug/deps/<this test> -> target/debug/examples/readme
    let bin = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("examples/readme");
    let s = common::Server::start();
    let out = Command::new(bin)
        .env_remove("CACHE_HOST")
        .env_remove("CACHE_PORT")
        .env("CACHEE_SOCKET", &s.sock)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "{\"name\":\"Ada\"}\n");
}
