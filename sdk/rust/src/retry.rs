//! Which failures are retried, and how long to wait: docs/sdk-contract.md sections 4
//! and 5, with the cases in sdk/testdata/contract/retry.json.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::Duration;

use cachee_proto::v1::ErrorReason;

use crate::error::Code;

/// The deadline of a call when the caller gives none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// The deadline of a prewarm when the caller gives none: the sidecar bounds the prewarm
/// itself by `--prewarm-timeout`, and the call must outlive it.
pub const DEFAULT_PREWARM_TIMEOUT: Duration = Duration::from_secs(60);

/// The calls of the API, by their proto names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    BatchGet,
    Set,
    BatchSet,
    Delete,
    Stats,
    Prewarm,
    RecordAccess,
}

impl Method {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Method::Get => "Get",
            Method::BatchGet => "BatchGet",
            Method::Set => "Set",
            Method::BatchSet => "BatchSet",
            Method::Delete => "Delete",
            Method::Stats => "Stats",
            Method::Prewarm => "Prewarm",
            Method::RecordAccess => "RecordAccess",
        }
    }
}

/// Whether a call of method (with a write condition on any item when conditional) that
/// failed with code and reason is sent again, given whether the sidecar is known to be
/// down (the last connection attempt failed and none has succeeded since).
pub(crate) fn should_retry(method: Method, conditional: bool, code: Code, reason: Option<&str>, known_down: bool) -> bool {
    use Method::*;
    if matches!(method, Prewarm | RecordAccess) {
        return false; // long and started by a person; or a sample of hits
    }
    let reason = reason.map(|r| ErrorReason::from_str_name(&format!("ERROR_REASON_{r}")));
    match (code, reason) {
        // Refused before it was applied: any call may go again.
        (Code::Unavailable, Some(Some(ErrorReason::Overloaded | ErrorReason::ShuttingDown))) => true,
        // A read gave up before answering.
        (Code::Aborted, Some(Some(ErrorReason::ReadContended))) => true,
        // The connection failed or broke: it may follow an applied write, so only calls
        // that leave the same state when repeated, and not while the sidecar is known down.
        (Code::Unavailable, None) => {
            !known_down
                && match method {
                    Get | BatchGet | Stats | Delete => true,
                    Set | BatchSet => !conditional,
                    Prewarm | RecordAccess => false,
                }
        }
        _ => false,
    }
}

/// How a failed call is tried again: attempts and a jittered exponential backoff.
/// Retries never outlast the call's deadline: when the next wait would end at or after
/// it, the last error is returned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 turns retries off.
    pub max_attempts: u32,
    /// The wait before the first retry (jittered uniformly over [d/2, d]).
    pub initial_backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
    /// How much each wait grows.
    pub multiplier: f64,
}

impl Default for RetryPolicy {
    /// 3 attempts; waits of 10 ms doubling to at most 200 ms.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(200),
            multiplier: 2.0,
        }
    }
}

impl RetryPolicy {
    /// The wait before retry n (n = 1, 2, ...): uniform in [d/2, d], d = min(initial ×
    /// multiplier^(n-1), max).
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let d = self.initial_backoff.as_secs_f64() * self.multiplier.powi(retry as i32 - 1);
        let d = d.min(self.max_backoff.as_secs_f64());
        // RandomState is randomly keyed, which is all the jitter needs.
        let r = RandomState::new().hash_one(retry) as f64 / u64::MAX as f64;
        Duration::from_secs_f64(d / 2.0 + r * d / 2.0)
    }
}
