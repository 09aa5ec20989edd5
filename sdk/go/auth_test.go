package cachee_test

import (
	"context"
	"errors"
	"testing"
	"time"

	cachee "github.com/cachee/cachee/sdk/go"
)

const testToken = "sdk-test-token-0123456789abcdef"

func TestAuthToken(t *testing.T) {
	s := startSidecar(t, true, "--auth-token="+testToken)
	cx := ctx(t)

	c := dial(t, s, cachee.WithAuthToken(testToken))
	if _, err := c.Set(cx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	// With the token, the Client also verifies the segment over gRPC and reads it.
	waitShm(t, c)
	if v, ok, err := c.Get(cx, "k"); err != nil || !ok || string(v) != "v" {
		t.Fatalf("%q %v %v", v, ok, err)
	}

	for name, opts := range map[string][]cachee.Option{
		"no token":    nil,
		"wrong token": {cachee.WithAuthToken(testToken + "x")},
	} {
		t.Run(name, func(t *testing.T) {
			c := dial(t, s, append(opts, cachee.WithoutShm())...)
			_, err := c.Set(cx, "k2", []byte("v"))
			if !errors.Is(err, cachee.ErrUnauthenticated) || errors.Is(err, cachee.ErrUnavailable) {
				t.Fatalf("%v: want ErrUnauthenticated only", err)
			}
			// GetOrLoad goes on without the sidecar.
			v, err := c.GetOrLoad(cx, "k3", time.Minute, func(context.Context) ([]byte, error) { return []byte("loaded"), nil })
			if err != nil || string(v) != "loaded" || c.Counters().SidecarErrors == 0 {
				t.Fatalf("GetOrLoad: %q %v, %d sidecar errors", v, err, c.Counters().SidecarErrors)
			}
		})
	}
}

// TestAuthTokenFromEnv: without WithAuthToken, the Client sends $CACHEE_AUTH_TOKEN,
// the variable the sidecar reads its own token from.
func TestAuthTokenFromEnv(t *testing.T) {
	s := startSidecar(t, true, "--auth-token="+testToken)
	cx := ctx(t)
	t.Setenv("CACHEE_AUTH_TOKEN", testToken)
	c := dial(t, s, cachee.WithoutShm())
	if _, err := c.Set(cx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	// An explicit token wins over the environment's.
	c = dial(t, s, cachee.WithoutShm(), cachee.WithAuthToken(testToken+"x"))
	if _, err := c.Set(cx, "k", []byte("v")); !errors.Is(err, cachee.ErrUnauthenticated) {
		t.Fatalf("%v: want ErrUnauthenticated", err)
	}
}
