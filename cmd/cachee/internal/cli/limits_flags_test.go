package cli

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPlanMemory(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name              string
		maxMemory, limit  int64
		goLimit, clientMe int64
		squeezed          bool
	}{
		// Nine tenths of 0.2 × 256 MiB + 32 MiB - 18 MiB for the mapped binary; a
		// quarter of that for clients.
		{"default", 256 * mib, 0, (256*mib/5 + 14*mib) * 9 / 10, (256*mib/5 + 14*mib) * 9 / 10 / 4, false},
		{"large", 4096 * mib, 0, (4096*mib/5 + 14*mib) * 9 / 10, (4096*mib/5 + 14*mib) * 9 / 10 / 4, false},
		{"small store: floors", 1 * mib, 0, (1*mib/5 + 14*mib) * 9 / 10, minClientMemory, false},
		// The design's container of 1.5 × max-memory leaves more than the rule takes.
		{"container 1.5x", 256 * mib, 384 * mib, (256*mib/5 + 14*mib) * 9 / 10, (256*mib/5 + 14*mib) * 9 / 10 / 4, false},
		{"tight container", 256 * mib, 300 * mib, 26 * mib * 9 / 10, 26 * mib * 9 / 10 / 4, true},
		{"container smaller than the store", 256 * mib, 200 * mib, minGoLimit, minClientMemory, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := planMemory(tc.maxMemory, tc.limit)
			if p.goLimit != tc.goLimit || p.clientMemory != tc.clientMe || p.squeezed != tc.squeezed {
				t.Fatalf("got %+v, want go %d client %d squeezed %v", p, tc.goLimit, tc.clientMe, tc.squeezed)
			}
			// The promise: what the rule lets the process hold besides the segment
			// stays within 0.2 × max-memory + 32 MiB.
			if !p.squeezed && p.goLimit+mappedAllowance > tc.maxMemory/5+32*mib {
				t.Fatalf("go limit %d + %d over the promise", p.goLimit, mappedAllowance)
			}
		})
	}
}

func TestContainerMemoryLimit(t *testing.T) {
	write := func(t *testing.T, root, path, content string) {
		t.Helper()
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  int64
	}{
		{"none", map[string]string{}, 0},
		{"v2 namespaced", map[string]string{
			"proc/self/cgroup":           "0::/\n",
			"sys/fs/cgroup/memory.max":   "402653184\n",
			"sys/fs/cgroup/cgroup.procs": "1\n",
		}, 402653184},
		{"v2 max", map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "max\n",
		}, 0},
		{"v2 pod above container", map[string]string{
			"proc/self/cgroup":                           "0::/kubepods/pod1/ctr\n",
			"sys/fs/cgroup/kubepods/pod1/ctr/memory.max": "max\n",
			"sys/fs/cgroup/kubepods/pod1/memory.max":     "536870912\n",
			"sys/fs/cgroup/kubepods/memory.max":          "max\n",
		}, 536870912},
		{"v2 smallest wins", map[string]string{
			"proc/self/cgroup":                           "0::/kubepods/pod1/ctr\n",
			"sys/fs/cgroup/kubepods/pod1/ctr/memory.max": "268435456\n",
			"sys/fs/cgroup/kubepods/pod1/memory.max":     "536870912\n",
		}, 268435456},
		{"hybrid: v2 under unified", map[string]string{
			"proc/self/cgroup":                             "4:memory:/x\n0::/x\n",
			"sys/fs/cgroup/unified/x/memory.max":           "100000000\n",
			"sys/fs/cgroup/memory/x/memory.limit_in_bytes": "9223372036854771712\n",
		}, 100000000},
		{"v1", map[string]string{
			"proc/self/cgroup": "9:name=systemd:/\n4:cpu,memory:/docker/abc\n",
			"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "1073741824\n",
		}, 1073741824},
		{"v1 unlimited", map[string]string{
			"proc/self/cgroup":                           "4:memory:/\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
		}, 0},
		{"garbage", map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "lots\n",
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for p, c := range tc.files {
				write(t, root, p, c)
			}
			if got := containerMemoryLimit(root); got != tc.want {
				t.Fatalf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestIDList(t *testing.T) {
	var l idList
	if err := l.Set("1000, 0,65534,"); err != nil || l.String() != "1000,0,65534" {
		t.Fatalf("%v %q", err, l.String())
	}
	for _, bad := range []string{"root", "-1", "4294967296", "1.5"} {
		if err := l.Set(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestLoopback(t *testing.T) {
	for bind, want := range map[string]bool{
		"127.0.0.1": true, "127.1.2.3": true, "::1": true, "localhost": true,
		"0.0.0.0": false, "::": false, "": false, "10.0.0.5": false, "192.168.1.1": false,
	} {
		if got := loopback(bind); got != want {
			t.Errorf("%q: %v, want %v", bind, got, want)
		}
	}
}
