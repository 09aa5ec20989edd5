package cachee

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
)

// Sentinel errors. Every error a Client returns for a failed call is an *Error that
// matches, with errors.Is, the most specific sentinel below and the broader one it
// belongs to: a too-large value is both ErrValueTooLarge and ErrInvalidArgument. The
// classes, and which failure maps to which, are the SDK contract's
// (docs/sdk-contract.md), which every cachee SDK follows.
var (
	// ErrUnavailable: the sidecar cannot be reached (not started yet, restarting,
	// gone, or draining). The Client keeps reconnecting in the background.
	ErrUnavailable = errors.New("cachee: sidecar unavailable")
	// ErrOverloaded: the sidecar refused the call before applying it, for lack of
	// client memory. It is also ErrUnavailable; the Client retries it itself.
	ErrOverloaded = errors.New("cachee: sidecar overloaded")
	// ErrL2Unavailable: the sidecar's L2 (a central Redis) could not be reached in
	// time for a call that needed it. It is also ErrUnavailable.
	ErrL2Unavailable = errors.New("cachee: L2 unavailable")
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
	// ErrMessageTooLarge: the request as a whole was over the sidecar's message
	// limit: a BatchSet or BatchGet too large in bytes, or a value far over the
	// limit. Split the batch.
	ErrMessageTooLarge = errors.New("cachee: message too large")

	// ErrResponseTooLarge: the answer would have been over the sidecar's message
	// limit (a BatchGet of many large values). Ask for fewer keys at a time.
	ErrResponseTooLarge = errors.New("cachee: response too large")
	// ErrOutOfMemory: the cache is full and the sidecar runs with --eviction=noeviction.
	ErrOutOfMemory = errors.New("cachee: out of memory")

	// ErrContended: a read kept racing the sidecar's writes and gave up. The Client
	// retries these itself; seeing one means the retries ran out.
	ErrContended = errors.New("cachee: read contended")
	// ErrCorrupt: the shared-memory segment contradicts its format.
	ErrCorrupt = errors.New("cachee: segment corrupt")

	// ErrWrongType: the key holds another type of value than the call reads: a Get
	// of a hash (written over RESP), or an HGet of a string.
	ErrWrongType = errors.New("cachee: key holds another type of value")

	ErrPrewarmNotConfigured     = errors.New("cachee: prewarm not configured")
	ErrPrewarmRunning           = errors.New("cachee: prewarm already running")
	ErrPrewarmSourceUnavailable = errors.New("cachee: prewarm source unavailable")

	// ErrInternal: the sidecar failed in a way it did not classify.
	ErrInternal = errors.New("cachee: internal error")
)

// broader is the class a sentinel also belongs to.
var broader = map[error]error{
	ErrKeyEmpty:        ErrInvalidArgument,
	ErrKeyTooLarge:     ErrInvalidArgument,
	ErrValueTooLarge:   ErrInvalidArgument,
	ErrInvalidTTL:      ErrInvalidArgument,
	ErrBatchTooLarge:   ErrInvalidArgument,
	ErrMessageTooLarge: ErrInvalidArgument,
	ErrOverloaded:      ErrUnavailable,
	ErrL2Unavailable:   ErrUnavailable,
}

// errorDomain is the google.rpc.ErrorInfo domain of the sidecar's errors.
const errorDomain = "cachee"

// reasonPrefix starts every ErrorReason value's name; the reason sent in ErrorInfo is
// the name without it.
const reasonPrefix = "ERROR_REASON_"

// reasons maps every ErrorReason the sidecar sends to its sentinel. A test checks that
// every value of the enum has one.
var reasons = map[cacheev1.ErrorReason]error{
	cacheev1.ErrorReason_ERROR_REASON_KEY_EMPTY:                  ErrKeyEmpty,
	cacheev1.ErrorReason_ERROR_REASON_KEY_TOO_LARGE:              ErrKeyTooLarge,
	cacheev1.ErrorReason_ERROR_REASON_VALUE_TOO_LARGE:            ErrValueTooLarge,
	cacheev1.ErrorReason_ERROR_REASON_MESSAGE_TOO_LARGE:          ErrMessageTooLarge,
	cacheev1.ErrorReason_ERROR_REASON_INVALID_TTL:                ErrInvalidTTL,
	cacheev1.ErrorReason_ERROR_REASON_BATCH_TOO_LARGE:            ErrBatchTooLarge,
	cacheev1.ErrorReason_ERROR_REASON_INVALID_FIELD:              ErrInvalidArgument,
	cacheev1.ErrorReason_ERROR_REASON_UNAUTHENTICATED:            ErrUnauthenticated,
	cacheev1.ErrorReason_ERROR_REASON_OVERLOADED:                 ErrOverloaded,
	cacheev1.ErrorReason_ERROR_REASON_RESPONSE_TOO_LARGE:         ErrResponseTooLarge,
	cacheev1.ErrorReason_ERROR_REASON_OUT_OF_MEMORY:              ErrOutOfMemory,
	cacheev1.ErrorReason_ERROR_REASON_SHUTTING_DOWN:              ErrUnavailable,
	cacheev1.ErrorReason_ERROR_REASON_READ_CONTENDED:             ErrContended,
	cacheev1.ErrorReason_ERROR_REASON_SEGMENT_CORRUPT:            ErrCorrupt,
	cacheev1.ErrorReason_ERROR_REASON_WRONG_TYPE:                 ErrWrongType,
	cacheev1.ErrorReason_ERROR_REASON_PREWARM_NOT_CONFIGURED:     ErrPrewarmNotConfigured,
	cacheev1.ErrorReason_ERROR_REASON_PREWARM_RUNNING:            ErrPrewarmRunning,
	cacheev1.ErrorReason_ERROR_REASON_PREWARM_SOURCE_UNAVAILABLE: ErrPrewarmSourceUnavailable,
	cacheev1.ErrorReason_ERROR_REASON_L2_UNAVAILABLE:             ErrL2Unavailable,
	cacheev1.ErrorReason_ERROR_REASON_DEADLINE_EXCEEDED:          context.DeadlineExceeded,
	cacheev1.ErrorReason_ERROR_REASON_CANCELED:                   context.Canceled,
	cacheev1.ErrorReason_ERROR_REASON_INTERNAL:                   ErrInternal,
}

// reasonOf parses an ErrorInfo reason; ERROR_REASON_UNSPECIFIED for none, or for one
// this SDK does not know (a newer sidecar's).
func reasonOf(s string) cacheev1.ErrorReason {
	if s == "" {
		return cacheev1.ErrorReason_ERROR_REASON_UNSPECIFIED
	}
	return cacheev1.ErrorReason(cacheev1.ErrorReason_value[reasonPrefix+s])
}

// reasonName is the ErrorInfo form of r.
func reasonName(r cacheev1.ErrorReason) string {
	return strings.TrimPrefix(r.String(), reasonPrefix)
}

// codeSentinels decides the class when an error carries no reason this SDK knows:
// errors that gRPC itself raises (a dead socket, a message over the size limit, a
// deadline) have none. Any other code is ErrInternal.
var codeSentinels = map[codes.Code]error{
	codes.Unavailable:       ErrUnavailable,
	codes.InvalidArgument:   ErrInvalidArgument,
	codes.ResourceExhausted: ErrMessageTooLarge,
	codes.DataLoss:          ErrCorrupt,
	codes.DeadlineExceeded:  context.DeadlineExceeded,
	codes.Canceled:          context.Canceled,
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
	if target == e.sentinel || target == broader[e.sentinel] {
		return true
	}
	// The Client's own timeout ran out (see Client.call): the sidecar did not answer
	// in time, which is both a deadline and ErrUnavailable.
	return e.sentinel == ErrUnavailable && target == context.DeadlineExceeded && e.Code == codes.DeadlineExceeded
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
	e.sentinel = classify(e.Code, e.Reason)
	return e
}

// localError is an error the Client finds without asking the sidecar, shaped as the
// sidecar would have returned it; its sentinel says all there is to say.
func localError(code codes.Code, reason cacheev1.ErrorReason, field string) *Error {
	e := &Error{Code: code, Reason: reasonName(reason), sentinel: reasons[reason]}
	if field != "" {
		e.Metadata = map[string]string{"field": field}
	}
	return e
}

// classify picks the sentinel of a failure: its reason's when this SDK knows the
// reason, else its code's, else ErrInternal.
func classify(code codes.Code, reason string) error {
	if s, ok := reasons[reasonOf(reason)]; ok {
		return s
	}
	if s, ok := codeSentinels[code]; ok {
		return s
	}
	return ErrInternal
}
