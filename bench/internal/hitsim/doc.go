// Package hitsim is the hit-rate simulator shared by bench/hitrate and bench/report:
// trace readers (ARC, LIRS, plain or compressed), a Zipf generator, and synchronous
// replays of a trace through the store's policies and through otter v2.
package hitsim
