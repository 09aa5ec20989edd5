package server

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
	"github.com/cachee/cachee/server/tier"
	"github.com/cachee/cachee/store"
)

func TestToStatus(t *testing.T) {
	for _, tc := range []struct {
		err    error
		code   codes.Code
		reason string
		meta   map[string]string
	}{
		{store.ErrKeyEmpty, codes.InvalidArgument, "KEY_EMPTY", nil},
		{fmt.Errorf("%w: 70000 bytes, limit 65536", store.ErrKeyTooLarge), codes.InvalidArgument, "KEY_TOO_LARGE", nil},
		{fmt.Errorf("%w: can never fit", store.ErrValueTooLarge), codes.InvalidArgument, "VALUE_TOO_LARGE", nil},
		{fmt.Errorf("%w: -1s", store.ErrInvalidTTL), codes.InvalidArgument, "INVALID_TTL", nil},
		{store.ErrOutOfMemory, codes.ResourceExhausted, "OUT_OF_MEMORY", nil},
		{store.ErrClosed, codes.Unavailable, "SHUTTING_DOWN", nil},
		{store.ErrRetry, codes.Aborted, "READ_CONTENDED", nil},
		{store.ErrCorrupt, codes.DataLoss, "SEGMENT_CORRUPT", nil},
		{fmt.Errorf("%w: hash", store.ErrWrongType), codes.FailedPrecondition, "WRONG_TYPE", nil},
		{errNoPrewarmer, codes.FailedPrecondition, "PREWARM_NOT_CONFIGURED", nil},
		{errPrewarmRunning, codes.Aborted, "PREWARM_RUNNING", nil},
		{fmt.Errorf("%w: dial redis:6379: refused", tier.ErrPrewarmSource), codes.Unavailable, "PREWARM_SOURCE_UNAVAILABLE", nil},
		{fmt.Errorf("%w: dial redis:6379: refused", tier.ErrL2Unavailable), codes.Unavailable, "L2_UNAVAILABLE", nil},
		{fmt.Errorf("loading: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "DEADLINE_EXCEEDED", nil},
		{context.Canceled, codes.Canceled, "CANCELED", nil},
		{errors.New("disk on fire"), codes.Internal, "INTERNAL", nil},
		{&fieldError{field: "items[2].value", err: store.ErrValueTooLarge, size: 2000, limit: 1024},
			codes.InvalidArgument, "VALUE_TOO_LARGE", map[string]string{"field": "items[2].value", "size": "2000", "limit": "1024"}},
		{&fieldError{field: "keys", err: errInvalidField}, codes.InvalidArgument, "INVALID_FIELD", map[string]string{"field": "keys"}},
		{&fieldError{field: "keys", err: errBatchTooLarge, size: 1001, limit: 1000}, codes.InvalidArgument, "BATCH_TOO_LARGE",
			map[string]string{"field": "keys", "size": "1001", "limit": "1000"}},
		{errUnauthenticated, codes.Unauthenticated, "UNAUTHENTICATED", nil},
		{errOverloaded, codes.Unavailable, "OVERLOADED", nil},
		{&fieldError{field: "keys", err: errResponseTooLarge, size: 3, limit: 2}, codes.ResourceExhausted, "RESPONSE_TOO_LARGE",
			map[string]string{"field": "keys", "size": "3", "limit": "2"}},
		{&messageTooLarge{size: 5000, limit: 4000, raise: "raise --x"}, codes.ResourceExhausted, "MESSAGE_TOO_LARGE",
			map[string]string{"size": "5000", "limit": "4000"}},
		{&messageTooLarge{limit: 4000, raise: "raise --x"}, codes.ResourceExhausted, "MESSAGE_TOO_LARGE", map[string]string{"limit": "4000"}},
	} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			err := toStatus(tc.err)
			st, ok := status.FromError(err)
			if !ok || st.Code() != tc.code || st.Message() != tc.err.Error() {
				t.Fatalf("status %v: want code %v and message %q", st, tc.code, tc.err)
			}
			if len(st.Details()) != 1 {
				t.Fatalf("details %v", st.Details())
			}
			info := st.Details()[0].(*errdetails.ErrorInfo)
			if info.GetReason() != tc.reason || info.GetDomain() != ErrorDomain || !maps.Equal(info.GetMetadata(), tc.meta) {
				t.Fatalf("ErrorInfo %v: want reason %s, metadata %v", info, tc.reason, tc.meta)
			}
		})
	}
	if toStatus(nil) != nil {
		t.Fatal("nil error became a status")
	}
	// A status passes through unchanged rather than becoming INTERNAL.
	orig := status.Error(codes.ResourceExhausted, "message too large")
	if got := toStatus(orig); got != orig {
		t.Fatalf("status rewritten: %v", got)
	}
}

// TestEveryReasonIsMapped: the table gives every ErrorReason of the API, once, but
// UNSPECIFIED (never sent) and INTERNAL (what toStatus gives anything not in it).
func TestEveryReasonIsMapped(t *testing.T) {
	seen := map[cacheev1.ErrorReason]int{}
	for _, m := range errorCodes {
		seen[m.reason]++
	}
	for v, name := range cacheev1.ErrorReason_name {
		r := cacheev1.ErrorReason(v)
		want := 1
		if r == cacheev1.ErrorReason_ERROR_REASON_UNSPECIFIED || r == cacheev1.ErrorReason_ERROR_REASON_INTERNAL {
			want = 0
		}
		if seen[r] != want {
			t.Errorf("%s is in the table %d times, want %d", name, seen[r], want)
		}
	}
	if got := reasonName(cacheev1.ErrorReason_ERROR_REASON_VALUE_TOO_LARGE); got != "VALUE_TOO_LARGE" {
		t.Fatalf("reason name %q", got)
	}
}

// TestEveryMappedErrorIsDistinct guards the table's order: errors.Is on an earlier
// entry must not capture a later one.
func TestEveryMappedErrorIsDistinct(t *testing.T) {
	for i, a := range errorCodes {
		for j, b := range errorCodes {
			if i != j && errors.Is(a.err, b.err) {
				t.Errorf("%v matches %v", a.err, b.err)
			}
		}
	}
}
