package soak

import (
	"fmt"
	"slices"
	"time"
)

// The model: every key belongs to one worker, which runs its operations on it one
// after another, so the worker knows what the key may hold at any moment. A write
// that was acknowledged fixes it; one that failed may or may not have happened (it
// is "in doubt") until a read shows which.
//
// The sidecar's incarnations are numbered by a generation counter that the fault
// injector makes odd just before it kills the sidecar and even again once the new
// one serves. An operation that saw the same even generation when it started and
// when it ended ran wholly inside one incarnation.

// expiryMargin is how far from its expiry time a key may be seen either way: the
// store compares expiries with a clock it advances every few milliseconds, and a
// Go SDK may read a killed sidecar's segment, whose clock has stopped, until it
// notices (by design within about half a second).
const expiryMargin = time.Second

// state is what a key holds after one operation.
type state struct {
	version uint64 // of the write or delete that made it
	present bool   // false after a delete
	// The expiry lies between these: the write's start and end plus its TTL. Zero:
	// never.
	expiresMin, expiresMax time.Time
}

func (s state) String() string {
	if !s.present {
		return fmt.Sprintf("deleted@%d", s.version)
	}
	if s.expiresMax.IsZero() {
		return fmt.Sprintf("v%d", s.version)
	}
	return fmt.Sprintf("v%d(expires %s)", s.version, s.expiresMax.Format("15:04:05.000"))
}

// mayBePresent and mayBeAbsent say what a read over [from, to] may see of s.
func (s state) mayBePresent(from time.Time) bool {
	return s.present && (s.expiresMax.IsZero() || from.Before(s.expiresMax.Add(expiryMargin)))
}

func (s state) mayBeAbsent(to time.Time) bool {
	return !s.present || !s.expiresMin.IsZero() && to.After(s.expiresMin.Add(-expiryMargin))
}

type keyModel struct {
	acked    state
	ackedGen uint64 // generation the acknowledgement was clean in; 0 if it was not
	doubt    []state
	next     uint64 // the next version to write
}

// write records a write or delete made over [gen0, gen1] (the generations at start
// and end), acknowledged or not.
func (k *keyModel) write(s state, acked bool, gen0, gen1 uint64) {
	if !acked {
		k.doubt = append(k.doubt, s)
		return
	}
	k.acked, k.doubt = s, nil
	k.ackedGen = 0
	if gen0 == gen1 && gen0%2 == 0 {
		k.ackedGen = gen0
	}
}

// violation kinds.
const (
	vTorn      = "torn or wrong value"
	vStale     = "older value after a newer acknowledged write"
	vResurrect = "deleted key came back"
	vExpired   = "expired key came back"
	vLost      = "acknowledged write lost while the sidecar lived"
	vUnknown   = "value of a version never written"
)

// read checks what a read over [from, to] and [gen0, gen1] saw: found with version,
// or not found. It returns a violation kind and a description, or "" when the read
// is allowed; lostAcrossRestart reports a miss of a key that a restart lost, which is
// allowed (the cache is not durable across SIGKILL) but counted.
func (k *keyModel) read(found bool, version uint64, from, to time.Time, gen0, gen1 uint64) (kind, detail string, lostAcrossRestart bool) {
	candidates := append([]state{k.acked}, k.doubt...)
	if !found {
		for i, s := range candidates {
			if s.mayBeAbsent(to) {
				if i > 0 && !s.present {
					// A delete in doubt explains the miss: it happened, so what was
					// acknowledged before it can no longer show.
					k.acked, k.ackedGen, k.doubt = s, 0, slices.Clone(k.doubt[i:])
				}
				return "", "", false
			}
		}
		// The key must be there: unless a restart came between its acknowledgement
		// and this read, that is a lost write.
		if k.ackedGen != 0 && gen0 == k.ackedGen && gen1 == k.ackedGen {
			return vLost, fmt.Sprintf("miss, want %v (acknowledged in generation %d, read in %d)", k.acked, k.ackedGen, gen0), false
		}
		k.acked, k.ackedGen, k.doubt = state{version: k.acked.version}, 0, nil
		return "", "", true
	}
	for i, s := range candidates {
		if s.version != version {
			continue
		}
		if !s.present {
			break // the version of a delete is never a value's
		}
		if !s.mayBePresent(from) {
			return vExpired, fmt.Sprintf("v%d read at %s, expired by %s", version, from.Format("15:04:05.000"), s.expiresMax.Format("15:04:05.000")), false
		}
		if i > 0 {
			// That write happened; what came before it no longer can show.
			k.acked, k.ackedGen, k.doubt = s, 0, slices.Clone(k.doubt[i:])
		}
		return "", "", false
	}
	switch {
	case version >= k.next:
		return vUnknown, fmt.Sprintf("v%d, but only versions below %d were written", version, k.next), false
	case !k.acked.present && version < k.acked.version:
		return vResurrect, fmt.Sprintf("v%d after %v", version, k.acked), false
	}
	return vStale, fmt.Sprintf("v%d, want one of %v", version, candidates), false
}
