package store_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/cachee/cachee/store"
)

func TestProbe(t *testing.T) {
	dir := t.TempDir()
	if err := store.Probe(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("no file: %v", err)
	}
	path := filepath.Join(dir, store.SegmentFile)
	if err := os.WriteFile(path, make([]byte, 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := store.Probe(dir); !errors.Is(err, store.ErrFormat) {
		t.Fatalf("zeros: %v", err)
	}
	os.Remove(path)
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := store.Probe(dir); !errors.Is(err, store.ErrFormat) {
		t.Fatalf("a directory: %v", err)
	}
	os.Remove(path)

	s, err := store.Open(store.Config{Dir: dir, MaxMemory: store.MinMemory})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Probe(dir); err != nil {
		t.Fatalf("a live writer's segment: %v", err)
	}
	s.Close()
	if err := store.Probe(dir); !errors.Is(err, store.ErrStale) {
		t.Fatalf("a closed segment: %v", err)
	}
}
