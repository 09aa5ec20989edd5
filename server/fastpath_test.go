package server_test

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
	"github.com/cachee/cachee/server"
	"github.com/cachee/cachee/store"
)

// outcome is what a call came back with: the answer's bytes, or its status as sent.
type outcome struct {
	reply  []byte
	status []byte // a marshaled google.rpc.Status
}

func (o outcome) String() string {
	if o.status != nil {
		var st = status.New(0, "")
		p := st.Proto()
		proto.Unmarshal(o.status, p)
		return fmt.Sprintf("status %v", p)
	}
	return fmt.Sprintf("reply %x", o.reply)
}

type fastCase struct {
	name   string
	method string
	req    []byte
	token  string // authorization metadata, if any
	// same says that the answer depends on the server's state beyond the store's
	// (Stats: uptime, latencies), so only whether it succeeded is compared.
	onlyStatus bool
}

func marshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// TestFastPathAnswersAsGRPCGo runs the same calls against a server with the fast path
// and one without, each on a store of its own, and wants the same bytes back: answers,
// and errors with their codes, messages and details. The fast server must have
// answered the CacheService calls itself and relayed the others.
func TestFastPathAnswersAsGRPCGo(t *testing.T) {
	const token = "the-token-of-this-test"
	scfg := store.Config{MaxMemory: 4 << 20, MaxKeySize: 64, MaxValueSize: 1 << 10}
	maxRecv := 64 + 1<<10 + 4<<10
	keys := make([][]byte, server.MaxBatch+1)
	for i := range keys {
		keys[i] = []byte("k" + strconv.Itoa(i))
	}
	bearer := "Bearer " + token
	cases := []fastCase{
		{name: "set", method: "Set", req: marshal(&cacheev1.SetRequest{Key: []byte("a"), Value: []byte("alpha")}), token: bearer},
		{name: "get hit", method: "Get", req: marshal(&cacheev1.GetRequest{Key: []byte("a")}), token: bearer},
		{name: "get miss", method: "Get", req: marshal(&cacheev1.GetRequest{Key: []byte("zz")}), token: bearer},
		{name: "set with ttl", method: "Set", req: marshal(&cacheev1.SetRequest{Key: []byte("t"), Value: []byte("x"), Ttl: durationpb.New(3600e9)}), token: bearer},
		{name: "set if absent, present", method: "Set", req: marshal(&cacheev1.SetRequest{Key: []byte("a"), Value: []byte("b"), Condition: cacheev1.SetCondition_SET_CONDITION_IF_ABSENT}), token: bearer},
		{name: "negative ttl", method: "Set", req: marshal(&cacheev1.SetRequest{Key: []byte("t"), Value: []byte("x"), Ttl: durationpb.New(-1e9)}), token: bearer},
		{name: "unknown condition", method: "Set", req: marshal(&cacheev1.SetRequest{Key: []byte("t"), Value: []byte("x"), Condition: 99}), token: bearer},
		{name: "empty key", method: "Get", req: marshal(&cacheev1.GetRequest{}), token: bearer},
		{name: "key too large", method: "Get", req: marshal(&cacheev1.GetRequest{Key: bytes.Repeat([]byte{'k'}, 65)}), token: bearer},
		{name: "value too large", method: "Set", req: marshal(&cacheev1.SetRequest{Key: []byte("v"), Value: make([]byte, 2<<10)}), token: bearer},
		{name: "message too large", method: "Set", req: marshal(&cacheev1.SetRequest{Key: []byte("v"), Value: make([]byte, maxRecv)}), token: bearer},
		{name: "batch too large", method: "BatchGet", req: marshal(&cacheev1.BatchGetRequest{Keys: keys}), token: bearer},
		{name: "batch set", method: "BatchSet", req: marshal(&cacheev1.BatchSetRequest{Items: []*cacheev1.BatchSetItem{{Key: []byte("b1"), Value: []byte("1")}, {Key: []byte("b2"), Value: []byte("2")}}}), token: bearer},
		{name: "batch get", method: "BatchGet", req: marshal(&cacheev1.BatchGetRequest{Keys: [][]byte{[]byte("b1"), []byte("nope"), []byte("b2")}}), token: bearer},
		{name: "delete present", method: "Delete", req: marshal(&cacheev1.DeleteRequest{Key: []byte("a")}), token: bearer},
		{name: "delete absent", method: "Delete", req: marshal(&cacheev1.DeleteRequest{Key: []byte("a")}), token: bearer},
		{name: "record access", method: "RecordAccess", req: marshal(&cacheev1.RecordAccessRequest{UnreportedHits: 3}), token: bearer},
		{name: "stats", method: "Stats", req: nil, token: bearer, onlyStatus: true},
		{name: "malformed request", method: "Get", req: []byte{0xff, 0xff, 0xff}, token: bearer},
		{name: "no token", method: "Get", req: marshal(&cacheev1.GetRequest{Key: []byte("a")})},
		{name: "wrong token", method: "Get", req: marshal(&cacheev1.GetRequest{Key: []byte("a")}), token: "Bearer not-the-token-at-all"},
		{name: "unknown method", method: "Nope", req: nil, token: bearer},
		{name: "health", method: "/grpc.health.v1.Health/Check", req: marshal(&healthpb.HealthCheckRequest{})},
	}
	var results [2][]outcome
	var fastMetrics string
	for i, fast := range []bool{false, true} {
		l := serveLimitedAs(t, server.Config{FastPath: fast, AuthToken: token}, scfg)
		cc := grpcConn(t, "unix://"+l.addrs.Socket, grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{}), grpc.MaxCallSendMsgSize(16<<20)))
		for _, c := range cases {
			method := c.method
			if method[0] != '/' {
				method = "/cachee.v1.CacheService/" + method
			}
			ctx := bounded(t)
			if c.token != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", c.token)
			}
			var reply []byte
			err := cc.Invoke(ctx, method, &c.req, &reply)
			o := outcome{reply: reply}
			if c.onlyStatus {
				o.reply = nil
			}
			if err != nil {
				o = outcome{status: marshal(status.Convert(err).Proto())}
			}
			results[i] = append(results[i], o)
		}
		if fast {
			fastMetrics = metrics(t, l.addrs.Metrics)
		}
	}
	for j, c := range cases {
		grpcGo, fast := results[0][j], results[1][j]
		if !bytes.Equal(grpcGo.reply, fast.reply) || !sameStatus(grpcGo.status, fast.status) {
			t.Errorf("%s: grpc-go %v, fast path %v", c.name, grpcGo, fast)
		}
	}
	for _, want := range []string{
		`cachee_grpc_fast_calls_total [1-9]`,
		`cachee_grpc_relayed_streams_total [1-9]`,
		`grpc_server_handled_total{grpc_code="OK",grpc_method="Get",grpc_service="cachee.v1.CacheService",grpc_type="unary"} 2`,
		`grpc_server_handled_total{grpc_code="InvalidArgument",grpc_method="Set",grpc_service="cachee.v1.CacheService",grpc_type="unary"} 3`,
	} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want[:strings.LastIndexByte(want, ' ')]) + ` ` + want[strings.LastIndexByte(want, ' ')+1:]).MatchString(fastMetrics) {
			t.Errorf("/metrics of the fast server lacks %s", want)
		}
	}
}

// sameStatus compares two marshaled statuses as messages, with their details
// unpacked: the order of map entries (ErrorInfo's metadata) in bytes is up to chance.
func sameStatus(a, b []byte) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	pa, pb := status.New(0, "").Proto(), status.New(0, "").Proto()
	if proto.Unmarshal(a, pa) != nil || proto.Unmarshal(b, pb) != nil || pa.Code != pb.Code || pa.Message != pb.Message {
		return false
	}
	da, db := status.FromProto(pa).Details(), status.FromProto(pb).Details()
	if len(da) != len(db) {
		return false
	}
	for i := range da {
		ma, ok1 := da[i].(proto.Message)
		mb, ok2 := db[i].(proto.Message)
		if !ok1 || !ok2 || !proto.Equal(ma, mb) {
			return false
		}
	}
	return true
}
