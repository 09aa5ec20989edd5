package cachee

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// statusErr builds an error as the sidecar's toStatus does.
func statusErr(t *testing.T, code codes.Code, reason string, md map[string]string) error {
	t.Helper()
	st := status.New(code, "msg")
	if reason != "" {
		var err error
		st, err = st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: errorDomain, Metadata: md})
		if err != nil {
			t.Fatal(err)
		}
	}
	return st.Err()
}

// TestFromStatus covers every code and reason in docs/grpc.md, plus the reason-less
// errors gRPC raises itself: the table is the inverse of server/errors.go.
func TestFromStatus(t *testing.T) {
	tests := []struct {
		code   codes.Code
		reason string
		is     []error // sentinels it must match
		isNot  []error // sentinels it must not match
	}{
		{codes.InvalidArgument, "KEY_EMPTY", []error{ErrKeyEmpty, ErrInvalidArgument}, []error{ErrKeyTooLarge, ErrUnavailable}},
		{codes.InvalidArgument, "KEY_TOO_LARGE", []error{ErrKeyTooLarge, ErrInvalidArgument}, []error{ErrValueTooLarge}},
		{codes.InvalidArgument, "VALUE_TOO_LARGE", []error{ErrValueTooLarge, ErrInvalidArgument}, []error{ErrKeyTooLarge}},
		{codes.InvalidArgument, "INVALID_TTL", []error{ErrInvalidTTL, ErrInvalidArgument}, nil},
		{codes.InvalidArgument, "BATCH_TOO_LARGE", []error{ErrBatchTooLarge, ErrInvalidArgument}, nil},
		{codes.InvalidArgument, "INVALID_FIELD", []error{ErrInvalidArgument}, []error{ErrKeyEmpty}},
		{codes.ResourceExhausted, "OUT_OF_MEMORY", []error{ErrOutOfMemory}, []error{ErrMessageTooLarge, ErrValueTooLarge}},
		{codes.Unavailable, "SHUTTING_DOWN", []error{ErrUnavailable}, nil},
		{codes.Unavailable, "PREWARM_SOURCE_UNAVAILABLE", []error{ErrPrewarmSourceUnavailable}, []error{ErrUnavailable}},
		{codes.FailedPrecondition, "WRONG_TYPE", []error{ErrWrongType}, []error{ErrPrewarmNotConfigured, ErrInvalidArgument}},
		{codes.FailedPrecondition, "PREWARM_NOT_CONFIGURED", []error{ErrPrewarmNotConfigured}, []error{ErrWrongType}},
		{codes.Aborted, "PREWARM_RUNNING", []error{ErrPrewarmRunning}, []error{ErrContended}},
		{codes.Aborted, "READ_CONTENDED", []error{ErrContended}, []error{ErrPrewarmRunning}},
		{codes.DataLoss, "SEGMENT_CORRUPT", []error{ErrCorrupt}, nil},
		{codes.DeadlineExceeded, "DEADLINE_EXCEEDED", []error{context.DeadlineExceeded}, nil},
		{codes.Canceled, "CANCELED", []error{context.Canceled}, nil},
		{codes.Internal, "INTERNAL", []error{ErrInternal}, nil},
		// From gRPC itself: no ErrorInfo.
		{codes.Unavailable, "", []error{ErrUnavailable}, nil},
		{codes.ResourceExhausted, "", []error{ErrMessageTooLarge, ErrInvalidArgument}, []error{ErrOutOfMemory, ErrValueTooLarge}},
		{codes.DeadlineExceeded, "", []error{context.DeadlineExceeded}, []error{ErrUnavailable}},
		{codes.Canceled, "", []error{context.Canceled}, nil},
		{codes.Unimplemented, "", []error{ErrInternal}, []error{ErrUnavailable, ErrInvalidArgument}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v/%s", tt.code, tt.reason), func(t *testing.T) {
			err := fromStatus(statusErr(t, tt.code, tt.reason, map[string]string{"field": "key"}))
			for _, s := range tt.is {
				if !errors.Is(err, s) {
					t.Errorf("%v: not %v", err, s)
				}
			}
			for _, s := range tt.isNot {
				if errors.Is(err, s) {
					t.Errorf("%v: is %v", err, s)
				}
			}
			e, ok := errors.AsType[*Error](err)
			if !ok {
				t.Fatalf("%T is not *Error", err)
			}
			if e.Code != tt.code || e.Reason != tt.reason {
				t.Errorf("code %v reason %q", e.Code, e.Reason)
			}
			if tt.reason != "" && e.Metadata["field"] != "key" {
				t.Errorf("metadata %v", e.Metadata)
			}
			if status.Code(err) != tt.code {
				t.Errorf("status.Code = %v", status.Code(err))
			}
		})
	}
}

// TestFromStatusForeignDomain ignores ErrorInfo from another domain (a proxy's, say)
// and falls back to the code.
func TestFromStatusForeignDomain(t *testing.T) {
	st, err := status.New(codes.Unavailable, "x").WithDetails(&errdetails.ErrorInfo{Reason: "OUT_OF_MEMORY", Domain: "other"})
	if err != nil {
		t.Fatal(err)
	}
	got := fromStatus(st.Err())
	if !errors.Is(got, ErrUnavailable) || errors.Is(got, ErrOutOfMemory) {
		t.Fatalf("%v", got)
	}
}

// TestFromStatusContext maps a context error raised before any call reached gRPC.
func TestFromStatusContext(t *testing.T) {
	if got := fromStatus(context.DeadlineExceeded); !errors.Is(got, context.DeadlineExceeded) {
		t.Fatalf("%v", got)
	}
	if got := fromStatus(fmt.Errorf("wrapped: %w", context.Canceled)); !errors.Is(got, context.Canceled) {
		t.Fatalf("%v", got)
	}
	if fromStatus(nil) != nil {
		t.Fatal("nil")
	}
}
