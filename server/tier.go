package server

import (
	"context"

	"github.com/cachee/cachee/store"
)

// storeTier is the tier.Tier of a server without L2: the store, and nothing behind it.
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
