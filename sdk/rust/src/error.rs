use std::collections::HashMap;
use std::fmt;

use tonic::Code;
use tonic_types::StatusExt;

/// The domain of every `google.rpc.ErrorInfo` that cachee attaches.
pub const ERROR_DOMAIN: &str = "cachee";

/// What kind of failure an [`Error`] is, from its gRPC status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A request field is invalid: empty or oversized key or value, bad TTL, too big a batch.
    InvalidArgument,
    /// The cache is full under `--eviction=noeviction`, or a message is over the size limit.
    ResourceExhausted,
    /// The server cannot be reached or is shutting down; retried with backoff.
    Unavailable,
    /// The server is not set up for the call, e.g. prewarm without a prewarm source.
    FailedPrecondition,
    /// The call raced another (a running prewarm, a contended read); try again.
    Aborted,
    /// The call's deadline passed.
    DeadlineExceeded,
    /// The call was cancelled.
    Cancelled,
    /// The shared-memory segment contradicts its format.
    DataLoss,
    /// An address that cannot be dialled, found before any call.
    InvalidAddress,
    /// Anything else the server or the transport reported.
    Internal,
}

/// A failed call: its [`ErrorKind`], gRPC [`Code`], the server's ErrorInfo reason
/// (`"VALUE_TOO_LARGE"`; docs/grpc.md lists them), absent when the error came from gRPC
/// itself, and the ErrorInfo metadata (`field`, `size`, `limit`).
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    code: Code,
    message: String,
    reason: Option<String>,
    metadata: HashMap<String, String>,
}

impl Error {
    pub(crate) fn new(code: Code, message: impl Into<String>) -> Self {
        Error { kind: kind_of(code), code, message: message.into(), reason: None, metadata: HashMap::new() }
    }

    pub(crate) fn invalid_address(message: impl Into<String>) -> Self {
        Error { kind: ErrorKind::InvalidAddress, ..Error::new(Code::InvalidArgument, message) }
    }

    pub(crate) fn from_status(status: &tonic::Status) -> Self {
        // A connection that broke mid-call reaches tonic as UNKNOWN with the transport
        // error as its source: the sidecar went away, which is UNAVAILABLE.
        let transport = std::error::Error::source(status)
            .is_some_and(|e| e.is::<tonic::transport::Error>());
        let code = if status.code() == Code::Unknown && transport { Code::Unavailable } else { status.code() };
        let mut err = Error::new(code, status.message());
        if let Some(info) = status.get_details_error_info() {
            if info.domain == ERROR_DOMAIN {
                err.reason = Some(info.reason);
                err.metadata = info.metadata;
            }
        }
        err
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The gRPC status code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The ErrorInfo reason, or `None` when the error did not come from cachee's handlers.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// The ErrorInfo metadata, such as `field`, `size` and `limit`; empty without a reason.
    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.metadata
    }

    /// The status message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

fn kind_of(code: Code) -> ErrorKind {
    match code {
        Code::InvalidArgument => ErrorKind::InvalidArgument,
        Code::ResourceExhausted => ErrorKind::ResourceExhausted,
        Code::Unavailable => ErrorKind::Unavailable,
        Code::FailedPrecondition => ErrorKind::FailedPrecondition,
        Code::Aborted => ErrorKind::Aborted,
        Code::DeadlineExceeded => ErrorKind::DeadlineExceeded,
        Code::Cancelled => ErrorKind::Cancelled,
        Code::DataLoss => ErrorKind::DataLoss,
        _ => ErrorKind::Internal,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            Some(r) => write!(f, "{:?} {}: {}", self.code, r, self.message),
            None => write!(f, "{:?}: {}", self.code, self.message),
        }
    }
}

impl std::error::Error for Error {}

impl From<tonic::Status> for Error {
    fn from(s: tonic::Status) -> Self {
        Error::from_status(&s)
    }
}
