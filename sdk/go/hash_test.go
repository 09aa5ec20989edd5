package cachee_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"

	cachee "github.com/cachee/cachee/sdk/go"
)

// TestHGetFromShm writes hashes over RESP and reads their fields through shared
// memory: the values match, a string key is ErrWrongType, and gRPC's Get of a hash key
// fails with FAILED_PRECONDITION and reason WRONG_TYPE (ErrWrongType) rather than
// returning the hash's bytes.
func TestHGetFromShm(t *testing.T) {
	s := startSidecar(t, true)
	cx := ctx(t)
	rc := redis.NewClient(&redis.Options{Network: "unix", Addr: s.sock})
	defer rc.Close()
	c := dial(t, s)
	waitShm(t, c)
	for i := range 50 {
		key := fmt.Sprintf("session:%d", i)
		if err := rc.HSet(cx, key, "user", fmt.Sprint("u", i), "lastAccess", fmt.Sprint(1000+i), "empty", "").Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rc.Set(cx, "plain", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	c0 := c.Counters()
	for i := range 50 {
		key := fmt.Sprintf("session:%d", i)
		v, found, err := c.HGet(key, "lastAccess", nil)
		if err != nil || !found || string(v) != fmt.Sprint(1000+i) {
			t.Fatalf("HGet %s lastAccess = %q %v %v", key, v, found, err)
		}
		if _, found, err := c.HGet(key, "nope", nil); found || err != nil {
			t.Fatalf("HGet of an absent field: %v %v", found, err)
		}
	}
	if c.Counters().ShmHits-c0.ShmHits != 50 {
		t.Fatalf("shm hits %d, want 50", c.Counters().ShmHits-c0.ShmHits)
	}
	if _, _, err := c.HGet("plain", "f", nil); !errors.Is(err, cachee.ErrWrongType) {
		t.Fatalf("HGet of a string: %v", err)
	}
	_, _, err := c.Get(cx, "session:1")
	var ce *cachee.Error
	if !errors.As(err, &ce) || ce.Code != codes.FailedPrecondition || ce.Reason != "WRONG_TYPE" || !errors.Is(err, cachee.ErrWrongType) {
		t.Fatalf("gRPC Get of a hash: %v", err)
	}
	if _, err := c.BatchGet(cx, []string{"plain", "session:2"}); !errors.Is(err, cachee.ErrWrongType) {
		t.Fatalf("gRPC BatchGet of a hash: %v", err)
	}
	noShm := dial(t, s, cachee.WithoutShm())
	if _, _, err := noShm.HGet("session:1", "user", nil); !errors.Is(err, cachee.ErrNoSharedMemory) {
		t.Fatalf("HGet without shared memory: %v", err)
	}
}
