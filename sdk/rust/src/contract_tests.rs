//! The SDK contract's machine-readable cases (sdk/testdata/contract, docs/sdk-contract.md):
//! every one of them, against this crate's rules.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::address::{resolve_token, Address};
use crate::error::{Code, Error, ErrorKind};
use crate::retry::{should_retry, Method, RetryPolicy, DEFAULT_PREWARM_TIMEOUT, DEFAULT_TIMEOUT};

fn load(name: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/contract").join(name);
    serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

fn env_of(c: &Value) -> impl Fn(&str) -> Option<String> {
    let env: HashMap<String, String> =
        c["env"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect();
    move |k: &str| env.get(k).cloned()
}

fn code(name: &str) -> Code {
    let all = [
        Code::Ok,
        Code::Cancelled,
        Code::Unknown,
        Code::InvalidArgument,
        Code::DeadlineExceeded,
        Code::NotFound,
        Code::AlreadyExists,
        Code::PermissionDenied,
        Code::ResourceExhausted,
        Code::FailedPrecondition,
        Code::Aborted,
        Code::OutOfRange,
        Code::Unimplemented,
        Code::Internal,
        Code::Unavailable,
        Code::DataLoss,
        Code::Unauthenticated,
    ];
    *all.iter().find(|c| c.name() == name).unwrap_or_else(|| panic!("unknown code {name}"))
}

fn kind(name: &str) -> ErrorKind {
    use ErrorKind::*;
    let all = [
        InvalidArgument,
        KeyEmpty,
        KeyTooLarge,
        ValueTooLarge,
        InvalidTtl,
        BatchTooLarge,
        MessageTooLarge,
        ResponseTooLarge,
        OutOfMemory,
        Unavailable,
        Overloaded,
        L2Unavailable,
        Unauthenticated,
        Contended,
        Corrupt,
        WrongType,
        PrewarmNotConfigured,
        PrewarmRunning,
        PrewarmSourceUnavailable,
        DeadlineExceeded,
        Canceled,
        Closed,
        Internal,
    ];
    *all.iter().find(|k| k.name() == name).unwrap_or_else(|| panic!("unknown class {name}"))
}

#[test]
fn address_cases() {
    let a = load("address.json");
    assert_eq!(a["segment_file"], cachee_shm::layout::SEGMENT_FILE);
    for c in a["target_cases"].as_array().unwrap() {
        let got = Address::resolve(c["explicit"].as_str(), env_of(c)).map(|a| a.to_string());
        assert_eq!(got.as_deref(), c["target"].as_str(), "{}", c["name"]);
    }
    for c in a["shm_cases"].as_array().unwrap() {
        let vars = env_of(c);
        let explicit = c["explicit"].as_str().map(PathBuf::from);
        let got = cachee_shm::resolve_dir_from(explicit.as_deref(), |k| vars(k).map(Into::into));
        assert_eq!(got.as_deref().map(|p| p.to_str().unwrap()), c["shm_dir"].as_str(), "{}", c["name"]);
    }
    for c in a["token_cases"].as_array().unwrap() {
        let got = resolve_token(c["explicit"].as_str(), env_of(c)).map(|t| format!("Bearer {t}"));
        assert_eq!(got.as_deref(), c["metadata"].as_str(), "{}", c["name"]);
    }
}

#[test]
fn retry_defaults() {
    let d = &load("retry.json")["defaults"];
    let ms = |k: &str| Duration::from_millis(d[k].as_u64().unwrap());
    assert_eq!(DEFAULT_TIMEOUT, ms("timeout_ms"));
    assert_eq!(DEFAULT_PREWARM_TIMEOUT, ms("prewarm_timeout_ms"));
    let p = RetryPolicy::default();
    assert_eq!(p.max_attempts as u64, d["max_attempts"].as_u64().unwrap());
    assert_eq!(p.initial_backoff, ms("backoff_initial_ms"));
    assert_eq!(p.max_backoff, ms("backoff_max_ms"));
    assert_eq!(p.multiplier, d["backoff_multiplier"].as_f64().unwrap());
    assert_eq!(d["backoff_jitter"], "uniform in [d/2, d]");
    for n in 1..=8u32 {
        let full = (p.initial_backoff.as_secs_f64() * p.multiplier.powi(n as i32 - 1)).min(p.max_backoff.as_secs_f64());
        for _ in 0..50 {
            let w = p.backoff(n).as_secs_f64();
            assert!(w >= full / 2.0 - 1e-9 && w <= full + 1e-9, "retry {n}: {w} outside [{}, {full}]", full / 2.0);
        }
    }
}

#[test]
fn retry_cases() {
    let r = load("retry.json");
    let method = |m: &str| match m {
        "Get" => Method::Get,
        "BatchGet" => Method::BatchGet,
        "Set" => Method::Set,
        "BatchSet" => Method::BatchSet,
        "Delete" => Method::Delete,
        "Stats" => Method::Stats,
        "Prewarm" => Method::Prewarm,
        "RecordAccess" => Method::RecordAccess,
        other => panic!("unknown method {other}"),
    };
    let cases = r["cases"].as_array().unwrap();
    assert!(cases.len() > 100);
    let mut wrong = Vec::new();
    for c in cases {
        let got = should_retry(
            method(c["method"].as_str().unwrap()),
            c["conditional"].as_bool().unwrap(),
            code(c["code"].as_str().unwrap()),
            c["reason"].as_str(),
            c["known_down"].as_bool().unwrap(),
        );
        if got != c["retry"].as_bool().unwrap() {
            wrong.push(c.to_string());
        }
    }
    assert!(wrong.is_empty(), "{} of {} retry cases differ:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
}

#[test]
fn error_cases() {
    let e = load("errors.json");
    let classes: Vec<&str> = e["classes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    for c in &classes {
        kind(c); // every class of the contract exists here
    }
    for c in e["cases"].as_array().unwrap() {
        let k = ErrorKind::classify(code(c["code"].as_str().unwrap()), c["reason"].as_str());
        assert_eq!(k.name(), c["class"].as_str().unwrap(), "{c}");
        let also: Vec<ErrorKind> = c["also"].as_array().unwrap().iter().map(|a| kind(a.as_str().unwrap())).collect();
        assert_eq!(k.broader().into_iter().collect::<Vec<_>>(), also, "{c}");
    }
    for c in e["client_cases"].as_array().unwrap() {
        let err = match c["situation"].as_str().unwrap() {
            "a call on a closed client" => Error::closed(),
            "the SDK's default deadline ran out (the caller gave none)" => Error::deadline(true),
            "the caller's own deadline ran out" => Error::deadline(false),
            other => panic!("unknown situation {other}"),
        };
        assert_eq!(err.kind().name(), c["class"].as_str().unwrap(), "{c}");
        let also: Vec<&str> = c["also"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
        for a in &also {
            assert!(err.is(kind(a)), "{c}: not also {a}");
        }
        for other in &classes {
            if *other != c["class"] && !also.contains(other) {
                assert!(!err.is(kind(other)), "{c}: also {other}");
            }
        }
    }
}
