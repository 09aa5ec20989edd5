package server

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

// A guard whose limit the process is already past puts the budget under pressure:
// large reservations are refused, small ones (a new connection) still pass, and the
// pressure ends with the guard.
func TestGuardMemoryRefusesLargeReservationsUnderPressure(t *testing.T) {
	b := NewBudget(1 << 30)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		GuardMemory(ctx, b, 1, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	for b.Pressured() == 0 {
		time.Sleep(time.Millisecond)
	}
	if b.TryAcquire(pressureMin) {
		t.Error("a large reservation passed under memory pressure")
	}
	if !b.TryAcquire(1 << 10) {
		t.Error("a small reservation was refused under memory pressure")
	}
	b.Release(1 << 10)
	cancel()
	<-done
	if !b.TryAcquire(pressureMin) {
		t.Error("a large reservation was refused after the guard stopped")
	}
	if got := b.Pressured(); got != 1 {
		t.Errorf("Pressured() = %d, want 1: the pressure began once", got)
	}
}

// Far below its limit the guard never presses.
func TestGuardMemoryIdle(t *testing.T) {
	b := NewBudget(1 << 30)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	GuardMemory(ctx, b, 1<<50, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if b.Pressured() != 0 || !b.TryAcquire(pressureMin) {
		t.Error("the guard pressed with the process far below its limit")
	}
}

// A read that waits only because of memory pressure goes ahead when the pressure ends,
// though nothing is released: on an idle sidecar nothing would be, and the read would
// be refused OVERLOADED at the end of its wait with the budget nearly empty.
func TestReadWaitingOnPressureGoesAheadWhenItEnds(t *testing.T) {
	b := NewBudget(1 << 30)
	g := newReadGate(b, pressureMin, "raise it", func() {})
	b.pressure.Store(true)
	done := make(chan error, 1)
	go func() { done <- g.enter(context.Background(), true) }()
	for b.waiters.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	b.relieve()
	if err := <-done; err != nil {
		t.Fatalf("the read failed after the pressure ended: %v", err)
	}
	b.Release(g.reserve)
}
