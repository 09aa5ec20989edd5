package server

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A fast call's deadline without a timer reports what context.WithTimeout's would:
// the deadline, no error before it, DeadlineExceeded after it, and its parent's
// cancellation and values.
func TestNoWaitDeadline(t *testing.T) {
	type key struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	at := time.Now().Add(time.Hour)
	c := &noWaitDeadline{Context: parent, at: at}
	if d, ok := c.Deadline(); !ok || !d.Equal(at) {
		t.Fatalf("Deadline() = %v, %v; want %v, true", d, ok, at)
	}
	if err := c.Err(); err != nil {
		t.Fatalf("Err() before the deadline = %v", err)
	}
	if c.Value(key{}) != "v" {
		t.Fatal("the parent's value is lost")
	}
	cancel()
	if err := c.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err() after the parent's cancel = %v", err)
	}
	past := &noWaitDeadline{Context: context.Background(), at: time.Now().Add(-time.Millisecond)}
	if err := past.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err() past the deadline = %v", err)
	}
}
