package cachee

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors. Every error a Client returns for a failed call is an *Error that
// matches, with errors.Is, the most specific sentinel below and the broader one it
// belongs to: a too-large value is both ErrValueTooLarge and ErrInvalidArgument.
var (
	// ErrUnavailable: the sidecar cannot be reached (not started yet, restarting,
	// gone, or draining). The Client keeps reconnecting in the background.
	ErrUnavailable = errors.New("cachee: sidecar unavailable")
	// ErrClosed: the Client was closed.
	ErrClosed = errors.New("cachee: client closed")
	// ErrUnauthenticated: the sidecar requires a token (--auth-token) and the call
	// carried none, or a wrong one: see WithAuthToken.
	ErrUnauthenticated = errors.New("cachee: unauthenticated")

	// ErrInvalidArgument: the request was malformed. The sentinels below it say how.
	ErrInvalidArgument = errors.New("cachee: invalid argument")
	ErrKeyEmpty        = errors.New("cachee: key is empty")
	ErrKeyTooLarge     = errors.New("cachee: key too large")
	ErrValueTooLarge   = errors.New("cachee: value too large")
	ErrInvalidTTL      = errors.New("cachee: invalid ttl")
	ErrBatchTooLarge   = errors.New("cachee: batch too large")

	// ErrOutOfMemory: the cache is full and the sidecar runs with --eviction=noeviction.
	ErrOutOfMemory = errors.New("cachee: out of memory")
	// ErrMessageTooLarge: a request over the sidecar's message size limit (which
	// follows its --max-value-size), or an answer over the client's: a value far over
	// the sidecar's limit, or a BatchSet or BatchGet too large as a whole. It also
	// matches ErrValueTooLarge, since only values make a message that large. Split the
	// batch, or raise the client's limit with WithDialOptions.
	ErrMessageTooLarge = errors.New("cachee: message too large")

	// ErrContended: a read kept racing the sidecar's writes and gave up. The Client
	// retries these itself; seeing one means the retries ran out.
	ErrContended = errors.New("cachee: read contended")
	// ErrCorrupt: the shared-memory segment contradicts its format.
	ErrCorrupt = errors.New("cachee: segment corrupt")

	ErrPrewarmNotConfigured     = errors.New("cachee: prewarm not configured")
	ErrPrewarmRunning           = errors.New("cachee: prewarm already running")
	ErrPrewarmSourceUnavailable = errors.New("cachee: prewarm source unavailable")

	// ErrInternal: the sidecar failed in a way it did not classify.
	ErrInternal = errors.New("cachee: internal error")
)

// errorDomain is the google.rpc.ErrorInfo domain of the sidecar's errors.
const errorDomain = "cachee"

// reasons maps the sidecar's ErrorInfo reasons (docs/grpc.md) to sentinels.
var reasons = map[string]error{
	"KEY_EMPTY":                  ErrKeyEmpty,
	"KEY_TOO_LARGE":              ErrKeyTooLarge,
	"VALUE_TOO_LARGE":            ErrValueTooLarge,
	"INVALID_TTL":                ErrInvalidTTL,
	"BATCH_TOO_LARGE":            ErrBatchTooLarge,
	"MESSAGE_TOO_LARGE":          ErrMessageTooLarge,
	"INVALID_FIELD":              ErrInvalidArgument,
	"OUT_OF_MEMORY":              ErrOutOfMemory,
	"SHUTTING_DOWN":              ErrUnavailable,
	"PREWARM_SOURCE_UNAVAILABLE": ErrPrewarmSourceUnavailable,
	"PREWARM_NOT_CONFIGURED":     ErrPrewarmNotConfigured,
	"PREWARM_RUNNING":            ErrPrewarmRunning,
	"READ_CONTENDED":             ErrContended,
	"SEGMENT_CORRUPT":            ErrCorrupt,
	"DEADLINE_EXCEEDED":          context.DeadlineExceeded,
	"CANCELED":                   context.Canceled,
	"INTERNAL":                   ErrInternal,
	"UNAUTHENTICATED":            ErrUnauthenticated,
}

// codeSentinels is the fallback when an error carries no reason we know: errors that
// gRPC itself raises (a dead socket, a message over the size limit, a deadline) have
// none.
var codeSentinels = map[codes.Code]error{
	codes.Unavailable:       ErrUnavailable,
	codes.InvalidArgument:   ErrInvalidArgument,
	codes.ResourceExhausted: ErrMessageTooLarge,
	codes.DataLoss:          ErrCorrupt,
	codes.DeadlineExceeded:  context.DeadlineExceeded,
	codes.Canceled:          context.Canceled,
	codes.Internal:          ErrInternal,
	codes.Unknown:           ErrInternal,
	codes.Unauthenticated:   ErrUnauthenticated,
}

// Error is a failed call: the status code and ErrorInfo the sidecar (or gRPC) gave.
// Match it with errors.Is against the sentinels; use errors.As to read the details.
type Error struct {
	// Code is the gRPC status code.
	Code codes.Code
	// Reason is the ErrorInfo reason, such as "VALUE_TOO_LARGE"; empty when the
	// error came from gRPC itself or from the Client.
	Reason string
	// Metadata is the ErrorInfo metadata: "field" names the offending field
	// ("key", "items[3].value") and, for size limits, "size" and "limit".
	Metadata map[string]string
	// Message is the status message.
	Message string

	sentinel error // the most specific sentinel, or nil
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.sentinel != nil {
		b.WriteString(e.sentinel.Error())
	} else {
		b.WriteString("cachee: ")
		b.WriteString(strings.ToLower(e.Code.String()))
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Is makes errors.Is match the specific sentinel and the broader class it belongs to.
func (e *Error) Is(target error) bool {
	if target == nil {
		return false
	}
	if target == e.sentinel {
		return true
	}
	switch target {
	case ErrInvalidArgument:
		return e.Code == codes.InvalidArgument
	case ErrUnavailable:
		// A prewarm source being down says nothing about the sidecar.
		return e.Code == codes.Unavailable && e.sentinel != ErrPrewarmSourceUnavailable
	case ErrValueTooLarge:
		return e.sentinel == ErrMessageTooLarge
	case context.DeadlineExceeded:
		return e.Code == codes.DeadlineExceeded
	case context.Canceled:
		return e.Code == codes.Canceled
	}
	return false
}

// GRPCStatus lets status.Code and status.FromError see the original status.
func (e *Error) GRPCStatus() *status.Status {
	return status.New(e.Code, e.Message)
}

// fromStatus converts an error from a gRPC call into an *Error. It is the one place
// that inverts the sidecar's mapping (server/errors.go). Context errors raised on the
// client side keep their identity through Is.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*Error](err); ok {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		// Not from gRPC: the context ended before the call was made, for example.
		st = status.FromContextError(err)
	}
	e := &Error{Code: st.Code(), Message: st.Message()}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == errorDomain {
			e.Reason = info.GetReason()
			e.Metadata = info.GetMetadata()
			break
		}
	}
	if s, ok := reasons[e.Reason]; ok {
		e.sentinel = s
	} else {
		e.sentinel = codeSentinels[e.Code]
	}
	return e
}

// localError is an error the Client finds without asking the sidecar, shaped as the
// sidecar would have returned it; its sentinel says all there is to say.
func localError(code codes.Code, reason string, field string) *Error {
	e := &Error{Code: code, Reason: reason, sentinel: reasons[reason]}
	if field != "" {
		e.Metadata = map[string]string{"field": field}
	}
	return e
}
