package procs

import (
	"os"
	"syscall"
	"testing"
	"time"
)

func TestParseStatus(t *testing.T) {
	s, err := parseStatus([]byte("Name:\tcachee\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nRssAnon:\t 512 kB\nRssFile:\t 256 kB\nRssShmem:\t 256 kB\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.VmRSS != 1<<20 || s.VmHWM != 2<<20 || s.RssAnon != 512<<10 || s.RssFile != 256<<10 || s.RssShmem != 256<<10 {
		t.Errorf("%+v", s)
	}
	if _, err := parseStatus([]byte("VmRSS:\t1 kB\n")); err == nil {
		t.Error("missing fields accepted")
	}
}

func TestParseBenchmarkCSV(t *testing.T) {
	out := []byte(`"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","91324.20","0.291","0.080","0.279","0.399","0.511","1.543"
"GET","93808.63","0.283","0.072","0.271","0.391","0.495","0.959"
`)
	if v, err := ParseBenchmarkCSV(out, "SET"); err != nil || v != 91324.20 {
		t.Fatalf("SET: %v %v", v, err)
	}
	if v, err := ParseBenchmarkCSV(out, "GET"); err != nil || v != 93808.63 {
		t.Fatalf("GET: %v %v", v, err)
	}
	if _, err := ParseBenchmarkCSV([]byte(`"test","rps"`+"\n"+`"SET","1"`+"\n"), "GET"); err == nil {
		t.Fatal("a missing GET row was accepted")
	}
}

// selfRusage is this process's user plus system CPU time from getrusage.
func selfRusage(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	s, err := ReadStatus(os.Getpid())
	if err != nil || s.VmRSS <= 0 || s.VmRSS != s.RssAnon+s.RssFile+s.RssShmem {
		t.Errorf("own status %+v, %v (VmRSS is the sum of the three Rss fields)", s, err)
	}
	// Burn at least 200 ms of CPU, 20 of /proc's ticks, so that CPUTime has something
	// to count, and compare it with getrusage's figure for the same process.
	x := 1
	for deadline := time.Now().Add(10 * time.Second); selfRusage(t) < 200*time.Millisecond && time.Now().Before(deadline); {
		for i := range 1_000_000 {
			x = x*31 + i
		}
	}
	got, err := CPUTime(os.Getpid())
	want := selfRusage(t)
	if err != nil {
		t.Fatal(err)
	}
	if got <= 0 || got > want+50*time.Millisecond || got < want-want/4-50*time.Millisecond {
		t.Errorf("CPUTime %v, getrusage %v (x %d)", got, want, x)
	}
	if m := ReadMachine(); m.MemTotal == "unknown" || m.Kernel == "unknown" {
		t.Errorf("machine %+v: /proc/meminfo or /proc/sys/kernel/osrelease not read", m)
	}
	if l, err := readLoadAvg(); err != nil {
		t.Errorf("load %v: %v", l, err)
	}
}
