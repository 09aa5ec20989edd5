package server

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
	"github.com/cachee/cachee/server/tier"
	"github.com/cachee/cachee/store"
)

// ErrorDomain is the google.rpc.ErrorInfo domain of every error the server returns.
const ErrorDomain = "cachee"

// Errors that the server itself raises; the store's errors come from package store.
var (
	errBatchTooLarge   = errors.New("server: batch too large")
	errInvalidField    = errors.New("server: invalid field")
	errNoPrewarmer     = errors.New("server: no prewarm source configured: start cachee with --l2 or --prewarm-source (redis://HOST:PORT)")
	errPrewarmRunning  = errors.New("server: a prewarm is already running")
	errMessageTooLarge = errors.New("server: request message too large")
)

// errorCodes maps every error the service can return to its status code and
// ErrorInfo reason. toStatus walks it in order with errors.Is, so wrapped errors keep
// their meaning. The reasons are the ErrorReason enum of the API (error_reason.proto),
// which the SDKs map from too.
var errorCodes = []struct {
	err    error
	code   codes.Code
	reason cacheev1.ErrorReason
}{
	{store.ErrKeyEmpty, codes.InvalidArgument, cacheev1.ErrorReason_ERROR_REASON_KEY_EMPTY},
	{store.ErrKeyTooLarge, codes.InvalidArgument, cacheev1.ErrorReason_ERROR_REASON_KEY_TOO_LARGE},
	{store.ErrValueTooLarge, codes.InvalidArgument, cacheev1.ErrorReason_ERROR_REASON_VALUE_TOO_LARGE},
	{store.ErrInvalidTTL, codes.InvalidArgument, cacheev1.ErrorReason_ERROR_REASON_INVALID_TTL},
	{errBatchTooLarge, codes.InvalidArgument, cacheev1.ErrorReason_ERROR_REASON_BATCH_TOO_LARGE},
	{errInvalidField, codes.InvalidArgument, cacheev1.ErrorReason_ERROR_REASON_INVALID_FIELD},
	{errUnauthenticated, codes.Unauthenticated, cacheev1.ErrorReason_ERROR_REASON_UNAUTHENTICATED},
	{errOverloaded, codes.Unavailable, cacheev1.ErrorReason_ERROR_REASON_OVERLOADED},
	{errResponseTooLarge, codes.ResourceExhausted, cacheev1.ErrorReason_ERROR_REASON_RESPONSE_TOO_LARGE},
	{errMessageTooLarge, codes.ResourceExhausted, cacheev1.ErrorReason_ERROR_REASON_MESSAGE_TOO_LARGE},
	{store.ErrOutOfMemory, codes.ResourceExhausted, cacheev1.ErrorReason_ERROR_REASON_OUT_OF_MEMORY},
	{store.ErrClosed, codes.Unavailable, cacheev1.ErrorReason_ERROR_REASON_SHUTTING_DOWN},
	{store.ErrRetry, codes.Aborted, cacheev1.ErrorReason_ERROR_REASON_READ_CONTENDED},
	{store.ErrCorrupt, codes.DataLoss, cacheev1.ErrorReason_ERROR_REASON_SEGMENT_CORRUPT},
	// A key that holds a hash (written over RESP): the API reads and writes strings.
	{store.ErrWrongType, codes.FailedPrecondition, cacheev1.ErrorReason_ERROR_REASON_WRONG_TYPE},
	{errNoPrewarmer, codes.FailedPrecondition, cacheev1.ErrorReason_ERROR_REASON_PREWARM_NOT_CONFIGURED},
	{errPrewarmRunning, codes.Aborted, cacheev1.ErrorReason_ERROR_REASON_PREWARM_RUNNING},
	{tier.ErrPrewarmSource, codes.Unavailable, cacheev1.ErrorReason_ERROR_REASON_PREWARM_SOURCE_UNAVAILABLE},
	{tier.ErrL2Unavailable, codes.Unavailable, cacheev1.ErrorReason_ERROR_REASON_L2_UNAVAILABLE},
	{context.DeadlineExceeded, codes.DeadlineExceeded, cacheev1.ErrorReason_ERROR_REASON_DEADLINE_EXCEEDED},
	{context.Canceled, codes.Canceled, cacheev1.ErrorReason_ERROR_REASON_CANCELED},
}

// reasonPrefix starts every ErrorReason value's name; the ErrorInfo reason is the
// name without it.
const reasonPrefix = "ERROR_REASON_"

// reasonName is the ErrorInfo reason of r, such as "VALUE_TOO_LARGE".
func reasonName(r cacheev1.ErrorReason) string { return strings.TrimPrefix(r.String(), reasonPrefix) }

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
	code, reason := codes.Internal, cacheev1.ErrorReason_ERROR_REASON_INTERNAL
	for _, m := range errorCodes {
		if errors.Is(err, m.err) {
			code, reason = m.code, m.reason
			break
		}
	}
	info := &errdetails.ErrorInfo{Reason: reasonName(reason), Domain: ErrorDomain}
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
