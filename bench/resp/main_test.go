package main

import "testing"

func TestWarmupRequests(t *testing.T) {
	// -r 0 (one key) must not make the warm-up run redis-benchmark -n 0, which never ends.
	if n := warmupRequests(0, 100000); n != 100000 {
		t.Errorf("warmupRequests(0, 100000) = %d", n)
	}
	if n := warmupRequests(0, 0); n < 1 {
		t.Errorf("warmupRequests(0, 0) = %d", n)
	}
	if n := warmupRequests(100000, 100000); n != 400000 {
		t.Errorf("warmupRequests(100000, 100000) = %d, want 4 × the keyspace", n)
	}
}

func TestSelfCPU(t *testing.T) {
	x := 1
	for i := range 10_000_000 {
		x = x*31 + i
	}
	if c, err := selfCPU(); err != nil || c <= 0 {
		t.Errorf("selfCPU = %v, %v (x %d)", c, err, x)
	}
}
