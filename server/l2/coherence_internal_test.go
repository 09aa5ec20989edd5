package l2

import "testing"

// Of two operations on a key that overlapped, neither may fill L1, whichever ends
// first: the one that ends last may have reached L2 first, and NOLOOP sends no
// invalidation for our own writes to correct it.
func TestOverlappingOperationsFillNothing(t *testing.T) {
	for _, order := range []string{"first ends first", "second ends first"} {
		tr := &Tier{keys: map[string]*keyState{}}
		a, b := tr.begin("k"), tr.begin("k")
		x, y := a, b
		if order == "second ends first" {
			x, y = b, a
		}
		if tr.end(x) {
			t.Errorf("%s: the first to end may fill", order)
		}
		if tr.end(y) {
			t.Errorf("%s: the last to end may fill", order)
		}
		if len(tr.keys) != 0 {
			t.Errorf("%s: state left for a key with nothing in flight", order)
		}
	}
	// Alone, an operation fills.
	tr := &Tier{keys: map[string]*keyState{}}
	if !tr.end(tr.begin("k")) {
		t.Error("a lone operation may not fill")
	}
}
