package server

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
)

// FuzzDecodeInPlace holds the in-place decoders of the data path to proto.Unmarshal:
// whatever the bytes, both accept them or both refuse them, and what they decode is
// the same.
func FuzzDecodeInPlace(f *testing.F) {
	add := func(m proto.Message) {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	add(&cacheev1.GetRequest{Key: []byte("k")})
	add(&cacheev1.SetRequest{Key: []byte("k"), Value: []byte("v"), Ttl: durationpb.New(1500e6), Condition: cacheev1.SetCondition_SET_CONDITION_IF_PRESENT})
	add(&cacheev1.SetRequest{Key: []byte("k"), Ttl: &durationpb.Duration{Seconds: -1, Nanos: 7}, Condition: 9})
	f.Add([]byte{0x0a, 0x01, 'a', 0x0a, 0x01, 'b'})               // a field twice: the last counts
	f.Add([]byte{0x08, 0x01, 0x0a, 0x00})                         // the key's number with another wire type, then empty
	f.Add([]byte{0x1a, 0x02, 0x08, 0x05, 0x1a, 0x02, 0x10, 0x07}) // ttl twice: merged
	f.Add([]byte{0x0b, 0x08, 0x01, 0x0c, 0x0a, 0x01, 'k'})        // a group
	f.Add([]byte{0x0c})                                           // an end of group alone
	f.Add(protowire.AppendTag(nil, 1, protowire.BytesType))       // a length missing
	f.Add(append(protowire.AppendTag(nil, 2, protowire.Fixed64Type), 1, 2, 3))
	f.Fuzz(func(t *testing.T, b []byte) {
		var get cacheev1.GetRequest
		perr := proto.Unmarshal(b, &get)
		key, err := decodeKey(b)
		if (perr == nil) != (err == nil) {
			t.Fatalf("key request %x: proto.Unmarshal %v, decodeKey %v", b, perr, err)
		}
		if err == nil && !bytes.Equal(key, get.GetKey()) {
			t.Fatalf("key request %x: key %q, proto.Unmarshal %q", b, key, get.GetKey())
		}

		var set cacheev1.SetRequest
		perr = proto.Unmarshal(b, &set)
		r, err := decodeSet(b)
		if (perr == nil) != (err == nil) {
			t.Fatalf("set request %x: proto.Unmarshal %v, decodeSet %v", b, perr, err)
		}
		if err != nil {
			return
		}
		if !bytes.Equal(r.key, set.GetKey()) || !bytes.Equal(r.value, set.GetValue()) || r.cond != set.GetCondition() ||
			r.hasTTL != (set.GetTtl() != nil) || r.ttlSeconds != set.GetTtl().GetSeconds() || r.ttlNanos != set.GetTtl().GetNanos() {
			t.Fatalf("set request %x: decoded %+v, proto.Unmarshal %v", b, r, &set)
		}
	})
}
