package cachee_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"path/filepath"
	"time"

	cachee "github.com/cachee/cachee/sdk/go"
)

// The examples talk to a real sidecar: TestMain starts one and sets CACHEE_SOCKET and
// CACHEE_SHM, as a pod manifest would, so that cachee.Dial(ctx) finds it. The last
// example needs no sidecar at all.

func Example() {
	ctx := context.Background()
	c, err := cachee.Dial(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	if _, err := c.Set(ctx, "example:user:42", []byte(`{"name":"Ada"}`), cachee.WithTTL(5*time.Minute)); err != nil {
		log.Fatal(err)
	}
	v, found, err := c.Get(ctx, "example:user:42")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(found, string(v))

	_, found, err = c.Get(ctx, "example:user:43")
	fmt.Println(found, err)
	// Output:
	// true {"name":"Ada"}
	// false <nil>
}

func ExampleDial() {
	ctx := context.Background()
	// The defaults suit a sidecar in the same pod; each can be set explicitly.
	c, err := cachee.Dial(ctx,
		cachee.WithTarget("unix://"+shared.sock), // or "localhost:6380"
		cachee.WithShmDir(shared.shm),            // "" or WithoutShm: gRPC only
		cachee.WithTimeout(500*time.Millisecond),
		cachee.WithRetries(2, 10*time.Millisecond, 100*time.Millisecond),
		cachee.WithWaitReady(), // wait (within ctx) for the sidecar to answer
	)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	st, err := c.Stats(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Eviction, filepath.Base(st.SegmentPath))
	// Output: cachee-lfu cachee.seg
}

func ExampleClient_GetInto() {
	ctx := context.Background()
	c, err := cachee.Dial(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	c.Set(ctx, "example:hot", []byte("a value read often"))

	// One buffer, reused: a hit in shared memory allocates nothing.
	buf := make([]byte, 0, 1024)
	for range 3 {
		v, found, err := c.GetInto(ctx, "example:hot", buf)
		if err != nil || !found {
			log.Fatal(found, err)
		}
		buf = v // keep a grown buffer, if the value did not fit
	}
	fmt.Println(string(buf))
	// Output: a value read often
}

func ExampleClient_Set() {
	ctx := context.Background()
	c, err := cachee.Dial(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	c.Delete(ctx, "example:lock")

	// IfAbsent is Redis's SET NX; IfPresent is XX.
	first, _ := c.Set(ctx, "example:lock", []byte("a"), cachee.IfAbsent, cachee.WithTTL(time.Minute))
	second, _ := c.Set(ctx, "example:lock", []byte("b"), cachee.IfAbsent, cachee.WithTTL(time.Minute))
	fmt.Println(first, second)
	// Output: true false
}

func ExampleClient_BatchGet() {
	ctx := context.Background()
	c, err := cachee.Dial(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if _, err := c.BatchSet(ctx, []cachee.Item{
		{Key: "example:a", Value: []byte("1")},
		{Key: "example:b", Value: []byte("2"), TTL: time.Hour},
	}); err != nil {
		log.Fatal(err)
	}
	res, err := c.BatchGet(ctx, []string{"example:a", "example:missing", "example:b"})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range res {
		fmt.Printf("%v %q\n", r.Found, r.Value)
	}
	// Output:
	// true "1"
	// false ""
	// true "2"
}

func ExampleClient_GetOrLoad() {
	ctx := context.Background()
	c, err := cachee.Dial(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	c.Delete(ctx, "example:profile:7")

	load := func(ctx context.Context) ([]byte, error) {
		fmt.Println("loading from the database")
		return []byte("profile 7"), nil
	}
	for range 2 {
		v, err := c.GetOrLoad(ctx, "example:profile:7", time.Minute, load)
		if err != nil {
			log.Fatal(err) // only ever load's own error
		}
		fmt.Println(string(v))
	}
	// Output:
	// loading from the database
	// profile 7
	// profile 7
}

// A sidecar failure never reaches the caller of GetOrLoad: with no sidecar at all, the
// loader's value comes back and the failures are counted.
func ExampleClient_GetOrLoad_withoutSidecar() {
	ctx := context.Background()
	c, err := cachee.Dial(ctx, cachee.WithTarget("unix:///nonexistent/cachee.sock"), cachee.WithoutShm())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	v, err := c.GetOrLoad(ctx, "k", time.Minute, func(context.Context) ([]byte, error) {
		return []byte("from the source"), nil
	})
	fmt.Println(string(v), err, c.Counters().SidecarErrors)
	// Output: from the source <nil> 2
}

func ExampleError() {
	ctx := context.Background()
	c, err := cachee.Dial(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// The sidecar's default limit is 1 MiB (--max-value-size).
	_, err = c.Set(ctx, "example:big", make([]byte, 1<<20+1))
	fmt.Println(errors.Is(err, cachee.ErrValueTooLarge), errors.Is(err, cachee.ErrInvalidArgument))
	if e, ok := errors.AsType[*cachee.Error](err); ok {
		fmt.Println(e.Code, e.Reason, e.Metadata["field"], e.Metadata["limit"])
	}
	// Output:
	// true true
	// InvalidArgument VALUE_TOO_LARGE value 1048576
}
