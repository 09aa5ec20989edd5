package server

import (
	"context"

	"github.com/cachee/cachee/store"
)

// Tier is what the data-path RPCs read and write: the store itself, or an L2 tier in
// front of it that reads misses through from a central Redis and writes through to it
// (package server/l2). Methods have the store's meaning; the context bounds any
// network call a tier makes. An L2 that cannot be reached for a write is an error
// wrapping ErrL2Unavailable.
type Tier interface {
	Get(ctx context.Context, key, dst []byte) ([]byte, bool, error)
	GetMany(ctx context.Context, keys [][]byte, fn func(i int, value []byte, found bool, err error))
	Set(ctx context.Context, key, value []byte, opt store.SetOptions) (bool, error)
	SetMany(ctx context.Context, items []store.Item, stored []bool) []error
	Delete(ctx context.Context, key []byte) (bool, error)
}

// storeTier is the Tier of a server without L2: the store, and nothing behind it.
type storeTier struct{ st *store.Store }

func (t storeTier) Get(_ context.Context, key, dst []byte) ([]byte, bool, error) {
	return t.st.Get(key, dst)
}

func (t storeTier) GetMany(_ context.Context, keys [][]byte, fn func(int, []byte, bool, error)) {
	t.st.GetMany(keys, fn)
}

func (t storeTier) Set(_ context.Context, key, value []byte, opt store.SetOptions) (bool, error) {
	return t.st.Set(key, value, opt)
}

func (t storeTier) SetMany(_ context.Context, items []store.Item, stored []bool) []error {
	return t.st.SetMany(items, stored)
}

func (t storeTier) Delete(_ context.Context, key []byte) (bool, error) {
	return t.st.Delete(key)
}
