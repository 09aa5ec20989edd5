package procs

import (
	"os"
	"testing"
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

func TestSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	s, err := ReadStatus(os.Getpid())
	if err != nil || s.VmRSS <= 0 || s.VmRSS != s.RssAnon+s.RssFile+s.RssShmem {
		t.Errorf("own status %+v, %v (VmRSS is the sum of the three Rss fields)", s, err)
	}
	if _, err := CPUTime(os.Getpid()); err != nil {
		t.Error(err)
	}
	if m := ReadMachine(); m.CPUs < 1 {
		t.Errorf("machine %+v", m)
	}
	if l := ReadLoadAvg(); l[0] < 0 {
		t.Errorf("load %v", l)
	}
}
