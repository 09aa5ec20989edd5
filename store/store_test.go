package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cachee/cachee/store"
)

// fakeClock is a settable clock for TTL tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.UnixMilli(1_700_000_000_000)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func open(t testing.TB, cfg store.Config) *store.Store {
	t.Helper()
	s, err := store.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustSet(t testing.TB, s *store.Store, k, v string, opt store.SetOptions) {
	t.Helper()
	if ok, err := s.Set([]byte(k), []byte(v), opt); !ok || err != nil {
		t.Fatalf("set %q: stored=%v err=%v", k, ok, err)
	}
}

func get(t testing.TB, s *store.Store, k string) (string, bool) {
	t.Helper()
	v, ok, err := s.Get([]byte(k), nil)
	if err != nil {
		t.Fatalf("get %q: %v", k, err)
	}
	return string(v), ok
}

func TestSetGetDelete(t *testing.T) {
	for _, policy := range []string{store.EvictionLFU, store.EvictionLRU, store.EvictionNone} {
		t.Run(policy, func(t *testing.T) {
			s := open(t, store.Config{MaxMemory: 4 << 20, Eviction: policy})
			for i := range 1000 {
				k := fmt.Sprintf("key-%d", i)
				mustSet(t, s, k, string(bytes.Repeat([]byte{byte(i)}, i%300)), store.SetOptions{})
			}
			for i := range 1000 {
				k := fmt.Sprintf("key-%d", i)
				if v, ok := get(t, s, k); !ok || v != string(bytes.Repeat([]byte{byte(i)}, i%300)) {
					t.Fatalf("get %s: found=%v len=%d", k, ok, len(v))
				}
			}
			if s.Len() != 1000 {
				t.Fatalf("Len = %d, want 1000", s.Len())
			}
			// Overwrite with a longer, a shorter and an equal value.
			for _, v := range []string{"a much longer value than before, to move the entry", "x", "y"} {
				mustSet(t, s, "key-7", v, store.SetOptions{})
				if got, _ := get(t, s, "key-7"); got != v {
					t.Fatalf("after overwrite got %q, want %q", got, v)
				}
			}
			if ok, err := s.Delete([]byte("key-5")); !ok || err != nil {
				t.Fatalf("delete: %v %v", ok, err)
			}
			if ok, _ := s.Delete([]byte("key-5")); ok {
				t.Fatal("second delete reported a key")
			}
			if _, ok := get(t, s, "key-5"); ok {
				t.Fatal("deleted key found")
			}
			if s.Len() != 999 {
				t.Fatalf("Len = %d, want 999", s.Len())
			}
			st := s.Stats()
			if st.Sets != 1003 || st.Deletes != 1 || st.Hits < 1000 || st.Misses != 1 || st.Entries != 999 {
				t.Fatalf("stats %+v", st)
			}
			if st.BytesUsed <= 0 || st.BytesUsed > st.BytesLimit || st.BytesLimit != 4<<20 {
				t.Fatalf("bytes %+v", st)
			}
		})
	}
}

func TestEmptyValueAndBinaryKeys(t *testing.T) {
	s := open(t, store.Config{MaxMemory: 1 << 20})
	keys := [][]byte{{0}, {0, 0}, {0xff, 0, 1}, bytes.Repeat([]byte{7}, 1000)}
	for i, k := range keys {
		v := bytes.Repeat([]byte{byte(i)}, i)
		if _, err := s.Set(k, v, store.SetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i, k := range keys {
		v, ok, err := s.Get(k, nil)
		if !ok || err != nil || !bytes.Equal(v, bytes.Repeat([]byte{byte(i)}, i)) {
			t.Fatalf("key %x: %v %v %x", k, ok, err, v)
		}
	}
}

func TestGetAppendsToDst(t *testing.T) {
	s := open(t, store.Config{MaxMemory: 1 << 20})
	mustSet(t, s, "k", "value", store.SetOptions{})
	buf := append(make([]byte, 0, 64), "prefix:"...)
	out, ok, err := s.Get([]byte("k"), buf)
	if !ok || err != nil || string(out) != "prefix:value" {
		t.Fatalf("%q %v %v", out, ok, err)
	}
	if &out[0] != &buf[:1][0] {
		t.Fatal("Get reallocated a buffer that had room")
	}
}

func TestConditions(t *testing.T) {
	s := open(t, store.Config{MaxMemory: 1 << 20})
	k := []byte("k")
	if ok, _ := s.Set(k, []byte("1"), store.SetOptions{Cond: store.IfPresent}); ok {
		t.Fatal("XX stored an absent key")
	}
	if ok, _ := s.Set(k, []byte("1"), store.SetOptions{Cond: store.IfAbsent}); !ok {
		t.Fatal("NX did not store an absent key")
	}
	if ok, _ := s.Set(k, []byte("2"), store.SetOptions{Cond: store.IfAbsent}); ok {
		t.Fatal("NX stored over a present key")
	}
	if ok, _ := s.Set(k, []byte("3"), store.SetOptions{Cond: store.IfPresent}); !ok {
		t.Fatal("XX did not store over a present key")
	}
	if v, _ := get(t, s, "k"); v != "3" {
		t.Fatalf("got %q", v)
	}
}

func TestTTL(t *testing.T) {
	clk := newClock()
	s := open(t, store.Config{MaxMemory: 1 << 20, Clock: clk.Now})
	mustSet(t, s, "short", "v", store.SetOptions{TTL: 100 * time.Millisecond})
	mustSet(t, s, "long", "v", store.SetOptions{TTL: time.Hour})
	mustSet(t, s, "forever", "v", store.SetOptions{})
	mustSet(t, s, "at", "v", store.SetOptions{ExpireAt: clk.Now().Add(time.Second)})

	if ttl, ok, _ := s.TTL([]byte("short")); !ok || ttl != 100*time.Millisecond {
		t.Fatalf("ttl %v %v", ttl, ok)
	}
	if ttl, ok, _ := s.TTL([]byte("forever")); !ok || ttl != store.NoExpiry {
		t.Fatalf("ttl %v %v", ttl, ok)
	}
	if _, ok, _ := s.TTL([]byte("missing")); ok {
		t.Fatal("ttl of missing key")
	}
	clk.Advance(99 * time.Millisecond)
	if _, ok := get(t, s, "short"); !ok {
		t.Fatal("expired early")
	}
	clk.Advance(time.Millisecond)
	if _, ok := get(t, s, "short"); ok {
		t.Fatal("visible at its expiry")
	}
	if _, ok, _ := s.TTL([]byte("short")); ok {
		t.Fatal("ttl of expired key")
	}
	clk.Advance(time.Second)
	if _, ok := get(t, s, "at"); ok {
		t.Fatal("ExpireAt not honoured")
	}
	// KEEPTTL keeps the old expiry; a plain set drops it.
	mustSet(t, s, "long", "v2", store.SetOptions{KeepTTL: true})
	if ttl, _, _ := s.TTL([]byte("long")); ttl <= 0 || ttl > time.Hour {
		t.Fatalf("KeepTTL lost the ttl: %v", ttl)
	}
	mustSet(t, s, "long", "v3", store.SetOptions{})
	if ttl, _, _ := s.TTL([]byte("long")); ttl != store.NoExpiry {
		t.Fatalf("plain set kept the ttl: %v", ttl)
	}
	// An absolute expiry in the past deletes, as Redis does.
	if ok, err := s.Set([]byte("long"), []byte("x"), store.SetOptions{ExpireAt: clk.Now().Add(-time.Second)}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if _, ok := get(t, s, "long"); ok {
		t.Fatal("set with a past expiry left the key")
	}
	if _, err := s.Set([]byte("k"), nil, store.SetOptions{TTL: -time.Second}); !errors.Is(err, store.ErrInvalidTTL) {
		t.Fatalf("negative ttl: %v", err)
	}
}

func TestExpireConditions(t *testing.T) {
	clk := newClock()
	s := open(t, store.Config{MaxMemory: 1 << 20, Clock: clk.Now})
	now := clk.Now()
	in := func(d time.Duration) time.Time { return now.Add(d) }
	k := []byte("k")
	mustSet(t, s, "k", "v", store.SetOptions{})
	steps := []struct {
		name string
		at   time.Time
		cond store.ExpireCond
		want bool
		ttl  time.Duration
	}{
		{"XX without ttl", in(time.Minute), store.ExpireXX, false, store.NoExpiry},
		{"GT without ttl (infinite)", in(time.Minute), store.ExpireGT, false, store.NoExpiry},
		{"LT without ttl", in(time.Minute), store.ExpireLT, true, time.Minute},
		{"NX with ttl", in(time.Hour), store.ExpireNX, false, time.Minute},
		{"GT later", in(time.Hour), store.ExpireGT, true, time.Hour},
		{"GT earlier", in(time.Minute), store.ExpireGT, false, time.Hour},
		{"LT earlier", in(time.Minute), store.ExpireLT, true, time.Minute},
		{"XX with ttl", in(2 * time.Minute), store.ExpireXX, true, 2 * time.Minute},
		{"persist", time.Time{}, store.ExpireAlways, true, store.NoExpiry},
		{"persist again", time.Time{}, store.ExpireAlways, false, store.NoExpiry},
	}
	for _, st := range steps {
		got, err := s.Expire(k, st.at, st.cond)
		if err != nil || got != st.want {
			t.Fatalf("%s: got %v, %v; want %v", st.name, got, err, st.want)
		}
		if ttl, _, _ := s.TTL(k); ttl != st.ttl {
			t.Fatalf("%s: ttl %v, want %v", st.name, ttl, st.ttl)
		}
	}
	if ok, _ := s.Expire([]byte("missing"), in(time.Minute), store.ExpireAlways); ok {
		t.Fatal("expire of a missing key")
	}
	if ok, _ := s.Expire(k, in(-time.Second), store.ExpireAlways); !ok {
		t.Fatal("expire in the past")
	}
	if _, ok := get(t, s, "k"); ok {
		t.Fatal("expire in the past left the key")
	}
}

func TestExpiredMemoryIsReclaimed(t *testing.T) {
	s := open(t, store.Config{MaxMemory: 1 << 20})
	for i := range 1000 {
		mustSet(t, s, fmt.Sprint(i), "value", store.SetOptions{TTL: time.Millisecond})
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.Len() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := s.Len(); n != 0 {
		t.Fatalf("%d expired entries not reclaimed", n)
	}
	st := s.Stats()
	if st.Expirations != 1000 {
		t.Fatalf("expirations %d", st.Expirations)
	}
}

func TestLimits(t *testing.T) {
	s := open(t, store.Config{MaxMemory: 1 << 20, MaxKeySize: 100, MaxValueSize: 1000})
	cases := []struct {
		name     string
		key, val []byte
		want     error
	}{
		{"empty key", nil, []byte("v"), store.ErrKeyEmpty},
		{"key over max", make([]byte, 101), nil, store.ErrKeyTooLarge},
		{"key at max", make([]byte, 100), nil, nil},
		{"value over max", []byte("k"), make([]byte, 1001), store.ErrValueTooLarge},
		{"value at max", []byte("k"), make([]byte, 1000), nil},
	}
	for _, c := range cases {
		_, err := s.Set(c.key, c.val, store.SetOptions{})
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: Set err %v, want %v", c.name, err, c.want)
		}
		if c.want == store.ErrKeyEmpty || c.want == store.ErrKeyTooLarge {
			if _, _, err := s.Get(c.key, nil); !errors.Is(err, c.want) {
				t.Errorf("%s: Get err %v", c.name, err)
			}
			if _, err := s.Delete(c.key); !errors.Is(err, c.want) {
				t.Errorf("%s: Delete err %v", c.name, err)
			}
		}
	}
	// A value within MaxValueSize that can never fit in this memory.
	big := open(t, store.Config{MaxMemory: 1 << 20, MaxValueSize: 512 << 10})
	if _, err := big.Set([]byte("k"), make([]byte, 512<<10), store.SetOptions{}); !errors.Is(err, store.ErrValueTooLarge) {
		t.Fatalf("unfittable value: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []store.Config{
		{MaxMemory: 1},
		{MaxMemory: 1 << 40},
		{Eviction: "lfu"},
		{MaxKeySize: -1},
		{MaxKeySize: 1 << 21},
		{MaxMemory: 1 << 20, MaxValueSize: 1 << 20},
		{MaxEntries: -1},
	}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
		if _, err := store.Open(c); err == nil {
			t.Errorf("%+v: Open accepted it", c)
		}
	}
	if err := (store.Config{}).Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
}

func TestNoEvictionIsOutOfMemory(t *testing.T) {
	s := open(t, store.Config{MaxMemory: 1 << 20, Eviction: store.EvictionNone})
	var err error
	n := 0
	for ; n < 100000; n++ {
		if _, err = s.Set(fmt.Appendf(nil, "key-%d", n), make([]byte, 100), store.SetOptions{}); err != nil {
			break
		}
	}
	if !errors.Is(err, store.ErrOutOfMemory) {
		t.Fatalf("after %d sets: %v", n, err)
	}
	// Everything stored stays, and deleting makes room again.
	for i := range n {
		if _, ok := get(t, s, fmt.Sprintf("key-%d", i)); !ok {
			t.Fatalf("key-%d lost under noeviction", i)
		}
	}
	if s.Stats().Evictions != 0 {
		t.Fatal("noeviction evicted")
	}
	// A quarter of them: a new key may land in a full bucket, and the index then
	// needs room for a table as well as the entry.
	for i := range n / 4 {
		s.Delete(fmt.Appendf(nil, "key-%d", i))
	}
	if _, err := s.Set([]byte("again"), make([]byte, 100), store.SetOptions{}); err != nil {
		t.Fatalf("set after delete: %v", err)
	}
}

func TestEvictionStaysWithinMemory(t *testing.T) {
	for _, policy := range []string{store.EvictionLFU, store.EvictionLRU} {
		t.Run(policy, func(t *testing.T) {
			s := open(t, store.Config{MaxMemory: 2 << 20, Eviction: policy})
			sizes := []int{10, 100, 1000, 5000, 30000}
			for i := range 50000 {
				v := make([]byte, sizes[i%len(sizes)])
				if _, err := s.Set(fmt.Appendf(nil, "key-%d", i), v, store.SetOptions{}); err != nil {
					t.Fatalf("set %d: %v", i, err)
				}
			}
			st := s.Stats()
			if st.BytesUsed > st.BytesLimit {
				t.Fatalf("used %d > limit %d", st.BytesUsed, st.BytesLimit)
			}
			if st.Evictions == 0 || st.Entries == 0 {
				t.Fatalf("stats %+v", st)
			}
			if fill := float64(st.BytesUsed) / float64(st.BytesLimit); fill < 0.8 {
				t.Fatalf("only %.0f%% of memory in use after filling", fill*100)
			}
		})
	}
}

func TestClearAndHottest(t *testing.T) {
	s := open(t, store.Config{MaxMemory: 4 << 20})
	for i := range 100 {
		mustSet(t, s, fmt.Sprintf("k%d", i), "v", store.SetOptions{})
	}
	for range 20 {
		for i := range 5 {
			get(t, s, fmt.Sprintf("k%d", i))
		}
	}
	hot := s.Hottest(5)
	if len(hot) != 5 {
		t.Fatalf("Hottest(5) = %d keys", len(hot))
	}
	var names []string
	for _, k := range hot {
		names = append(names, string(k))
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"k0", "k1", "k2", "k3", "k4"}) {
		t.Fatalf("hottest %v", names)
	}
	if n := len(s.Hottest(1000)); n != 100 {
		t.Fatalf("Hottest(1000) = %d", n)
	}
	s.Clear()
	if s.Len() != 0 {
		t.Fatalf("Len after Clear = %d", s.Len())
	}
	if _, ok := get(t, s, "k1"); ok {
		t.Fatal("key after Clear")
	}
	mustSet(t, s, "after", "v", store.SetOptions{})
}

func TestScanReturnsEveryKey(t *testing.T) {
	s := open(t, store.Config{MaxMemory: 8 << 20})
	want := map[string]bool{}
	for i := range 5000 {
		k := fmt.Sprintf("key-%d", i)
		want[k] = true
		mustSet(t, s, k, "v", store.SetOptions{})
	}
	got := map[string]int{}
	cursor := uint64(0)
	calls := 0
	for {
		cursor = s.Scan(cursor, 100, func(k []byte) { got[string(k)]++ })
		calls++
		// Grow the index mid-walk: keys present throughout must still all appear.
		if calls == 3 {
			for i := range 20000 {
				mustSet(t, s, fmt.Sprintf("extra-%d", i), "v", store.SetOptions{})
			}
		}
		if cursor == 0 {
			break
		}
	}
	for k := range want {
		if got[k] == 0 {
			t.Fatalf("scan missed %s", k)
		}
	}
	n := 0
	s.Keys(func([]byte) { n++ })
	if n != s.Len() {
		t.Fatalf("Keys saw %d, Len %d", n, s.Len())
	}
}

func TestManyAndTransactions(t *testing.T) {
	s := open(t, store.Config{MaxMemory: 4 << 20, MaxValueSize: 1000})
	items := []store.Item{
		{Key: []byte("a"), Value: []byte("1")},
		{Key: []byte("b"), Value: make([]byte, 2000)},
		{Key: nil, Value: []byte("x")},
		{Key: []byte("a"), Value: []byte("2"), Options: store.SetOptions{Cond: store.IfAbsent}},
	}
	stored := make([]bool, len(items))
	errs := s.SetMany(items, stored)
	if errs == nil || errs[0] != nil || !errors.Is(errs[1], store.ErrValueTooLarge) || !errors.Is(errs[2], store.ErrKeyEmpty) || errs[3] != nil {
		t.Fatalf("errs %v", errs)
	}
	if !stored[0] || stored[3] {
		t.Fatalf("stored %v", stored)
	}
	var seen []string
	s.GetMany([][]byte{[]byte("a"), []byte("zz")}, func(i int, v []byte, ok bool, err error) {
		seen = append(seen, fmt.Sprintf("%d:%s:%v:%v", i, v, ok, err))
	})
	if !slices.Equal(seen, []string{"0:1:true:<nil>", "1::false:<nil>"}) {
		t.Fatalf("GetMany %v", seen)
	}
	// A read-modify-write in a transaction.
	for range 10 {
		err := s.Update(func(tx *store.Tx) error {
			v, _, err := tx.Get([]byte("a"), nil)
			if err != nil {
				return err
			}
			_, err = tx.Set([]byte("a"), append(v, '+'), store.SetOptions{KeepTTL: true})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if v, _ := get(t, s, "a"); v != "1++++++++++" {
		t.Fatalf("got %q", v)
	}
	err := s.Atomic(func(tx *store.Tx) error {
		tx.Set([]byte("x"), []byte("1"), store.SetOptions{})
		tx.Delete([]byte("a"))
		if !tx.Exists([]byte("x")) || tx.Exists([]byte("a")) {
			return errors.New("tx does not see its own writes")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestClosed(t *testing.T) {
	s, err := store.Open(store.Config{MaxMemory: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, s, "k", "v", store.SetOptions{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get([]byte("k"), nil); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if _, err := s.Set([]byte("k"), nil, store.SetOptions{}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Set after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestHottestRanksByFrequency: keys read three times rank ahead of keys read once,
// even when the once-read keys were read more recently. Frequencies are the count-min
// sketch's estimates: with few keys beside a sketch sized for the store, a once-read
// key whose four counters all collide with others' (which would rank it as hot) is
// rare enough not to matter; at 200 keys of each kind it happened in about one run in
// twenty.
func TestHottestRanksByFrequency(t *testing.T) {
	const hotKeys = 40
	s := open(t, store.Config{MaxMemory: 8 << 20})
	for i := range hotKeys {
		mustSet(t, s, fmt.Sprintf("often-%d", i), "v", store.SetOptions{})
		mustSet(t, s, fmt.Sprintf("once-%d", i), "v", store.SetOptions{})
	}
	for range 3 {
		for i := range hotKeys {
			get(t, s, fmt.Sprintf("often-%d", i))
		}
	}
	for i := range hotKeys {
		get(t, s, fmt.Sprintf("once-%d", i))
	}
	for _, k := range s.Hottest(hotKeys) {
		if !strings.HasPrefix(string(k), "often-") {
			t.Fatalf("Hottest(%d) includes %s ahead of the keys read three times", hotKeys, k)
		}
	}
}

// TestWithDefaultsIsWhatOpenApplies: the limits that WithDefaults promises (the CLI
// derives its buffer sizes from them before opening the store) are the ones the store
// runs with.
func TestWithDefaultsIsWhatOpenApplies(t *testing.T) {
	for _, c := range []store.Config{
		{MaxMemory: 256 << 20},
		{MaxMemory: 1 << 20},
		{MaxMemory: store.MinMemory},
		{MaxMemory: 8 << 20, MaxKeySize: 100, MaxValueSize: 5000},
		{},
	} {
		st, err := store.Open(c)
		if err != nil {
			t.Fatal(err)
		}
		got := st.Config()
		st.Close()
		want := c.WithDefaults()
		if want.MaxMemory != got.MaxMemory || want.MaxKeySize != got.MaxKeySize || want.MaxValueSize != got.MaxValueSize ||
			want.Eviction != got.Eviction {
			t.Errorf("%+v: WithDefaults %+v, the store runs with %+v", c, want, got)
		}
	}
}
