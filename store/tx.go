package store

import "time"

// Tx is a sequence of operations that runs under the store's write lock, so no other
// write interleaves with it: the way to build read-modify-write commands (INCR,
// APPEND, GETDEL) and transactions (MULTI/EXEC) on the store. A Tx is valid only inside
// the function passed to Update or Atomic.
type Tx struct {
	s   *Store
	now int64
}

// Update runs fn under the write lock. Lock-free readers may observe the effect of each
// operation as it happens; use Atomic when they must not see a partial result.
func (s *Store) Update(fn func(tx *Tx) error) error {
	return s.write(func() error { return fn(s.newTx()) })
}

// newTx reuses the store's one Tx: only one can run at a time, under mu, and a Tx is
// valid only inside its function, so none allocates.
func (s *Store) newTx() *Tx {
	s.tx = Tx{s: s, now: s.tick()}
	return &s.tx
}

// Atomic runs fn like Update and also hides its intermediate states from lock-free
// readers: they wait (in-process) or fall back (other processes) until fn returns, so
// they see all of its writes or none. A reader waits at most as long as fn runs.
func (s *Store) Atomic(fn func(tx *Tx) error) error {
	return s.write(func() error {
		m := &s.v.m
		ver := m.load(hdrIndexVer)
		m.store(hdrIndexVer, ver+1)
		defer m.store(hdrIndexVer, ver+2)
		return fn(s.newTx())
	})
}

// DB is what a Store and a Tx both offer, so that code can run the same operations on
// either: on the store, or inside a transaction that other operations share (a
// Redis MULTI/EXEC). Update and Atomic on a Tx run fn at once, in that transaction.
type DB interface {
	Get(key, dst []byte) ([]byte, bool, error)
	Set(key, value []byte, opt SetOptions) (bool, error)
	Delete(key []byte) (bool, error)
	TTL(key []byte) (time.Duration, bool, error)
	Update(fn func(tx *Tx) error) error
	Atomic(fn func(tx *Tx) error) error
}

var (
	_ DB = (*Store)(nil)
	_ DB = (*Tx)(nil)
)

// Update runs fn in the transaction: Store.Update's meaning inside one.
func (tx *Tx) Update(fn func(tx *Tx) error) error { return fn(tx) }

// Atomic runs fn in the transaction. Lock-free readers see its writes all at once only
// if the transaction came from Store.Atomic.
func (tx *Tx) Atomic(fn func(tx *Tx) error) error { return fn(tx) }

// Get appends key's value to dst.
func (tx *Tx) Get(key, dst []byte) ([]byte, bool, error) {
	if err := tx.s.checkKey(key); err != nil {
		return dst, false, err
	}
	h := tx.s.hash(key)
	_, e, ok := tx.s.idx.find(h, key)
	if !ok || tx.s.expired(e, tx.now) {
		tx.s.rb.miss()
		return dst, false, nil
	}
	m := &tx.s.v.m
	w0 := m.load(e)
	vlen := int(w0Size(w0)*unit) - entryHeader - len(key) - w0Pad(w0)
	dst = append(dst, m.bytes(e+entryHeader+uint64(len(key)), uint64(vlen))...)
	tx.s.pol.access(e, h>>32, 1)
	tx.s.rb.countHit()
	return dst, true, nil
}

// Exists reports whether key is present, without counting a read.
func (tx *Tx) Exists(key []byte) bool {
	if tx.s.checkKey(key) != nil {
		return false
	}
	_, e, ok := tx.s.idx.find(tx.s.hash(key), key)
	return ok && !tx.s.expired(e, tx.now)
}

// Set is Store.Set inside the transaction.
func (tx *Tx) Set(key, value []byte, opt SetOptions) (bool, error) {
	if err := tx.s.checkSet(key, value, opt); err != nil {
		return false, err
	}
	return tx.s.set(tx.s.hash(key), key, value, opt, tx.now)
}

// Delete is Store.Delete inside the transaction.
func (tx *Tx) Delete(key []byte) (bool, error) {
	if err := tx.s.checkKey(key); err != nil {
		return false, err
	}
	return tx.s.delete(tx.s.hash(key), key, tx.now), nil
}

// Expire is Store.Expire inside the transaction.
func (tx *Tx) Expire(key []byte, at time.Time, cond ExpireCond) (bool, error) {
	if err := tx.s.checkKey(key); err != nil {
		return false, err
	}
	return tx.s.expire(tx.s.hash(key), key, at, cond, tx.now)
}

// TTL is Store.TTL inside the transaction.
func (tx *Tx) TTL(key []byte) (time.Duration, bool, error) {
	if err := tx.s.checkKey(key); err != nil {
		return 0, false, err
	}
	ttl, ok := tx.s.ttl(tx.s.hash(key), key, time.UnixMilli(tx.now))
	return ttl, ok, nil
}

// Now is the transaction's clock: every operation in it sees the same time.
func (tx *Tx) Now() time.Time { return time.UnixMilli(tx.now) }

// Len is Store.Len.
func (tx *Tx) Len() int { return tx.s.Len() }

// Clear removes every entry.
func (tx *Tx) Clear() { tx.s.clear() }

// Scan is Store.Scan inside the transaction (KEYS and SCAN in MULTI/EXEC).
func (tx *Tx) Scan(cursor uint64, count int, fn func(key []byte)) uint64 {
	return tx.s.scan(cursor, count, fn)
}
