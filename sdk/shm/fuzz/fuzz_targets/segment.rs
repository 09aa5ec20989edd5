//! Arbitrary segment bytes: Segment::open and lookups never fault and never read
//! outside the mapping (every load is bounds-checked, and the fuzz build's debug
//! assertions turn an out-of-bounds load into a crash).
//!
//! The input is either a whole segment (first byte 0: the rest, padded with zeros to
//! the smallest segment), or patches to the conformance fixture `data` (a valid segment
//! with entries of every shape), so that the fuzzer starts past the header checks:
//! (u32 little-endian offset, u8 length, bytes) repeated. Every segment is looked up
//! with the fixture's keys and with keys taken from the input.
#![no_main]

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use cachee_shm::{layout, Segment};
use libfuzzer_sys::fuzz_target;

fn template() -> &'static [u8] {
    static T: OnceLock<Vec<u8>> = OnceLock::new();
    T.get_or_init(|| {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/segments/data/cachee.seg");
        std::fs::read(p).expect("the data fixture")
    })
}

fn scratch() -> &'static PathBuf {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" };
        let d = PathBuf::from(format!("{base}/cachee-shm-fuzz"));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

const KEYS: &[&[u8]] =
    &[b"user:42", b"empty", b"bytes", b"max-value", b"replaced", b"near", b"far", b"typed-1", b"A", b"Ba", b"absent"];

fuzz_target!(|data: &[u8]| {
    let mut seg: Vec<u8>;
    let mut keys: Vec<&[u8]> = KEYS.to_vec();
    if data.first() == Some(&0) {
        seg = data[1..].to_vec();
        if seg.len() < layout::MIN_SIZE as usize {
            seg.resize(layout::MIN_SIZE as usize, 0);
        }
        seg.truncate(layout::MIN_SIZE as usize * 2);
        let n = seg.len() / 4096 * 4096;
        seg.truncate(n);
    } else {
        seg = template().to_vec();
        let mut rest = data;
        while rest.len() >= 5 {
            let off = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize % seg.len();
            let n = rest[4] as usize;
            rest = &rest[5..];
            let n = n.min(rest.len()).min(seg.len() - off);
            seg[off..off + n].copy_from_slice(&rest[..n]);
            if n > 0 && n <= 64 {
                keys.push(&rest[..n]);
            }
            rest = &rest[n..];
        }
    }
    let path = scratch().join("cachee.seg");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(&seg).unwrap();
    drop(f);
    let opened = Segment::open(scratch());
    // The mapping outlives the name: leave nothing behind.
    let _ = std::fs::remove_file(&path);
    let Ok(s) = opened else { return };
    let mut out = Vec::new();
    let mut small = [0u8; 16];
    for k in keys {
        out.clear();
        let _ = s.get_into_at(k, &mut out, || 1_767_225_600_500);
        let _ = s.get_to_slice(k, &mut small);
        let _ = s.get_with(k, |v| v.len());
    }
});
