package store

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestClockNeverBehind checks the store's clock where writes and TTLs use it: a
// transaction's clock is never behind a wall-clock reading taken before it began, and a
// TTL read right after a write never exceeds what was set, with quiet spells between
// the writes (when the header clock lags most).
func TestClockNeverBehind(t *testing.T) {
	s, err := Open(Config{MaxMemory: MinMemory})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	key := []byte("k")
	for i := range 300 {
		if i%30 == 0 {
			time.Sleep(3 * clockTick) // the background loop alone publishes the clock
		} else {
			time.Sleep(time.Duration(rng.IntN(1000)) * time.Microsecond)
		}
		before := time.Now().UnixMilli()
		ttl := time.Duration(1+rng.IntN(20000)) * time.Millisecond
		var txNow, txTTL time.Duration
		err := s.Update(func(tx *Tx) error {
			txNow = time.Duration(tx.Now().UnixMilli())
			if _, err := tx.Set(key, []byte("v"), SetOptions{TTL: ttl}); err != nil {
				return err
			}
			txTTL, _, err = tx.TTL(key)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if int64(txNow) < before {
			t.Fatalf("transaction clock %d behind the wall clock %d read before it", txNow, before)
		}
		if txTTL > ttl {
			t.Fatalf("TTL %v inside the writing transaction, set %v", txTTL, ttl)
		}
		if got, ok, err := s.TTL(key); err != nil || !ok || got > ttl {
			t.Fatalf("TTL %v %v %v right after setting %v", got, ok, err, ttl)
		}
		at := time.UnixMilli(time.Now().UnixMilli() + ttl.Milliseconds())
		if _, err := s.Expire(key, at, ExpireAlways); err != nil {
			t.Fatal(err)
		}
		if got, _, _ := s.TTL(key); got > ttl {
			t.Fatalf("TTL %v right after expiring at now + %v", got, ttl)
		}
	}
}

// TestReopenReusesAddressRange reopens a Reader, as the SDK does after each sidecar
// restart: the range a closed reader leaves reserved must be the one the next reader of
// that size maps, not a new one each time.
func TestReopenReusesAddressRange(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir, MaxMemory: MinMemory})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	base := r.v.m.base
	r.Close()
	for range 10 {
		r, err = OpenReader(dir)
		if err != nil {
			t.Fatal(err)
		}
		if r.v.m.base != base {
			t.Fatalf("reader mapped at %p, not the reserved %p", r.v.m.base, base)
		}
		r.Close()
	}
}
