package server_test

import (
	"slices"
	"testing"

	"github.com/cachee/cachee/server"
)

func TestHumanBytes(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1 KB"}, {1536, "1.5 KB"}, {32960, "32 KB"},
		{242221056, "231 MB"}, {256 << 20, "256 MB"}, {3 << 29, "1.5 GB"}, {16 << 30, "16 GB"},
	} {
		if got := server.HumanBytes(tc.n); got != tc.want {
			t.Errorf("HumanBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestReadiness(t *testing.T) {
	var r server.Readiness
	if ok, why := r.Ready(); !ok || why != nil {
		t.Fatalf("zero value: %v %v", ok, why)
	}
	r.Hold("serving", "starting")
	r.Hold("prewarm", "loading 1000 keys")
	if ok, why := r.Ready(); ok || !slices.Equal(why, []string{"prewarm: loading 1000 keys", "serving: starting"}) {
		t.Fatalf("held: %v %v", ok, why)
	}
	r.Release("serving")
	r.Release("never held")
	if ok, _ := r.Ready(); ok {
		t.Fatal("ready while prewarm holds")
	}
	r.Release("prewarm")
	if ok, _ := r.Ready(); !ok {
		t.Fatal("not ready with nothing held")
	}
}
