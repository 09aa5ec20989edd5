package store

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type modelEntry struct {
	value []byte
	exp   int64 // unix ms, 0 none
}

// TestModel runs random operation sequences against the store and against a map with
// the same semantics, on a fake clock, and checks every answer and every invariant. With
// room for everything the two must agree exactly; under memory pressure the store may
// have evicted a key the model holds, and nothing else.
func TestModel(t *testing.T) {
	ops := 20000
	if testing.Short() {
		ops = 4000
	}
	for _, policy := range []string{EvictionLFU, EvictionLRU, EvictionNone} {
		for _, mem := range []int64{512 << 10, 16 << 20} {
			for seed := range uint64(3) {
				name := fmt.Sprintf("%s/%dKiB/seed%d", policy, mem>>10, seed)
				t.Run(name, func(t *testing.T) {
					runModel(t, policy, mem, seed, ops)
				})
			}
		}
	}
}

func runModel(t *testing.T, policy string, memory int64, seed uint64, ops int) {
	clk := &testClock{t: time.UnixMilli(1_700_000_000_000)}
	s, err := Open(Config{MaxMemory: memory, Eviction: policy, Clock: clk.now, MaxValueSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(seed, 99))
	model := map[string]*modelEntry{}
	roomy := memory >= 16<<20
	key := func() []byte { return fmt.Appendf(nil, "key-%d", rng.IntN(3000)) }
	value := func() []byte {
		n := rng.IntN(300)
		if rng.IntN(50) == 0 {
			n = rng.IntN(40000)
		}
		v := make([]byte, n)
		for i := range v {
			v[i] = byte(rng.Uint32())
		}
		return v
	}
	now := func() int64 { return clk.now().UnixMilli() }
	live := func(k string) *modelEntry {
		e := model[k]
		if e != nil && e.exp != 0 && e.exp <= now() {
			delete(model, k)
			return nil
		}
		return e
	}
	// evicted reconciles the model with a store that lost k: only legal when the
	// store may evict.
	evicted := func(k string, why string) {
		t.Helper()
		if roomy || policy == EvictionNone {
			t.Fatalf("%s: store lost %q without memory pressure", why, k)
		}
		delete(model, k)
	}
	for i := range ops {
		k := key()
		ks := string(k)
		switch op := rng.IntN(100); {
		case op < 35: // get
			v, ok, err := s.Get(k, nil)
			if err != nil {
				t.Fatalf("op %d get: %v", i, err)
			}
			e := live(ks)
			switch {
			case ok && e == nil:
				t.Fatalf("op %d: get %q found %d bytes the model does not have", i, ks, len(v))
			case ok && !bytes.Equal(v, e.value):
				t.Fatalf("op %d: get %q returned a wrong value", i, ks)
			case !ok && e != nil:
				evicted(ks, "get")
			}
		case op < 70: // set
			opt := SetOptions{}
			switch rng.IntN(6) {
			case 0:
				opt.Cond = IfAbsent
			case 1:
				opt.Cond = IfPresent
			}
			switch rng.IntN(5) {
			case 0:
				opt.TTL = time.Duration(1+rng.IntN(500)) * time.Millisecond
			case 1:
				opt.KeepTTL = true
			case 2:
				opt.ExpireAt = clk.now().Add(time.Duration(rng.IntN(600)-100) * time.Millisecond)
			}
			v := value()
			ok, err := s.Set(k, v, opt)
			if err != nil {
				if policy == EvictionNone && !roomy {
					continue // out of memory is the policy's answer
				}
				t.Fatalf("op %d set: %v", i, err)
			}
			e := live(ks)
			want := !(opt.Cond == IfAbsent && e != nil) && !(opt.Cond == IfPresent && e == nil)
			if ok != want {
				if (opt.Cond == IfAbsent && ok) || (opt.Cond == IfPresent && !ok) {
					evicted(ks, "conditional set")
					e = nil
					want = ok
				} else {
					t.Fatalf("op %d: set %q cond %d stored=%v, model says %v", i, ks, opt.Cond, ok, want)
				}
			}
			if !want {
				continue
			}
			var exp int64
			switch {
			case !opt.ExpireAt.IsZero():
				exp = opt.ExpireAt.UnixMilli()
			case opt.KeepTTL && e != nil:
				exp = e.exp
			case opt.TTL > 0:
				exp = now() + opt.TTL.Milliseconds()
			}
			if exp != 0 && exp <= now() {
				delete(model, ks)
			} else {
				model[ks] = &modelEntry{value: v, exp: exp}
			}
		case op < 80: // delete
			ok, err := s.Delete(k)
			if err != nil {
				t.Fatal(err)
			}
			if e := live(ks); (e != nil) != ok {
				if ok {
					t.Fatalf("op %d: delete %q found a key the model lacks", i, ks)
				}
				evicted(ks, "delete")
			}
			delete(model, ks)
		case op < 88: // expire
			cond := ExpireCond(rng.IntN(5))
			var at time.Time
			if rng.IntN(4) > 0 {
				at = clk.now().Add(time.Duration(rng.IntN(600)-50) * time.Millisecond)
			}
			ok, err := s.Expire(k, at, cond)
			if err != nil {
				t.Fatal(err)
			}
			e := live(ks)
			if e == nil {
				if ok {
					t.Fatalf("op %d: expire of absent %q succeeded", i, ks)
				}
				continue
			}
			newExp := int64(0)
			if !at.IsZero() {
				newExp = at.UnixMilli()
			}
			inf := func(x int64) int64 {
				if x == 0 {
					return 1 << 62
				}
				return x
			}
			want := true
			switch cond {
			case ExpireNX:
				want = e.exp == 0
			case ExpireXX:
				want = e.exp != 0
			case ExpireGT:
				want = inf(newExp) > inf(e.exp)
			case ExpireLT:
				want = inf(newExp) < inf(e.exp)
			}
			if want && newExp == 0 && e.exp == 0 {
				want = false // persist of a persistent key changes nothing
			}
			if ok != want {
				if !ok {
					if _, found, _ := s.Get(k, nil); !found {
						evicted(ks, "expire")
						continue
					}
				}
				t.Fatalf("op %d: expire %q cond %d at %v: got %v want %v (exp %d)", i, ks, cond, at, ok, want, e.exp)
			}
			if want {
				if newExp != 0 && newExp <= now() {
					delete(model, ks)
				} else {
					e.exp = newExp
				}
			}
		case op < 93: // ttl
			ttl, ok, err := s.TTL(k)
			if err != nil {
				t.Fatal(err)
			}
			e := live(ks)
			switch {
			case ok && e == nil:
				t.Fatalf("op %d: ttl of %q the model lacks", i, ks)
			case !ok && e != nil:
				evicted(ks, "ttl")
			case ok && e.exp == 0 && ttl != NoExpiry:
				t.Fatalf("op %d: ttl %v for a persistent key", i, ttl)
			case ok && e.exp != 0 && ttl != time.Duration(e.exp-now())*time.Millisecond:
				t.Fatalf("op %d: ttl %v, model %dms", i, ttl, e.exp-now())
			}
		default:
			clk.advance(time.Duration(rng.IntN(40)) * time.Millisecond)
		}
		if i%97 == 0 {
			s.maintain()
		}
		if i%500 == 0 || i == ops-1 {
			if err := s.checkInvariants(); err != nil {
				t.Fatalf("after op %d: %v", i, err)
			}
		}
	}
	if roomy && s.Stats().Evictions != 0 {
		t.Fatalf("evicted %d with room to spare", s.Stats().Evictions)
	}
	// Finally, every key the model holds must be there with its value.
	for k, e := range model {
		if live(k) == nil {
			continue
		}
		v, ok, _ := s.Get([]byte(k), nil)
		if !ok {
			evicted(k, "final")
			continue
		}
		if !bytes.Equal(v, e.value) {
			t.Fatalf("final: %q differs", k)
		}
	}
}
