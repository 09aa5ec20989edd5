//! Errors: one class per failure, as docs/sdk-contract.md section 6 and
//! sdk/testdata/contract/errors.json define them.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use cachee_proto::v1::ErrorReason;

/// The domain of every `google.rpc.ErrorInfo` that cachee attaches.
pub const ERROR_DOMAIN: &str = "cachee";

/// A gRPC status code, cachee's own copy so that the API carries no transport types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum Code {
    Ok,
    Cancelled,
    Unknown,
    InvalidArgument,
    DeadlineExceeded,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unimplemented,
    Internal,
    Unavailable,
    DataLoss,
    Unauthenticated,
}

impl Code {
    /// The code's name as gRPC spells it: `"UNAVAILABLE"`.
    pub fn name(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    pub(crate) fn from_tonic(c: tonic::Code) -> Code {
        use tonic::Code as T;
        match c {
            T::Ok => Code::Ok,
            T::Cancelled => Code::Cancelled,
            T::Unknown => Code::Unknown,
            T::InvalidArgument => Code::InvalidArgument,
            T::DeadlineExceeded => Code::DeadlineExceeded,
            T::NotFound => Code::NotFound,
            T::AlreadyExists => Code::AlreadyExists,
            T::PermissionDenied => Code::PermissionDenied,
            T::ResourceExhausted => Code::ResourceExhausted,
            T::FailedPrecondition => Code::FailedPrecondition,
            T::Aborted => Code::Aborted,
            T::OutOfRange => Code::OutOfRange,
            T::Unimplemented => Code::Unimplemented,
            T::Internal => Code::Internal,
            T::Unavailable => Code::Unavailable,
            T::DataLoss => Code::DataLoss,
            T::Unauthenticated => Code::Unauthenticated,
        }
    }
}

/// The class of a failure. Some classes belong to a broader one too
/// ([`ErrorKind::broader`]); [`Error::is`] answers for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A request field is invalid (reason `INVALID_FIELD`, or none), or an address that
    /// cannot be dialled.
    InvalidArgument,
    /// An empty key.
    KeyEmpty,
    /// A key over the sidecar's limit.
    KeyTooLarge,
    /// A value over the sidecar's limit.
    ValueTooLarge,
    /// A TTL the sidecar refuses.
    InvalidTtl,
    /// A batch of too many items.
    BatchTooLarge,
    /// A message over gRPC's size limit.
    MessageTooLarge,
    /// A reply that would be over the size limit.
    ResponseTooLarge,
    /// The cache is full under `--eviction=noeviction`.
    OutOfMemory,
    /// The sidecar cannot be reached, is shutting down, or did not answer within the
    /// client's default deadline.
    Unavailable,
    /// The sidecar refused the call before applying it: its client budget is spent.
    Overloaded,
    /// The L2 behind the sidecar could not be reached for a call that needs it.
    L2Unavailable,
    /// The call lacks the sidecar's bearer token, or has another.
    Unauthenticated,
    /// A read gave up under contention before answering.
    Contended,
    /// The sidecar's segment contradicts its format.
    Corrupt,
    /// The key holds another type of value than the call reads: a get of a hash
    /// written over RESP.
    WrongType,
    /// Prewarm without a prewarm source.
    PrewarmNotConfigured,
    /// Another prewarm is running.
    PrewarmRunning,
    /// The prewarm source could not be reached.
    PrewarmSourceUnavailable,
    /// The call's deadline passed.
    DeadlineExceeded,
    /// The call was cancelled.
    Canceled,
    /// A call on a closed client.
    Closed,
    /// Anything else the sidecar or the transport reported.
    Internal,
}

impl ErrorKind {
    /// The broader class this one also belongs to.
    pub fn broader(self) -> Option<ErrorKind> {
        use ErrorKind::*;
        match self {
            KeyEmpty | KeyTooLarge | ValueTooLarge | InvalidTtl | BatchTooLarge | MessageTooLarge => Some(InvalidArgument),
            Overloaded | L2Unavailable => Some(Unavailable),
            _ => None,
        }
    }

    /// The class's name in docs/sdk-contract.md: `"InvalidTTL"`, `"Overloaded"`.
    pub fn name(self) -> &'static str {
        use ErrorKind::*;
        match self {
            InvalidArgument => "InvalidArgument",
            KeyEmpty => "KeyEmpty",
            KeyTooLarge => "KeyTooLarge",
            ValueTooLarge => "ValueTooLarge",
            InvalidTtl => "InvalidTTL",
            BatchTooLarge => "BatchTooLarge",
            MessageTooLarge => "MessageTooLarge",
            ResponseTooLarge => "ResponseTooLarge",
            OutOfMemory => "OutOfMemory",
            Unavailable => "Unavailable",
            Overloaded => "Overloaded",
            L2Unavailable => "L2Unavailable",
            Unauthenticated => "Unauthenticated",
            Contended => "Contended",
            Corrupt => "Corrupt",
            WrongType => "WrongType",
            PrewarmNotConfigured => "PrewarmNotConfigured",
            PrewarmRunning => "PrewarmRunning",
            PrewarmSourceUnavailable => "PrewarmSourceUnavailable",
            DeadlineExceeded => "DeadlineExceeded",
            Canceled => "Canceled",
            Closed => "Closed",
            Internal => "Internal",
        }
    }

    /// The class of a failure with this status code and ErrorInfo reason (the reason
    /// decides when this SDK knows it, the code otherwise).
    pub(crate) fn classify(code: Code, reason: Option<&str>) -> ErrorKind {
        use ErrorKind as K;
        use ErrorReason as R;
        let known = reason.and_then(|r| ErrorReason::from_str_name(&format!("ERROR_REASON_{r}")));
        match known {
            Some(R::KeyEmpty) => return K::KeyEmpty,
            Some(R::KeyTooLarge) => return K::KeyTooLarge,
            Some(R::ValueTooLarge) => return K::ValueTooLarge,
            Some(R::MessageTooLarge) => return K::MessageTooLarge,
            Some(R::InvalidTtl) => return K::InvalidTtl,
            Some(R::BatchTooLarge) => return K::BatchTooLarge,
            Some(R::InvalidField) => return K::InvalidArgument,
            Some(R::Unauthenticated) => return K::Unauthenticated,
            Some(R::Overloaded) => return K::Overloaded,
            Some(R::ResponseTooLarge) => return K::ResponseTooLarge,
            Some(R::OutOfMemory) => return K::OutOfMemory,
            Some(R::ShuttingDown) => return K::Unavailable,
            Some(R::ReadContended) => return K::Contended,
            Some(R::SegmentCorrupt) => return K::Corrupt,
            Some(R::WrongType) => return K::WrongType,
            Some(R::PrewarmNotConfigured) => return K::PrewarmNotConfigured,
            Some(R::PrewarmRunning) => return K::PrewarmRunning,
            Some(R::PrewarmSourceUnavailable) => return K::PrewarmSourceUnavailable,
            Some(R::L2Unavailable) => return K::L2Unavailable,
            Some(R::DeadlineExceeded) => return K::DeadlineExceeded,
            Some(R::Canceled) => return K::Canceled,
            Some(R::Internal) => return K::Internal,
            Some(R::Unspecified) | None => {}
        }
        match code {
            Code::InvalidArgument => K::InvalidArgument,
            // gRPC's own message size limit comes without a reason.
            Code::ResourceExhausted => K::MessageTooLarge,
            Code::Unavailable => K::Unavailable,
            Code::Unauthenticated => K::Unauthenticated,
            Code::DataLoss => K::Corrupt,
            Code::DeadlineExceeded => K::DeadlineExceeded,
            Code::Cancelled => K::Canceled,
            _ => K::Internal,
        }
    }
}

/// A failed call: its class ([`Error::kind`]), the gRPC status code, the sidecar's
/// ErrorInfo reason (`"VALUE_TOO_LARGE"`; docs/grpc.md lists them), absent when the
/// error came from gRPC itself, and the ErrorInfo metadata (`field`, `size`, `limit`).
/// [`std::error::Error::source`] gives the cause: the gRPC status, and below it the
/// transport's error.
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    also: Option<ErrorKind>,
    code: Code,
    message: String,
    reason: Option<String>,
    metadata: HashMap<String, String>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    refused: bool,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, code: Code, message: impl Into<String>) -> Self {
        Error {
            kind,
            also: None,
            code,
            message: message.into(),
            reason: None,
            metadata: HashMap::new(),
            source: None,
            refused: false,
        }
    }

    pub(crate) fn invalid_address(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArgument, Code::InvalidArgument, message)
    }

    pub(crate) fn closed() -> Self {
        Error::new(ErrorKind::Closed, Code::Cancelled, "the client is closed")
    }

    /// The deadline of a call ran out; when it was the client's default (the caller
    /// gave none) the sidecar did not answer in time, which is also Unavailable.
    pub(crate) fn deadline(default: bool) -> Self {
        let mut e = Error::new(ErrorKind::DeadlineExceeded, Code::DeadlineExceeded, "deadline exceeded");
        if default {
            e.also = Some(ErrorKind::Unavailable);
            e.message = "deadline exceeded: the sidecar did not answer within the client's default deadline".into();
        }
        e
    }

    pub(crate) fn from_status(status: tonic::Status) -> Self {
        use tonic_types::StatusExt;
        let mut code = Code::from_tonic(status.code());
        // A connection that broke or closed mid-call reaches tonic as UNKNOWN or CANCELLED
        // with the transport's error as its source (a call this client cancels is dropped
        // and never gets here): the sidecar went away, which is UNAVAILABLE.
        if matches!(code, Code::Unknown | Code::Cancelled) && transport_failure(&status) {
            code = Code::Unavailable;
        }
        let refused = refused_stream(&status);
        let (mut reason, mut metadata) = (None, HashMap::new());
        if let Some(info) = status.get_details_error_info() {
            if info.domain == ERROR_DOMAIN {
                reason = Some(info.reason);
                metadata = info.metadata;
            }
        }
        Error {
            kind: ErrorKind::classify(code, reason.as_deref()),
            also: None,
            code,
            message: status.message().to_string(),
            reason,
            metadata,
            source: Some(Arc::new(status)),
            refused,
        }
    }

    /// Whether the sidecar refused the call's HTTP/2 stream before reading it
    /// (REFUSED_STREAM), which proves it was not applied, as OVERLOADED does.
    pub(crate) fn refused_unread(&self) -> bool {
        self.refused
    }

    /// The class of the failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether the failure is of class `kind`, or belongs to it as a broader class:
    /// an [`ErrorKind::Overloaded`] error `is(ErrorKind::Unavailable)` too.
    pub fn is(&self, kind: ErrorKind) -> bool {
        self.kind == kind || self.kind.broader() == Some(kind) || self.also == Some(kind)
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

/// Whether a status came from the transport (the connection failed or broke).
fn transport_failure(status: &tonic::Status) -> bool {
    std::error::Error::source(status).is_some_and(|e| e.is::<tonic::transport::Error>())
}

/// Whether the transport reset the call's stream with REFUSED_STREAM.
fn refused_stream(status: &tonic::Status) -> bool {
    let mut e: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(x) = e {
        if let Some(h) = x.downcast_ref::<h2::Error>() {
            return h.reason() == Some(h2::Reason::REFUSED_STREAM);
        }
        e = x.source();
    }
    false
}

/// Whether a status says a connection to the sidecar could not be made (refused, no
/// socket): the sidecar is down, as far as this client knows.
pub(crate) fn connect_failed(status: &tonic::Status) -> bool {
    let mut e: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(x) = e {
        if let Some(io) = x.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            return matches!(io.kind(), K::ConnectionRefused | K::NotFound | K::PermissionDenied | K::AddrNotAvailable);
        }
        e = x.source();
    }
    false
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("code", &self.code)
            .field("reason", &self.reason)
            .field("message", &self.message)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            Some(r) => write!(f, "{} ({} {r}): {}", self.kind.name(), self.code.name(), self.message),
            None => write!(f, "{} ({}): {}", self.kind.name(), self.code.name(), self.message),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}
