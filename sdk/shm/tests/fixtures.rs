//! Every case of the segment conformance fixtures (sdk/testdata/segments, written by the
//! Go writer's generator), and the layout constants against the writer's.

use std::collections::HashMap;
use std::path::PathBuf;

use cachee_shm::{layout, Fallback, OpenError, Segment};
use serde::Deserialize;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/segments")
}

#[derive(Deserialize)]
struct Bytes {
    hex: String,
    #[serde(default)]
    len: usize,
}

impl Bytes {
    fn decode(&self) -> Vec<u8> {
        let p: Vec<u8> =
            (0..self.hex.len()).step_by(2).map(|i| u8::from_str_radix(&self.hex[i..i + 2], 16).expect("hex")).collect();
        if self.len == 0 {
            return p;
        }
        p.iter().copied().cycle().take(self.len).collect()
    }
}

#[derive(Deserialize)]
struct Case {
    name: String,
    why: String,
    segment: String,
    key: Bytes,
    now_ms: i64,
    expect: String,
    value: Option<Bytes>,
    r#ref: Option<String>,
}

#[derive(Deserialize)]
struct SegmentInfo {
    name: String,
    generation: String,
    clock_ms: i64,
}

#[derive(Deserialize)]
struct File {
    segments: Vec<SegmentInfo>,
    cases: Vec<Case>,
}

fn load() -> File {
    let b = std::fs::read(fixtures().join("cases.json")).expect("cases.json");
    serde_json::from_slice(&b).expect("cases.json parses")
}

fn hex64(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex u64")
}

/// The result of one case, named as the fixtures name it, with the value and ref on a hit.
fn run(seg: &Result<Segment, OpenError>, c: &Case, via: Via) -> (String, Vec<u8>, u64) {
    let seg = match seg {
        Ok(s) => s,
        Err(OpenError::Format(_)) => return ("format".into(), vec![], 0),
        Err(OpenError::Stale(_)) => return ("stale".into(), vec![], 0),
        Err(OpenError::Io(e)) => panic!("{}: {e}", c.name),
    };
    let key = c.key.decode();
    let now = || c.now_ms;
    let res = match via {
        Via::Vec => {
            let mut out = b"prefix".to_vec();
            seg.get_into_at(&key, &mut out, now).map(|r| {
                assert_eq!(&out[..6], b"prefix", "{}: get_into keeps what out held", c.name);
                (out[6..].to_vec(), r)
            })
        }
        Via::Closure => seg.get_with_at(&key, now, |v| v.to_vec()),
    };
    match res {
        Ok((v, r)) => ("hit".into(), v, r),
        Err(f @ (Fallback::NoSegment | Fallback::BufferTooSmall(_))) => panic!("{}: unexpected {f:?}", c.name),
        Err(f) => (f.name().into(), vec![], 0),
    }
}

#[derive(Clone, Copy, Debug)]
enum Via {
    Vec,
    Closure,
}

#[test]
fn every_fixture_case() {
    let f = load();
    assert!(f.cases.len() > 50, "{} cases", f.cases.len());
    let mut segs: HashMap<String, Result<Segment, OpenError>> = HashMap::new();
    let mut failures = Vec::new();
    for c in &f.cases {
        let seg = segs.entry(c.segment.clone()).or_insert_with(|| Segment::open(&fixtures().join(&c.segment)));
        for via in [Via::Vec, Via::Closure] {
            let (got, value, r) = run(seg, c, via);
            if got != c.expect {
                failures.push(format!("{} ({via:?}): got {got}, want {} ({})", c.name, c.expect, c.why));
                continue;
            }
            if got == "hit" {
                let want = c.value.as_ref().expect("a hit has a value").decode();
                if value != want {
                    failures.push(format!(
                        "{} ({via:?}): value of {} bytes differs from {}",
                        c.name,
                        value.len(),
                        want.len()
                    ));
                }
                let want_ref = hex64(c.r#ref.as_deref().expect("a hit has a ref"));
                if r != want_ref {
                    failures.push(format!("{} ({via:?}): ref {r:#018x}, want {want_ref:#018x}", c.name));
                }
            }
        }
    }
    // The header fields every segment that opens reports.
    for s in &f.segments {
        if let Some(Ok(seg)) = segs.get(&s.name) {
            assert_eq!(seg.generation(), hex64(&s.generation), "{}", s.name);
            assert_eq!(seg.clock_ms(), s.clock_ms, "{}", s.name);
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), f.cases.len(), failures.join("\n"));
}

#[test]
fn buffer_too_small_gives_the_length() {
    let seg = Segment::open(&fixtures().join("data")).unwrap();
    let mut small = [0u8; 3];
    assert_eq!(seg.get_to_slice(b"user:42", &mut small), Err(Fallback::BufferTooSmall(5)));
    let mut buf = [0u8; 5];
    let (n, _) = seg.get_to_slice(b"user:42", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello");
}

#[test]
fn layout_matches_the_writer() {
    let b = std::fs::read(fixtures().join("layout.json")).unwrap();
    let l: serde_json::Value = serde_json::from_slice(&b).unwrap();
    let n = |k: &str| l[k].as_u64().unwrap_or_else(|| panic!("layout.json: {k}"));
    assert_eq!(hex64(l["magic"].as_str().unwrap()), layout::MAGIC);
    assert_eq!(n("version"), layout::VERSION as u64);
    assert_eq!(n("header_size"), layout::HEADER_SIZE);
    assert_eq!(n("unit"), layout::UNIT);
    assert_eq!(n("min_size"), layout::MIN_SIZE);
    assert_eq!(n("max_size"), layout::MAX_SIZE);
    assert_eq!(n("page_multiple"), layout::PAGE_MULTIPLE);
    assert_eq!(l["segment_file"], layout::SEGMENT_FILE);
    assert_eq!(n("bucket_bytes"), layout::BUCKET_BYTES);
    assert_eq!(n("slots_per_bucket"), layout::SLOTS_PER_BUCKET);
    assert_eq!(n("probe_window"), layout::PROBE_WINDOW);
    assert_eq!(n("ctrl_seq_one"), layout::CTRL_SEQ_ONE);
    assert_eq!(n("ctrl_ovf_mask"), layout::CTRL_OVF_MASK);
    assert_eq!(n("entry_header"), layout::ENTRY_HEADER);
    assert_eq!(n("min_block"), layout::MIN_BLOCK);
    assert_eq!(n("max_key_limit"), layout::MAX_KEY_LIMIT);
    assert_eq!(n("max_read_retries"), layout::MAX_READ_RETRIES as u64);
    assert_eq!(n("near_ms"), layout::NEAR_MS as u64);
    assert_eq!(n("max_lag_ms"), layout::MAX_LAG_MS as u64);
    let h = &l["header"];
    for (k, v) in [
        ("magic", layout::H_MAGIC),
        ("version", layout::H_VERSION),
        ("header_size", layout::H_HEADER_SIZE),
        ("segment_size", layout::H_SEGMENT_SIZE),
        ("generation", layout::H_GENERATION),
        ("hash_seed", layout::H_SEED),
        ("created", layout::H_CREATED),
        ("writer_pid", layout::H_WRITER_PID),
        ("buckets_log2", layout::H_BUCKETS_LOG2),
        ("dir_offset", layout::H_DIR_OFFSET),
        ("dir_max_depth", layout::H_DIR_MAX_DEPTH),
        ("max_key", layout::H_MAX_KEY),
        ("arena_offset", layout::H_ARENA_OFFSET),
        ("arena_size", layout::H_ARENA_SIZE),
        ("max_value", layout::H_MAX_VALUE),
        ("clock", layout::H_CLOCK),
        ("index_version", layout::H_INDEX_VERSION),
        ("global_depth", layout::H_GLOBAL_DEPTH),
        ("state", layout::H_STATE),
    ] {
        assert_eq!(h[k].as_u64(), Some(v), "header.{k}");
    }
    assert_eq!(h.as_object().unwrap().len(), 19, "a header field this reader does not know");
    let st = &l["states"];
    for (k, v) in [
        ("init", layout::STATE_INIT),
        ("active", layout::STATE_ACTIVE),
        ("closed", layout::STATE_CLOSED),
        ("retired", layout::STATE_RETIRED),
    ] {
        assert_eq!(st[k].as_u64(), Some(v as u64), "states.{k}");
    }
    let w0 = &l["w0"];
    for (k, v) in [
        ("size_mask", layout::W0_SIZE_MASK),
        ("klen_shift", layout::W0_KLEN_SHIFT as u64),
        ("klen_mask", layout::W0_KLEN_MASK),
        ("pad_shift", layout::W0_PAD_SHIFT as u64),
        ("pad_mask", layout::W0_PAD_MASK),
        ("free_bit", layout::W0_FREE_BIT as u64),
        ("kind_shift", layout::W0_KIND_SHIFT as u64),
        ("kind_mask", layout::W0_KIND_MASK),
        ("value_type_shift", layout::W0_VALUE_TYPE_SHIFT as u64),
    ] {
        assert_eq!(w0[k].as_u64(), Some(v), "w0.{k}");
    }
    let kinds = &l["kinds"];
    for (k, v) in [
        ("entry", layout::KIND_ENTRY),
        ("table", layout::KIND_TABLE),
        ("sketch", layout::KIND_SKETCH),
        ("sentinel", layout::KIND_SENTINEL),
    ] {
        assert_eq!(kinds[k].as_u64(), Some(v), "kinds.{k}");
    }
    assert_eq!(hex64(l["w1_expiry"].as_str().unwrap()), layout::W1_EXPIRY_MASK);
    let geos = l["geometry"].as_array().unwrap();
    assert!(geos.len() >= 5);
    for g in geos {
        let size = g["size"].as_u64().unwrap();
        let want = (
            g["buckets_log2"].as_u64().unwrap() as u32,
            g["dir_max_depth"].as_u64().unwrap() as u32,
            g["dir_offset"].as_u64().unwrap(),
            g["arena_offset"].as_u64().unwrap(),
        );
        assert_eq!(layout::geometry(size), want, "geometry({size})");
    }
}

#[test]
fn hash_vectors() {
    // docs/segment-format.md, "Key hash".
    use xxhash_rust::xxh3::xxh3_64_with_seed;
    assert_eq!(xxh3_64_with_seed(b"user:42", 42), 0x1d4738214b98f74f);
    assert_eq!(xxh3_64_with_seed(b"", 0), 0x2d06800538d394c2);
    assert_eq!(xxh3_64_with_seed(&[b'x'; 300], 0x9e3779b97f4a7c15), 0xd7aa4e081cbf1f58);
}
