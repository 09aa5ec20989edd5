package soak

import (
	"testing"
	"time"
)

// TestCheckValue: the checks the soak relies on catch what they are for.
func TestCheckValue(t *testing.T) {
	v := makeValue("k", 7, 1000)
	if ver, err := checkValue("k", v); err != nil || ver != 7 {
		t.Fatalf("%d %v", ver, err)
	}
	if _, err := checkValue("other", v); err == nil {
		t.Error("another key's value passed")
	}
	if _, err := checkValue("k", v[:999]); err == nil {
		t.Error("a short value passed")
	}
	for _, i := range []int{0, 5, 13, 20, 500, 999} {
		b := append([]byte(nil), v...)
		b[i] ^= 1
		if _, err := checkValue("k", b); err == nil {
			t.Errorf("a flipped bit at %d passed", i)
		}
	}
	// Half of one version, half of another.
	w := makeValue("k", 8, 1000)
	torn := append(append([]byte(nil), v[:500]...), w[500:]...)
	if _, err := checkValue("k", torn); err == nil {
		t.Error("a torn value passed")
	}
}

// TestModel: the model tells allowed reads from lost, stale, resurrected and expired
// ones.
func TestModel(t *testing.T) {
	t0 := time.Now()
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	type step struct {
		write   *state // else a read
		acked   bool
		found   bool
		version uint64
		at      time.Duration
		gen     uint64
		want    string // violation kind, "" for allowed
		lost    bool
	}
	w := func(s state, acked bool, gen uint64) step { return step{write: &s, acked: acked, gen: gen} }
	rd := func(found bool, v uint64, at time.Duration, gen uint64, want string) step {
		return step{found: found, version: v, at: at, gen: gen, want: want}
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"read your write", []step{w(state{version: 1, present: true}, true, 2), rd(true, 1, 0, 2, "")}},
		{"lost in the same incarnation", []step{w(state{version: 1, present: true}, true, 2), rd(false, 0, 0, 2, vLost)}},
		{"lost across a restart is allowed", []step{w(state{version: 1, present: true}, true, 2), {found: false, gen: 4, lost: true}}},
		{"older value", []step{w(state{version: 1, present: true}, true, 2), w(state{version: 2, present: true}, true, 2), rd(true, 1, 0, 2, vStale)}},
		{"older value across a restart", []step{w(state{version: 1, present: true}, true, 2), w(state{version: 2, present: true}, true, 2), rd(true, 1, 0, 4, vStale)}},
		{"deleted key back", []step{w(state{version: 1, present: true}, true, 2), w(state{version: 2}, true, 2), rd(true, 1, 0, 4, vResurrect)}},
		{"deleted key stays", []step{w(state{version: 1, present: true}, true, 2), w(state{version: 2}, true, 2), rd(false, 0, 0, 2, "")}},
		{"never written", []step{w(state{version: 1, present: true}, true, 2), rd(true, 5, 0, 2, vUnknown)}},
		{"in doubt either way", []step{w(state{version: 1, present: true}, true, 2), w(state{version: 2, present: true}, false, 2),
			rd(true, 1, 0, 2, ""), rd(true, 2, 0, 2, ""), rd(true, 1, 0, 2, vStale)}},
		{"doubtful delete", []step{w(state{version: 1, present: true}, true, 2), w(state{version: 2}, false, 2), rd(false, 0, 0, 2, "")}},
		// The miss shows the delete happened: v1 coming back after it is a resurrection.
		{"doubtful delete, then the old value", []step{w(state{version: 1, present: true}, true, 2), w(state{version: 2}, false, 2),
			rd(false, 0, 0, 2, ""), rd(true, 1, 0, 2, vResurrect)}},
		{"expired", []step{w(state{version: 1, present: true, expiresMin: at(time.Second), expiresMax: at(time.Second)}, true, 2),
			rd(true, 1, 500*time.Millisecond, 2, ""), rd(false, 0, 500*time.Millisecond, 2, ""),
			rd(true, 1, 1500*time.Millisecond, 2, ""), rd(true, 1, 2500*time.Millisecond, 2, vExpired)}},
		{"not yet expired", []step{w(state{version: 1, present: true, expiresMin: at(5 * time.Second), expiresMax: at(5 * time.Second)}, true, 2),
			rd(false, 0, time.Second, 2, vLost)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := keyModel{next: 1}
			for i, s := range tc.steps {
				if s.write != nil {
					m.next = max(m.next, s.write.version+1) // as the worker numbers them
					m.write(*s.write, s.acked, s.gen, s.gen)
					continue
				}
				kind, detail, lost := m.read(s.found, s.version, at(s.at), at(s.at), s.gen, s.gen)
				if kind != s.want || lost != s.lost {
					t.Fatalf("step %d: %q %s (lost %v), want %q (lost %v)", i, kind, detail, lost, s.want, s.lost)
				}
			}
		})
	}
}
