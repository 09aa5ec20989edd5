package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cachee/cachee/store"
)

func open(t testing.TB, cfg store.Config) *store.Store {
	t.Helper()
	s, err := store.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestBasic(t *testing.T) {
	s := open(t, store.Config{MaxMemory: 4 << 20})
	for i := range 1000 {
		k := fmt.Appendf(nil, "key-%d", i)
		v := bytes.Repeat([]byte{byte(i)}, i%200)
		if ok, err := s.Set(k, v, store.SetOptions{}); !ok || err != nil {
			t.Fatalf("set %s: %v %v", k, ok, err)
		}
	}
	for i := range 1000 {
		k := fmt.Appendf(nil, "key-%d", i)
		v, ok, err := s.Get(k, nil)
		if !ok || err != nil || !bytes.Equal(v, bytes.Repeat([]byte{byte(i)}, i%200)) {
			t.Fatalf("get %s: %v %v %q", k, ok, err, v)
		}
	}
	if s.Len() != 1000 {
		t.Fatalf("len %d", s.Len())
	}
	if ok, _ := s.Delete([]byte("key-5")); !ok {
		t.Fatal("delete")
	}
	if _, ok, _ := s.Get([]byte("key-5"), nil); ok {
		t.Fatal("deleted key found")
	}
	if _, _, err := s.Get(nil, nil); !errors.Is(err, store.ErrKeyEmpty) {
		t.Fatal(err)
	}
	t.Logf("%+v", s.Stats())
}

func TestEvictionFills(t *testing.T) {
	s := open(t, store.Config{MaxMemory: 1 << 20})
	for i := range 100000 {
		k := fmt.Appendf(nil, "key-%d", i)
		if _, err := s.Set(k, make([]byte, 100), store.SetOptions{TTL: time.Hour}); err != nil {
			t.Fatalf("set %d: %v", i, err)
		}
	}
	st := s.Stats()
	t.Logf("%+v", st)
	if st.BytesUsed > st.BytesLimit {
		t.Fatal("over limit")
	}
}
