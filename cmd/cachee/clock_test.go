package main_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestTTLNeverReadsLonger writes TTLs over RESP in every way a client can (SET PX, EX
// and PXAT, GETEX PX and PXAT, PEXPIRE, EXPIRE and PEXPIREAT), each followed at once by
// PTTL or TTL in the same round trip, 10,000 times, with quiet spells in between so that
// the sidecar is idle when a write comes. A TTL read right after a write must never
// exceed what was set: the store's clock must not be behind real time (absolute
// deadlines are computed from this process's clock before the write is sent, so the
// sidecar's clock can only be later).
func TestTTLNeverReadsLonger(t *testing.T) {
	p := start(t)
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: p.sock, MaxRetries: -1})
	defer c.Close()
	cx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rng := rand.New(rand.NewPCG(21, 1))
	const writes = 10_000
	for i := range writes {
		switch {
		case i%1000 == 999:
			time.Sleep(150 * time.Millisecond) // long enough for any idle mode to begin
		default:
			time.Sleep(time.Duration(rng.IntN(300)) * time.Microsecond)
		}
		key := fmt.Sprintf("ttl:%d", i%16)
		ms := int64(1000 + rng.IntN(100_000))
		secs := ms / 1000
		if err := c.Set(cx, key, "v", 0).Err(); err != nil { // a key to expire, without a TTL
			t.Fatal(err)
		}
		before := time.Now().UnixMilli()
		var write []any
		limit := ms // the most PTTL may answer
		seconds := false
		switch kind := i % 9; kind {
		case 0:
			write = []any{"SET", key, "v", "PX", ms}
		case 1:
			write, limit, seconds = []any{"SET", key, "v", "EX", secs}, secs*1000, true
		case 2:
			write = []any{"SET", key, "v", "PXAT", before + ms}
		case 3:
			write = []any{"GETEX", key, "PX", ms}
		case 4:
			write = []any{"GETEX", key, "PXAT", before + ms}
		case 5:
			write = []any{"PEXPIRE", key, ms}
		case 6:
			write, limit, seconds = []any{"EXPIRE", key, secs}, secs*1000, true
		case 7:
			write = []any{"PEXPIREAT", key, before + ms}
		case 8:
			write, limit, seconds = []any{"GETEX", key, "EX", secs}, secs*1000, true
		}
		pipe := c.Pipeline()
		w := pipe.Do(cx, write...)
		pttl := pipe.Do(cx, "PTTL", key)
		var ttl *redis.Cmd
		if seconds {
			ttl = pipe.Do(cx, "TTL", key)
		}
		if _, err := pipe.Exec(cx); err != nil {
			t.Fatalf("%v: %v", write, err)
		}
		if w.Err() != nil {
			t.Fatalf("%v: %v", write, w.Err())
		}
		got, err := pttl.Int64()
		if err != nil {
			t.Fatal(err)
		}
		if got > limit || got == -1 {
			t.Fatalf("write %d, %v: PTTL %d right after, more than the %d ms set", i, write, got, limit)
		}
		if ttl != nil {
			if s, err := ttl.Int64(); err != nil || s > secs || s == -1 {
				t.Fatalf("write %d, %v: TTL %d (%v) right after, more than the %d s set", i, write, s, err, secs)
			}
		}
	}
}
