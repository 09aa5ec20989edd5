package store

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

func fields(kv ...string) []HashField {
	var fs []HashField
	for i := 0; i+1 < len(kv); i += 2 {
		fs = append(fs, HashField{Name: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return fs
}

func setHash(t *testing.T, s *Store, key string, hs Hash) {
	t.Helper()
	if err := s.Update(func(tx *Tx) error { return tx.SetHash([]byte(key), hs) }); err != nil {
		t.Fatal(err)
	}
}

func readHash(t *testing.T, s *Store, key string) (Hash, bool) {
	t.Helper()
	var hs Hash
	var ok bool
	err := s.Update(func(tx *Tx) error {
		var err error
		hs, ok, err = tx.Hash([]byte(key))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return hs, ok
}

// TestHashRoundTrip stores hashes under keys of every length modulo 8 (the encoding
// starts 8-aligned after the key) and reads every field back through the writer's
// transaction, the store's lock-free HGet and a Reader in another mapping.
func TestHashRoundTrip(t *testing.T) {
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
	defer r.Close()
	for klen := 1; klen <= 17; klen++ {
		key := string(bytes.Repeat([]byte("k"), klen))
		for _, n := range []int{1, 2, 3, 7, 40} {
			var fs []HashField
			for i := range n {
				fs = append(fs, HashField{Name: fmt.Appendf(nil, "f%d", i*7919%1000), Value: bytes.Repeat([]byte{byte(i)}, i%13)})
			}
			fs = append(fs, HashField{Name: []byte{}, Value: []byte("empty name")})
			setHash(t, s, key, Hash{Fields: fs, Flags: uint8(n)})
			got, ok := readHash(t, s, key)
			if !ok || got.Flags != uint8(n) || len(got.Fields) != len(fs) {
				t.Fatalf("klen %d, %d fields: read %v %d fields, flags %d", klen, n, ok, len(got.Fields), got.Flags)
			}
			for i, f := range fs {
				if !bytes.Equal(got.Fields[i].Name, f.Name) || !bytes.Equal(got.Fields[i].Value, f.Value) {
					t.Fatalf("field %d: %q=%q, want %q=%q (order kept)", i, got.Fields[i].Name, got.Fields[i].Value, f.Name, f.Value)
				}
				v, ok, err := s.HGet([]byte(key), f.Name, nil)
				if !ok || err != nil || !bytes.Equal(v, f.Value) {
					t.Fatalf("Store.HGet %q %q = %q %v %v", key, f.Name, v, ok, err)
				}
				v, ref, ok, err := r.HGet([]byte(key), f.Name, []byte("x"))
				if !ok || err != nil || string(v) != "x"+string(f.Value) || ref == 0 {
					t.Fatalf("Reader.HGet %q %q = %q %#x %v %v", key, f.Name, v, ref, ok, err)
				}
			}
			if _, _, ok, err := r.HGet([]byte(key), []byte("nope"), nil); ok || err != nil {
				t.Fatalf("absent field: %v %v", ok, err)
			}
		}
	}
	if _, _, ok, err := r.HGet([]byte("missing"), []byte("f"), nil); ok || err != nil {
		t.Fatalf("absent key: %v %v", ok, err)
	}
}

// TestHashWrongType checks that neither kind of read takes one type for the other.
func TestHashWrongType(t *testing.T) {
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
	defer r.Close()
	setHash(t, s, "h", Hash{Fields: fields("a", "1")})
	if _, err := s.Set([]byte("s"), []byte("v"), SetOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get([]byte("h"), nil); !errors.Is(err, ErrWrongType) {
		t.Errorf("Store.Get of a hash: %v", err)
	}
	if _, _, _, err := r.Get([]byte("h"), nil); !errors.Is(err, ErrWrongType) {
		t.Errorf("Reader.Get of a hash: %v", err)
	}
	if _, _, err := s.HGet([]byte("s"), []byte("a"), nil); !errors.Is(err, ErrWrongType) {
		t.Errorf("Store.HGet of a string: %v", err)
	}
	if _, _, _, err := r.HGet([]byte("s"), []byte("a"), nil); !errors.Is(err, ErrWrongType) {
		t.Errorf("Reader.HGet of a string: %v", err)
	}
	err = s.Update(func(tx *Tx) error {
		if _, _, err := tx.Get([]byte("h"), nil); !errors.Is(err, ErrWrongType) {
			t.Errorf("Tx.Get of a hash: %v", err)
		}
		if _, _, err := tx.Hash([]byte("s")); !errors.Is(err, ErrWrongType) {
			t.Errorf("Tx.Hash of a string: %v", err)
		}
		if typ, ok := tx.Type([]byte("h")); !ok || typ != TypeHash {
			t.Errorf("Type(h) = %v %v", typ, ok)
		}
		if typ, ok := tx.Type([]byte("s")); !ok || typ != TypeString {
			t.Errorf("Type(s) = %v %v", typ, ok)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A string written over a hash replaces it, as SET does.
	if _, err := s.Set([]byte("h"), []byte("now a string"), SetOptions{}); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := s.Get([]byte("h"), nil); !ok || err != nil || string(v) != "now a string" {
		t.Errorf("after Set: %q %v %v", v, ok, err)
	}
	var types []ValueType
	s.ScanTypes(0, 100, func(k []byte, typ ValueType) { types = append(types, typ) })
	if len(types) != 2 || types[0] != TypeString || types[1] != TypeString {
		t.Errorf("ScanTypes: %v", types)
	}
}

// TestHashLimit checks that a hash cannot grow past MaxValueSize, and that the error
// names the limit and its flag.
func TestHashLimit(t *testing.T) {
	s, err := Open(Config{MaxMemory: MinMemory, MaxValueSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var fs []HashField
	for i := range 100 {
		fs = append(fs, HashField{Name: fmt.Appendf(nil, "field-%d", i), Value: []byte("v")})
	}
	err = s.Update(func(tx *Tx) error { return tx.SetHash([]byte("h"), Hash{Fields: fs}) })
	if !errors.Is(err, ErrHashTooLarge) || !bytes.Contains([]byte(err.Error()), []byte("--max-value-size")) {
		t.Fatalf("SetHash over the limit: %v", err)
	}
	if s.Len() != 0 {
		t.Fatalf("%d entries after a refused write", s.Len())
	}
}

// TestHashFieldExpiry checks per-field expiry: readers stop returning a field at its
// deadline, the sweep rewrites the hash without it, and a hash whose last field expired
// is gone as a key.
func TestHashFieldExpiry(t *testing.T) {
	dir := t.TempDir()
	now := time.UnixMilli(1_700_000_000_000)
	s, err := Open(Config{Dir: dir, MaxMemory: MinMemory, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wall int64
	var calls int
	r := readerAt(t, dir, &wall, &calls)
	c := now.UnixMilli()
	fs := fields("keep", "1", "soon", "2", "later", "3")
	fs[1].ExpireAt = c + 100
	fs[2].ExpireAt = c + 5000
	setHash(t, s, "h", Hash{Fields: fs})
	wall = c + 99
	if v, _, ok, err := r.HGet([]byte("h"), []byte("soon"), nil); !ok || err != nil || string(v) != "2" {
		t.Fatalf("before its deadline: %q %v %v", v, ok, err)
	}
	wall = c + 100
	if _, _, ok, err := r.HGet([]byte("h"), []byte("soon"), nil); ok || err != nil {
		t.Fatalf("at its deadline: %v %v", ok, err)
	}
	now = now.Add(100 * time.Millisecond)
	s.maintain()
	hs, ok := readHash(t, s, "h")
	if !ok || len(hs.Fields) != 2 || string(hs.Fields[0].Name) != "keep" || string(hs.Fields[1].Name) != "later" {
		t.Fatalf("after the sweep: %v %+v", ok, hs)
	}
	raw, err := decodeHash(s.entryValue(mustFind(t, s, "h")), 1, s.seed)
	if err != nil || len(raw.Fields) != 2 {
		t.Fatalf("the sweep did not rewrite the hash: %d fields, %v", len(raw.Fields), err)
	}
	// Only fields with an expiry left, all past it: the key is gone.
	fs = fields("a", "1", "b", "2")
	fs[0].ExpireAt, fs[1].ExpireAt = c+200, c+300
	setHash(t, s, "g", Hash{Fields: fs})
	now = time.UnixMilli(c + 300)
	err = s.Update(func(tx *Tx) error {
		if tx.Exists([]byte("g")) {
			t.Error("a hash whose fields all expired exists")
		}
		if _, ok, _ := tx.TTL([]byte("g")); ok {
			t.Error("a hash whose fields all expired has a TTL")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.maintain()
	if s.Len() != 1 {
		t.Fatalf("%d entries, want only h", s.Len())
	}
}

func mustFind(t *testing.T, s *Store, key string) uint64 {
	t.Helper()
	_, e, ok := s.idx.find(s.hash([]byte(key)), []byte(key))
	if !ok {
		t.Fatalf("%s not found", key)
	}
	return e
}

// TestHashCopy copies and renames hashes between keys of different lengths (the
// encoding's alignment changes) and checks that type, fields and expiry come along.
func TestHashCopy(t *testing.T) {
	s, err := Open(Config{MaxMemory: MinMemory})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	setHash(t, s, "src", Hash{Fields: fields("a", "1", "b", "2"), Flags: 3})
	if _, err := s.Expire([]byte("src"), time.Now().Add(time.Hour), ExpireAlways); err != nil {
		t.Fatal(err)
	}
	for _, dst := range []string{"d", "dst-longer-key", "src2"} {
		err := s.Update(func(tx *Tx) error {
			ok, err := tx.Copy([]byte("src"), []byte(dst), false)
			if !ok || err != nil {
				t.Errorf("Copy to %s: %v %v", dst, ok, err)
			}
			if ok, _ := tx.Copy([]byte("src"), []byte(dst), false); ok {
				t.Errorf("Copy over an existing %s without replace", dst)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		hs, ok := readHash(t, s, dst)
		if !ok || hs.Flags != 3 || len(hs.Fields) != 2 || string(hs.Fields[1].Value) != "2" {
			t.Fatalf("copy %s: %v %+v", dst, ok, hs)
		}
		if v, ok, err := s.HGet([]byte(dst), []byte("b"), nil); !ok || err != nil || string(v) != "2" {
			t.Fatalf("HGet of the copy %s: %q %v %v", dst, v, ok, err)
		}
		if ttl, ok, _ := s.TTL([]byte(dst)); !ok || ttl < 59*time.Minute {
			t.Fatalf("copy %s has TTL %v", dst, ttl)
		}
	}
}

// TestHashRecovered reopens a segment holding hashes: they survive with their fields,
// and a hash whose encoding was damaged does not.
func TestHashRecovered(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir, MaxMemory: MinMemory})
	if err != nil {
		t.Fatal(err)
	}
	setHash(t, s, "good", Hash{Fields: fields("a", "1", "b", "2")})
	setHash(t, s, "bad", Hash{Fields: fields("a", "1", "b", "2")})
	e := mustFind(t, s, "bad")
	s.v.m.store(e+entryHeader+uint64(3+hashPrefix(3)), 7) // the field count
	s.Close()
	s, err = Open(Config{Dir: dir, MaxMemory: MinMemory})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, ok, err := s.HGet([]byte("good"), []byte("b"), nil); !ok || err != nil || string(v) != "2" {
		t.Fatalf("after reopening: %q %v %v", v, ok, err)
	}
	if s.Len() != 1 {
		t.Fatalf("%d entries recovered, want the good hash alone", s.Len())
	}
}

// FuzzHashField stores arbitrary bytes as the value of a hash entry and reads fields
// from it through the lock-free reader. The reader must never fault, panic or hang,
// and whenever the writer's own check accepts the bytes, the reader must find every
// field with the value the writer decodes, and nothing else.
func FuzzHashField(f *testing.F) {
	seedHash := func(kv ...string) []byte {
		fs := fields(kv...)
		if len(fs) > 0 {
			fs[0].ExpireAt = 1
		}
		return encodeHash(nil, 3, &Hash{Fields: fs}, 42)[hashPrefix(3):]
	}
	f.Add(seedHash("a", "1"), []byte("a"))
	f.Add(seedHash("a", "1", "bb", "22", "", "empty"), []byte("bb"))
	f.Add(seedHash("x", string(make([]byte, 100))), []byte("y"))
	f.Add([]byte{}, []byte(""))
	f.Add(make([]byte, 40), []byte("a"))
	s, err := Open(Config{MaxMemory: MinMemory})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	s.mu.Lock()
	s.seed, s.v.seed = 42, 42
	s.mu.Unlock()
	key := []byte("key")
	f.Fuzz(func(t *testing.T, body, field []byte) {
		if len(body) > 4096 {
			return
		}
		v := append(make([]byte, hashPrefix(len(key))), body...)
		s.mu.Lock()
		_, err := s.setTyped(s.hash(key), key, v, typeHash, SetOptions{}, s.nowWrite())
		s.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		hs, derr := decodeHash(v, len(key), 42)
		names := [][]byte{field}
		for _, f := range hs.Fields {
			names = append(names, f.Name)
		}
		for _, name := range names {
			got, _, res := s.v.hget(key, name, make([]byte, 0, 8))
			if uintptr(len(got)) > uintptr(len(v)) {
				t.Fatalf("value of %d bytes from a %d-byte hash", len(got), len(v))
			}
			if derr != nil {
				continue
			}
			i := slices.IndexFunc(hs.Fields, func(f HashField) bool { return bytes.Equal(f.Name, name) })
			now := time.Now().UnixMilli()
			switch {
			case i < 0:
				if res != resMiss {
					t.Fatalf("field %q not in the hash: result %d", name, res)
				}
			case hs.Fields[i].ExpireAt != 0 && hs.Fields[i].ExpireAt < now+2000 && hs.Fields[i].ExpireAt > now-2000:
				// Near the deadline either answer may be right by the time it is checked.
			case hs.Fields[i].ExpireAt != 0 && hs.Fields[i].ExpireAt < now:
				if res != resMiss {
					t.Fatalf("field %q expired: result %d", name, res)
				}
			case res != resHit || !bytes.Equal(got, hs.Fields[i].Value):
				t.Fatalf("field %q: result %d value %q, the writer decodes %q", name, res, got, hs.Fields[i].Value)
			}
		}
	})
}
