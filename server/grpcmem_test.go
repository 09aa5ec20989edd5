package server

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
)

// poolThreshold is grpc-go's: buffers of at most this many bytes it never returns.
const poolThreshold = 1 << 10

func TestBufferPoolCharges(t *testing.T) {
	if !mem.IsBelowBufferPoolingThreshold(poolThreshold) || mem.IsBelowBufferPoolingThreshold(poolThreshold+1) {
		t.Fatal("grpc-go's pooling threshold moved")
	}
	b := NewBudget(1 << 30)
	p := newBufferPool(b)

	// Below grpc-go's pooling threshold: not charged, since grpc-go never returns them.
	small := p.Get(poolThreshold)
	if len(*small) != poolThreshold || b.Used() != 0 {
		t.Fatalf("small buffer: len %d, charged %d", len(*small), b.Used())
	}
	p.Put(small)

	for _, tc := range []struct{ n, charged int }{
		{poolThreshold + 1, 2 << 10},
		{16 << 10, 16 << 10},
		{16<<10 + 1, 32 << 10},
		{64 << 10, 64 << 10},
		{64<<10 + 5, 64<<10 + 5}, // beyond the classes: to size
		{1 << 20, 1 << 20},
	} {
		bp := p.Get(tc.n)
		if len(*bp) != tc.n || b.Used() != int64(tc.charged) {
			t.Fatalf("Get(%d): len %d, charged %d, want %d", tc.n, len(*bp), b.Used(), tc.charged)
		}
		*bp = (*bp)[:1] // grpc-go may return a prefix
		p.Put(bp)
		p.Put(bp) // twice: credited once
		if b.Used() != 0 {
			t.Fatalf("Get(%d) returned: %d still charged", tc.n, b.Used())
		}
		again := p.Get(tc.n) // reused or not, charged again
		if b.Used() != int64(tc.charged) {
			t.Fatalf("Get(%d) again: charged %d", tc.n, b.Used())
		}
		p.Put(again)
	}
	// A slice adopted from elsewhere is charged its capacity until returned.
	adopted := p.adopt(make([]byte, 300<<10, 301<<10))
	if b.Used() != 301<<10 || len(*adopted) != 300<<10 {
		t.Fatalf("adopted: charged %d, len %d", b.Used(), len(*adopted))
	}
	p.Put(adopted)
	if b.Used() != 0 {
		t.Fatalf("adopted and returned: %d still charged", b.Used())
	}
	// A buffer that is not the pool's is ignored.
	foreign := make([]byte, 4<<10)
	p.Put(&foreign)
	if b.Used() != 0 {
		t.Fatalf("a foreign buffer changed the charge to %d", b.Used())
	}
}

// A buffer that grpc-go drops without returning it is credited once it is collected.
func TestBufferPoolCreditsDroppedBuffers(t *testing.T) {
	b := NewBudget(1 << 30)
	p := newBufferPool(b)
	kept := p.Get(8 << 10)
	dropped := make([]*[]byte, 10)
	for i := range dropped {
		dropped[i] = p.Get(64 << 10)
	}
	if b.Used() != 8<<10+10*64<<10 {
		t.Fatalf("charged %d", b.Used())
	}
	dropped = nil // on the floor, never returned
	deadline := time.Now().Add(30 * time.Second)
	for b.Used() != 8<<10 || p.dropped.Load() != 10 {
		if time.Now().After(deadline) {
			t.Fatalf("charged %d, %d credited by the collector; want the dropped ones credited", b.Used(), p.dropped.Load())
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	p.Put(kept)
	runtime.KeepAlive(kept)
	if b.Used() != 0 {
		t.Fatalf("charged %d", b.Used())
	}
}

func TestBufferPoolConcurrent(t *testing.T) {
	b := NewBudget(1 << 40)
	p := newBufferPool(b)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				bp := p.Get(2<<10 + (g*1000+i)%(70<<10))
				(*bp)[0] = byte(i)
				p.Put(bp)
			}
		})
	}
	wg.Wait()
	if b.Used() != 0 {
		t.Fatalf("%d still charged", b.Used())
	}
}

func TestReadGate(t *testing.T) {
	const maxRecv = 1000
	var refusals int
	const reserve = 2 * maxRecv
	newGate := func(limit int64) *readGate {
		return newReadGate(NewBudget(limit), maxRecv, "raise it", func() { refusals++ })
	}
	req := &cacheev1.GetRequest{Key: []byte("0123456789")}
	decode := func(m any) error { m.(*cacheev1.GetRequest).Key = req.Key; return nil }

	t.Run("holds the message, not the reservation", func(t *testing.T) {
		g := newGate(reserve)
		var m cacheev1.GetRequest
		held, err := g.read(context.Background(), &m, func(m any) error {
			if g.budget.Used() != reserve {
				t.Errorf("while reading: %d reserved, want %d", g.budget.Used(), reserve)
			}
			return decode(m)
		})
		if err != nil || held != 12 || g.budget.Used() != 12 || g.reading.Load() != 0 {
			t.Fatalf("after the read: %v, held %d, charged %d, %d reading", err, held, g.budget.Used(), g.reading.Load())
		}
		g.budget.Release(held)
	})

	t.Run("a failed read keeps nothing", func(t *testing.T) {
		g := newGate(reserve)
		boom := errors.New("boom")
		held, err := g.read(context.Background(), &cacheev1.GetRequest{}, func(any) error { return boom })
		if err != boom || held != 0 || g.budget.Used() != 0 {
			t.Fatalf("%v, held %d, charged %d", err, held, g.budget.Used())
		}
	})

	t.Run("waits for room, then is refused", func(t *testing.T) {
		g := newGate(2*reserve - 1)
		refusals = 0
		// One read in progress holds its reservation: a second cannot fit.
		if err := g.enter(context.Background(), false); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err := g.read(context.Background(), &cacheev1.GetRequest{}, decode)
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("second read: %v, want OVERLOADED", err)
		}
		if waited := time.Since(start); waited < maxReadWait {
			t.Fatalf("refused after %v, before waiting %v", waited, maxReadWait)
		}
		if refusals != 1 || g.budget.Refused() != 1 {
			t.Fatalf("%d refusals counted, budget %d", refusals, g.budget.Refused())
		}
		// It goes ahead as soon as the first read releases its reservation.
		done := make(chan error, 1)
		go func() {
			held, err := g.read(context.Background(), &cacheev1.GetRequest{}, decode)
			g.budget.Release(held)
			done <- err
		}()
		time.Sleep(10 * time.Millisecond)
		g.reading.Add(-1)
		g.budget.Release(reserve)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if g.budget.Used() != 0 {
			t.Fatalf("%d still charged", g.budget.Used())
		}
	})

	t.Run("a stream's read neither holds up unary reads nor goes ahead of the budget", func(t *testing.T) {
		g := newGate(reserve)
		// A stream waits for its next message, holding the one reservation.
		if err := g.enter(context.Background(), true); err != nil {
			t.Fatal(err)
		}
		held, err := g.read(context.Background(), &cacheev1.GetRequest{}, decode)
		if err != nil {
			t.Fatalf("a unary read beside a stream's: %v", err)
		}
		g.budget.Release(held)
		// Another stream's read waits for room, and is refused without it.
		_, err = g.readAs(context.Background(), &cacheev1.GetRequest{}, decode, true)
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("a second stream's read with no room: %v", err)
		}
		g.budget.Release(reserve)
		if g.budget.Used() != 0 || g.reading.Load() != 0 {
			t.Fatalf("%d charged, %d reading", g.budget.Used(), g.reading.Load())
		}
	})

	t.Run("a read goes ahead when no other is in progress", func(t *testing.T) {
		g := newGate(reserve)
		g.budget.Charge(reserve) // full of what others hold, none of it a read
		held, err := g.read(context.Background(), &cacheev1.GetRequest{}, decode)
		if err != nil {
			t.Fatal(err)
		}
		g.budget.Release(held)
		if g.budget.Used() != reserve {
			t.Fatalf("%d charged", g.budget.Used())
		}
	})

	t.Run("a message over the limit is refused and not kept", func(t *testing.T) {
		g := newGate(reserve)
		held, err := g.read(context.Background(), &cacheev1.GetRequest{}, func(m any) error {
			m.(*cacheev1.GetRequest).Key = make([]byte, maxRecv)
			return nil
		})
		if status.Code(err) != codes.ResourceExhausted || held != 0 || g.budget.Used() != 0 {
			t.Fatalf("%v, held %d, charged %d", err, held, g.budget.Used())
		}
	})

	t.Run("ends with the call's context", func(t *testing.T) {
		g := newGate(reserve)
		if err := g.enter(context.Background(), false); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := g.read(ctx, &cacheev1.GetRequest{}, decode); status.Code(err) != codes.Canceled {
			t.Fatalf("%v, want canceled", err)
		}
	})
}
