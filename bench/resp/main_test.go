package main

import (
	"os"
	"testing"
)

func TestParseCSV(t *testing.T) {
	out := []byte(`"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","91324.20","0.291","0.080","0.279","0.399","0.511","1.543"
"GET","93808.63","0.283","0.072","0.271","0.391","0.495","0.959"
`)
	if v, err := parseCSV(out, "SET"); err != nil || v != 91324.20 {
		t.Fatalf("SET: %v %v", v, err)
	}
	if v, err := parseCSV(out, "GET"); err != nil || v != 93808.63 {
		t.Fatalf("GET: %v %v", v, err)
	}
	if _, err := parseCSV([]byte(`"test","rps"`+"\n"+`"SET","1"`+"\n"), "GET"); err == nil {
		t.Fatal("missing GET accepted")
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestRatios(t *testing.T) {
	a := []result{{rps: 2}, {rps: 3}, {rps: 8}}
	b := []result{{rps: 1}, {rps: 3}, {rps: 2}}
	if got := median(ratios(a, b, rps)); got != 2 {
		t.Fatalf("median ratio %v, want 2", got)
	}
}

func TestCPUClocks(t *testing.T) {
	if selfCPU() <= 0 {
		t.Error("selfCPU is zero")
	}
	if _, err := os.Stat("/proc/self/stat"); err == nil && procCPU(os.Getpid()) < 0 {
		t.Error("procCPU negative")
	}
}
