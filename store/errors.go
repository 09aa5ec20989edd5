package store

import "errors"

// Errors returned by the store. Callers match them with errors.Is; the server maps each
// to a status code in one place.
var (
	ErrKeyEmpty      = errors.New("store: key is empty")
	ErrKeyTooLarge   = errors.New("store: key too large")
	ErrValueTooLarge = errors.New("store: value too large")
	ErrInvalidTTL    = errors.New("store: invalid ttl")
	// ErrOutOfMemory is returned under noeviction when a write does not fit.
	ErrOutOfMemory = errors.New("store: out of memory")
	ErrClosed      = errors.New("store: closed")
	// ErrWrongType is returned by a string read of a key that holds another type of
	// value. A Reader returns it for any value it cannot read as a string: ask the
	// writer, which answers with that type's rules.
	ErrWrongType = errors.New("store: key holds another type of value")

	// ErrRetry is returned by a lock-free read that kept seeing the writer change what
	// it read, and gave up after a bounded number of attempts.
	ErrRetry = errors.New("store: read retries exhausted")
	// ErrCorrupt is returned when a segment's bytes contradict its format.
	ErrCorrupt = errors.New("store: segment corrupt")
	// ErrFormat is returned when a segment has another magic or format version.
	ErrFormat = errors.New("store: unknown segment format")
	// ErrStale is returned by a Reader whose segment's writer has gone or replaced it.
	ErrStale = errors.New("store: segment stale")

	// ErrSegmentInUse is returned when another writer holds the segment.
	ErrSegmentInUse = errors.New("store: segment in use by another writer")
	// ErrSegmentUnsafe is returned when the segment file exists but is not ours to
	// trust: another owner, writable by others, or not a regular file.
	ErrSegmentUnsafe = errors.New("store: segment file is not safe to use")
)

// ErrHashTooLarge is returned by a write that would make a hash's encoding larger than
// the largest value the store takes (Config.MaxValueSize, --max-value-size).
var ErrHashTooLarge = errors.New("store: hash too large")
