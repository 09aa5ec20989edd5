package server

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
	"github.com/cachee/cachee/store"
)

// Limits on one request, besides the store's key and value sizes.
const (
	MaxBatch = 1000    // keys of a BatchGet, items of a BatchSet
	MaxRefs  = 1 << 16 // refs of a RecordAccess
)

// limits are the bounds a request is validated against; they come from the store's
// configuration, which is why validation lives in the server and not in the messages.
type limits struct {
	maxKey, maxValue int
}

// validationUnary rejects an invalid request before it reaches a handler.
// go-grpc-middleware's validator interceptor needs Validate methods on the generated
// messages (protoc-gen-validate) and flattens every error to a bare INVALID_ARGUMENT;
// ours knows the configured limits and keeps the ErrorInfo reason.
func validationUnary(lim limits) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if err := lim.validate(req); err != nil {
			return nil, toStatus(err)
		}
		return h(ctx, req)
	}
}

// validationStream validates each message a stream receives.
func validationStream(lim limits) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		return h(srv, &validatingStream{ServerStream: ss, lim: lim})
	}
}

type validatingStream struct {
	grpc.ServerStream
	lim limits
}

func (s *validatingStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return toStatus(s.lim.validate(m))
}

// validate checks one request message; messages it does not know pass.
func (l limits) validate(req any) error {
	switch r := req.(type) {
	case *cacheev1.GetRequest:
		return l.key("key", r.GetKey())
	case *cacheev1.SetRequest:
		return l.item("", r.GetKey(), r.GetValue(), r.GetTtl(), r.GetCondition())
	case *cacheev1.DeleteRequest:
		return l.key("key", r.GetKey())
	case *cacheev1.BatchGetRequest:
		keys := r.GetKeys()
		if len(keys) > MaxBatch {
			return &fieldError{field: "keys", err: errBatchTooLarge, size: int64(len(keys)), limit: MaxBatch}
		}
		for i, k := range keys {
			if err := l.key(fmt.Sprintf("keys[%d]", i), k); err != nil {
				return err
			}
		}
	case *cacheev1.BatchSetRequest:
		items := r.GetItems()
		if len(items) > MaxBatch {
			return &fieldError{field: "items", err: errBatchTooLarge, size: int64(len(items)), limit: MaxBatch}
		}
		for i, it := range items {
			if err := l.item(fmt.Sprintf("items[%d].", i), it.GetKey(), it.GetValue(), it.GetTtl(), it.GetCondition()); err != nil {
				return err
			}
		}
	case *cacheev1.PrewarmRequest:
		if r.GetKeys() < 0 {
			return &fieldError{field: "keys", err: errInvalidField}
		}
		if _, err := duration(r.GetTimeout()); err != nil {
			return &fieldError{field: "timeout", err: errInvalidField}
		}
	case *cacheev1.RecordAccessRequest:
		if n := len(r.GetRefs()); n > MaxRefs {
			return &fieldError{field: "refs", err: errBatchTooLarge, size: int64(n), limit: MaxRefs}
		}
	}
	return nil
}

func (l limits) key(field string, k []byte) error {
	switch {
	case len(k) == 0:
		return &fieldError{field: field, err: store.ErrKeyEmpty}
	case len(k) > l.maxKey:
		return &fieldError{field: field, err: store.ErrKeyTooLarge, size: int64(len(k)), limit: int64(l.maxKey)}
	}
	return nil
}

func (l limits) item(prefix string, k, v []byte, ttl *durationpb.Duration, cond cacheev1.SetCondition) error {
	if err := l.key(prefix+"key", k); err != nil {
		return err
	}
	if len(v) > l.maxValue {
		return &fieldError{field: prefix + "value", err: store.ErrValueTooLarge, size: int64(len(v)), limit: int64(l.maxValue)}
	}
	if _, err := duration(ttl); err != nil {
		return &fieldError{field: prefix + "ttl", err: store.ErrInvalidTTL}
	}
	if _, known := cacheev1.SetCondition_name[int32(cond)]; !known {
		return &fieldError{field: prefix + "condition", err: errInvalidField}
	}
	return nil
}

// duration converts an optional, non-negative Duration; unset is zero.
func duration(d *durationpb.Duration) (time.Duration, error) {
	if d == nil {
		return 0, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, err
	}
	if d.GetSeconds() < 0 || d.GetNanos() < 0 {
		return 0, fmt.Errorf("negative duration %v", d.AsDuration())
	}
	return d.AsDuration(), nil
}
