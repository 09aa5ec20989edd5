package cachee_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	cachee "github.com/cachee/cachee/sdk/go"
)

// TestOwnTransportMatchesGRPC makes the same calls through the Client's own transport
// (the default for Get, Set and Delete) and through grpc-go's (which a Client given
// grpc-go options uses), with values from empty to the largest the sidecar takes,
// which cross the HTTP/2 windows both ways, from many goroutines at once.
func TestOwnTransportMatchesGRPC(t *testing.T) {
	s := startSidecar(t, false)
	own := dial(t, s, cachee.WithoutShm())
	viaGRPC := dial(t, s, cachee.WithoutShm(), cachee.WithDialOptions(grpc.WithTransportCredentials(insecure.NewCredentials())))
	cx := ctx(t)
	for _, n := range []int{0, 1, 100, 16 << 10, 70 << 10, 1<<20 - 64} {
		v := bytes.Repeat([]byte{byte(n)}, n)
		for _, pair := range [][2]*cachee.Client{{own, viaGRPC}, {viaGRPC, own}} {
			key := fmt.Sprint("size:", n)
			if stored, err := pair[0].Set(cx, key, v, cachee.WithTTL(time.Hour)); err != nil || !stored {
				t.Fatalf("Set %d bytes: %v %v", n, stored, err)
			}
			got, found, err := pair[1].Get(cx, key)
			if err != nil || !found || !bytes.Equal(got, v) {
				t.Fatalf("Get %d bytes: found %v, %d bytes, %v", n, found, len(got), err)
			}
			if stored, err := pair[1].Set(cx, key, v, cachee.IfAbsent); err != nil || stored {
				t.Fatalf("Set NX of a present key: %v %v", stored, err)
			}
			if deleted, err := pair[0].Delete(cx, key); err != nil || !deleted {
				t.Fatalf("Delete: %v %v", deleted, err)
			}
			if _, found, err := pair[1].Get(cx, key); err != nil || found {
				t.Fatalf("Get after Delete: %v %v", found, err)
			}
		}
	}
	var wg sync.WaitGroup
	for g := range 50 {
		wg.Go(func() {
			buf := make([]byte, 0, 64)
			for i := range 40 {
				key := fmt.Sprint("g", g, ":", i%5)
				if _, err := own.Set(cx, key, []byte(key)); err != nil {
					t.Error(err)
					return
				}
				v, found, err := own.GetInto(cx, key, buf)
				if err != nil || !found || string(v) != key {
					t.Errorf("%s: %q %v %v", key, v, found, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
