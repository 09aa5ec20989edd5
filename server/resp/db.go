package resp

import (
	"time"

	"github.com/cachee/cachee/store"
)

// db is what commands read and write: the store, or inside EXEC the transaction that
// the queued commands share. Inside a transaction only Tx methods may be used: the
// store's own methods take the lock the transaction holds.
type db struct {
	st *store.Store
	tx *store.Tx
}

func (d *db) get(key, dst []byte) ([]byte, bool, error) {
	if d.tx != nil {
		return d.tx.Get(key, dst)
	}
	return d.st.Get(key, dst)
}

func (d *db) set(key, value []byte, opt store.SetOptions) (bool, error) {
	if d.tx != nil {
		return d.tx.Set(key, value, opt)
	}
	return d.st.Set(key, value, opt)
}

func (d *db) del(key []byte) (bool, error) {
	if d.tx != nil {
		return d.tx.Delete(key)
	}
	return d.st.Delete(key)
}

func (d *db) ttl(key []byte) (time.Duration, bool, error) {
	if d.tx != nil {
		return d.tx.TTL(key)
	}
	return d.st.TTL(key)
}

// update runs fn under the write lock: in the transaction if there is one.
func (d *db) update(fn func(tx *store.Tx) error) error {
	if d.tx != nil {
		return fn(d.tx)
	}
	return d.st.Update(fn)
}

// atomic runs fn so that lock-free readers see all of it or none.
func (d *db) atomic(fn func(tx *store.Tx) error) error {
	if d.tx != nil {
		return fn(d.tx)
	}
	return d.st.Atomic(fn)
}
