// Package store is cachee's cache: a memory-bounded map of byte-string keys to
// byte-string values with TTLs and eviction, kept entirely in one segment of MaxMemory
// bytes so that other processes can map it read-only and read keys with no syscall.
//
// Inside the segment (docs/segment-format.md has the byte layout):
//
//   - an index: extendible hashing over cache-line buckets, each guarded by a sequence
//     word (a seqlock), so readers never lock and never block the writer;
//   - an arena of blocks managed by a two-level segregated-fit allocator: entries, index
//     tables and the frequency sketch all live there, so MaxMemory bounds them all and
//     the Go heap holds nothing per entry;
//   - eviction state in each entry's header: cachee-lfu (W-TinyLFU whose window share
//     adapts by simulating several on a sample of the keys), lru, or noeviction.
//
// One process writes (Store); reads go through the same lock-free path in the writer's
// process (Store.Get) and in others (Reader). Reads reach the eviction policy through a
// lossy buffer (in-process) or Store.RecordAccess (other processes).
//
// A Store opened on a directory keeps its segment there across restarts: a writer that
// restarts after a crash keeps every entry that checks out and drops the rest.
package store
