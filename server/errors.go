package server

import (
	"context"
	"errors"
	"strconv"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cachee/cachee/store"
)

// ErrorDomain is the google.rpc.ErrorInfo domain of every error the server returns.
const ErrorDomain = "cachee"

// ErrPrewarmSource is for a Prewarmer to wrap when its source cannot be reached; the
// Prewarm RPC then fails UNAVAILABLE.
var ErrPrewarmSource = errors.New("server: prewarm source unavailable")

// ErrL2Unavailable is for a Tier to wrap when its L2 cannot be reached (or answered
// too late) for a call that needs it, such as a write-through; the call then fails
// UNAVAILABLE.
var ErrL2Unavailable = errors.New("server: L2 unavailable")

// Errors that the server itself raises; the store's errors come from package store.
var (
	errBatchTooLarge   = errors.New("server: batch too large")
	errInvalidField    = errors.New("server: invalid field")
	errNoPrewarmer     = errors.New("server: no prewarm source configured")
	errPrewarmRunning  = errors.New("server: a prewarm is already running")
	errMessageTooLarge = errors.New("server: request message too large")
)

// errorCodes maps every error the service can return to its status code and
// ErrorInfo reason. toStatus walks it in order with errors.Is, so wrapped errors keep
// their meaning.
var errorCodes = []struct {
	err    error
	code   codes.Code
	reason string
}{
	{store.ErrKeyEmpty, codes.InvalidArgument, "KEY_EMPTY"},
	{store.ErrKeyTooLarge, codes.InvalidArgument, "KEY_TOO_LARGE"},
	{store.ErrValueTooLarge, codes.InvalidArgument, "VALUE_TOO_LARGE"},
	{store.ErrInvalidTTL, codes.InvalidArgument, "INVALID_TTL"},
	{errBatchTooLarge, codes.InvalidArgument, "BATCH_TOO_LARGE"},
	{errInvalidField, codes.InvalidArgument, "INVALID_FIELD"},
	{errUnauthenticated, codes.Unauthenticated, "UNAUTHENTICATED"},
	{errOverloaded, codes.Unavailable, "OVERLOADED"},
	{errResponseTooLarge, codes.ResourceExhausted, "RESPONSE_TOO_LARGE"},
	{errMessageTooLarge, codes.ResourceExhausted, "MESSAGE_TOO_LARGE"},
	{store.ErrOutOfMemory, codes.ResourceExhausted, "OUT_OF_MEMORY"},
	{store.ErrClosed, codes.Unavailable, "SHUTTING_DOWN"},
	{store.ErrRetry, codes.Aborted, "READ_CONTENDED"},
	{store.ErrCorrupt, codes.DataLoss, "SEGMENT_CORRUPT"},
	{errNoPrewarmer, codes.FailedPrecondition, "PREWARM_NOT_CONFIGURED"},
	{errPrewarmRunning, codes.Aborted, "PREWARM_RUNNING"},
	{ErrPrewarmSource, codes.Unavailable, "PREWARM_SOURCE_UNAVAILABLE"},
	{ErrL2Unavailable, codes.Unavailable, "L2_UNAVAILABLE"},
	{context.DeadlineExceeded, codes.DeadlineExceeded, "DEADLINE_EXCEEDED"},
	{context.Canceled, codes.Canceled, "CANCELED"},
}

// fieldError is a request field that failed validation. It unwraps to the sentinel
// that says what is wrong, and carries where and by how much for ErrorInfo metadata.
type fieldError struct {
	field string // "key", "items[3].value"
	err   error  // a sentinel from errorCodes
	size  int64  // offending size or value, when it has one
	limit int64  // the limit it broke; 0 when there is none
}

func (e *fieldError) Error() string {
	msg := e.field + ": " + e.err.Error()
	if e.limit > 0 {
		msg += " (" + strconv.FormatInt(e.size, 10) + ", limit " + strconv.FormatInt(e.limit, 10) + ")"
	}
	return msg
}

func (e *fieldError) Unwrap() error { return e.err }

// messageTooLarge is a request message over the server's message size limit, refused
// by grpc-go before it read the message. raise says which flag raises the limit.
type messageTooLarge struct {
	size  int64 // 0 when grpc-go did not say
	limit int64
	raise string
}

func (e *messageTooLarge) Error() string {
	msg := errMessageTooLarge.Error()
	if e.size > 0 {
		msg += ": " + strconv.FormatInt(e.size, 10) + " bytes"
	}
	return msg + ", over the limit of " + strconv.FormatInt(e.limit, 10) + " bytes; " + e.raise
}

func (e *messageTooLarge) Unwrap() error { return errMessageTooLarge }

// toStatus turns any error the service meets into a gRPC status error carrying a
// google.rpc.ErrorInfo. It is the only place that chooses status codes.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return err // already a status, e.g. from the transport
	}
	code, reason := codes.Internal, "INTERNAL"
	for _, m := range errorCodes {
		if errors.Is(err, m.err) {
			code, reason = m.code, m.reason
			break
		}
	}
	info := &errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain}
	if fe, ok := errors.AsType[*fieldError](err); ok {
		info.Metadata = map[string]string{"field": fe.field}
		if fe.limit > 0 {
			info.Metadata["size"] = strconv.FormatInt(fe.size, 10)
			info.Metadata["limit"] = strconv.FormatInt(fe.limit, 10)
		}
	}
	if me, ok := errors.AsType[*messageTooLarge](err); ok {
		info.Metadata = map[string]string{"limit": strconv.FormatInt(me.limit, 10)}
		if me.size > 0 {
			info.Metadata["size"] = strconv.FormatInt(me.size, 10)
		}
	}
	st, derr := status.New(code, err.Error()).WithDetails(info)
	if derr != nil {
		return status.Error(code, err.Error())
	}
	return st.Err()
}
