package h2fast_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/cachee/cachee/server/h2fast"
)

// TestFastAndRelayed: Check is answered by the Handler, Watch (a server stream) by the
// backend, on one connection, and both keep working side by side.
func TestFastAndRelayed(t *testing.T) {
	h, cc := newHarness(t, harnessOpts{})
	ctx := ctxT(t)
	hc := healthpb.NewHealthClient(cc)
	for range 3 {
		r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Check: %v %v", r, err)
		}
	}
	if got := h.h.served.Load(); got != 3 {
		t.Fatalf("the Handler served %d Checks, want 3", got)
	}
	w, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: "svc"})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := w.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVICE_UNKNOWN {
		t.Fatalf("Watch: %v %v", r, err)
	}
	h.health.SetServingStatus("svc", healthpb.HealthCheckResponse_SERVING)
	if r, err := w.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Watch after a change: %v %v", r, err)
	}
	if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("Check beside an open Watch: %v", err)
	}
}

// TestErrorAnswer: an error's code, message (with characters that need encoding) and
// details reach the client as grpc-go's own server would send them.
func TestErrorAnswer(t *testing.T) {
	h, cc := newHarness(t, harnessOpts{})
	want := status.New(codes.InvalidArgument, "key: 100% wrong — too large")
	want, _ = want.WithDetails(&errdetails.ErrorInfo{Reason: "KEY_TOO_LARGE", Domain: "cachee", Metadata: map[string]string{"limit": "10"}})
	h.h.hook = func(call *h2fast.Call, _ *healthpb.HealthCheckRequest) bool {
		call.Code, call.StatusMessage = uint32(want.Code()), want.Message()
		call.Details, _ = proto.Marshal(want.Proto())
		return true
	}
	_, err := healthpb.NewHealthClient(cc).Check(ctxT(t), &healthpb.HealthCheckRequest{})
	got := status.Convert(err)
	if !proto.Equal(got.Proto(), want.Proto()) {
		t.Fatalf("got %v, want %v", got.Proto(), want.Proto())
	}
}

// TestPendingCall: a call the Handler answers later, from another goroutine, while
// other calls on the connection are answered at once.
func TestPendingCall(t *testing.T) {
	h, cc := newHarness(t, harnessOpts{})
	parked := make(chan *h2fast.Call, 1)
	h.h.hook = func(call *h2fast.Call, req *healthpb.HealthCheckRequest) bool {
		if req.GetService() == "later" {
			parked <- call
			return false
		}
		call.Reply, _ = proto.Marshal(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING})
		return true
	}
	ctx := ctxT(t)
	hc := healthpb.NewHealthClient(cc)
	done := make(chan error, 1)
	go func() {
		r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "later"})
		if err == nil && r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			err = status.Errorf(codes.Internal, "got %v", r)
		}
		done <- err
	}()
	call := <-parked
	if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("a call beside a pending one: %v", err)
	}
	call.Reply, _ = proto.Marshal(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_NOT_SERVING})
	h.finish(call)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestPendingCanceled: a client that gives up on a pending call resets it; the Handler
// is told, and its late answer is dropped.
func TestPendingCanceled(t *testing.T) {
	h, cc := newHarness(t, harnessOpts{})
	parked := make(chan *h2fast.Call, 1)
	h.h.hook = func(call *h2fast.Call, _ *healthpb.HealthCheckRequest) bool { parked <- call; return false }
	ctx, cancel := context.WithCancel(ctxT(t))
	errc := make(chan error, 1)
	go func() {
		_, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
		errc <- err
	}()
	call := <-parked
	cancel()
	if err := <-errc; status.Code(err) != codes.Canceled {
		t.Fatalf("canceled call: %v", err)
	}
	waitFor(t, "the Handler to be told", func() bool { return h.h.canceled.Load() == 1 })
	if !call.Canceled() {
		t.Fatal("the call does not say it was canceled")
	}
	h.finish(call) // late: dropped
	h.h.hook = nil
	if _, err := healthpb.NewHealthClient(cc).Check(ctxT(t), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("after a canceled call: %v", err)
	}
}

// TestLargeMessages: a request and an answer of several windows each, which only flow
// control gets through.
func TestLargeMessages(t *testing.T) {
	h, cc := newHarness(t, harnessOpts{})
	const size = 3 << 20
	h.h.hook = func(call *h2fast.Call, req *healthpb.HealthCheckRequest) bool {
		if len(req.GetService()) != size {
			call.Code, call.StatusMessage = 3, "short request"
			return true
		}
		// A SERVING answer with a large unknown field, which the client keeps.
		b := protowire.AppendTag(nil, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(healthpb.HealthCheckResponse_SERVING))
		b = protowire.AppendTag(b, 99, protowire.BytesType)
		call.Reply = protowire.AppendBytes(b, bytes.Repeat([]byte{'v'}, size))
		return true
	}
	big := string(bytes.Repeat([]byte{'k'}, size))
	r, err := healthpb.NewHealthClient(cc).Check(ctxT(t), &healthpb.HealthCheckRequest{Service: big},
		grpc.MaxCallRecvMsgSize(8<<20), grpc.MaxCallSendMsgSize(8<<20))
	if err != nil {
		t.Fatal(err)
	}
	if r.GetStatus() != healthpb.HealthCheckResponse_SERVING || len(r.ProtoReflect().GetUnknown()) < size {
		t.Fatalf("answer: status %v, %d unknown bytes", r.GetStatus(), len(r.ProtoReflect().GetUnknown()))
	}
	h.do(func(c *h2fast.Conn) {
		if c.Held() != 0 {
			t.Errorf("the connection still holds %d bytes", c.Held())
		}
	})
}

// TestOversizedHandedOff: a request past MaxRecvMsgSize goes to the backend, whose own
// limit refuses it as grpc-go refuses any.
func TestOversizedHandedOff(t *testing.T) {
	h, cc := newHarness(t, harnessOpts{cfg: h2fast.Config{MaxRecvMsgSize: 1000}, backendOpts: []grpc.ServerOption{grpc.MaxRecvMsgSize(1000)}})
	_, err := healthpb.NewHealthClient(cc).Check(ctxT(t), &healthpb.HealthCheckRequest{Service: string(make([]byte, 5000))})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("oversized request: %v", err)
	}
	if h.h.served.Load() != 0 {
		t.Fatal("the Handler saw the oversized request")
	}
}

// TestConcurrentMixed: many goroutines on one connection, fast and relayed calls mixed.
func TestConcurrentMixed(t *testing.T) {
	_, cc := newHarness(t, harnessOpts{})
	ctx := ctxT(t)
	hc := healthpb.NewHealthClient(cc)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for g := range 50 {
		wg.Go(func() {
			for i := range 40 {
				if g%5 == 0 && i%10 == 0 {
					w, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{})
					if err == nil {
						_, err = w.Recv()
					}
					if err != nil {
						errs <- err
						return
					}
					continue
				}
				if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
