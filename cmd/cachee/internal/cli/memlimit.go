package cli

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The memory rule. --max-memory promises that the process's resident memory (its
// heap, the binary's pages and the segment's pages together) stays below
// 1.2 × max-memory + 32 MiB. The segment takes max-memory itself, so everything else
// gets 0.2 × max-memory + 32 MiB; of that, mappedAllowance is set aside for what the
// Go runtime does not count (the binary's text and data, which the kernel maps from
// the file) and of the rest, nine tenths are the Go runtime's own limit (GOMEMLIMIT):
// the runtime treats it as a target, not a ceiling, and under TestMemoryBound's load
// the process passed it by up to 4 MiB between collections. Of the Go limit, a quarter
// is the client memory budget: buffers of connections and calls in flight, reserved
// before they are allocated. The rest is for everything else the heap holds and for
// the garbage the collector has not yet reclaimed, which large values make fast (a
// half left too little: see server.GuardMemory).
const (
	mappedAllowance = 18 << 20
	minGoLimit      = 8 << 20
	minClientMemory = 4 << 20
)

// memoryPlan is what the rule gives for one configuration.
type memoryPlan struct {
	goLimit      int64 // for debug.SetMemoryLimit
	clientMemory int64 // the client memory budget
	container    int64 // the container's limit, 0 if none was found
	squeezed     bool  // the container's limit, not max-memory, set goLimit
}

// planMemory applies the rule to maxMemory, within container bytes when that is
// positive (a cgroup memory limit).
func planMemory(maxMemory, container int64) memoryPlan {
	p := memoryPlan{container: container}
	p.goLimit = (maxMemory/5 + 32<<20 - mappedAllowance) * 9 / 10
	if container > 0 {
		if room := (container - maxMemory - mappedAllowance) * 9 / 10; room < p.goLimit {
			p.goLimit, p.squeezed = room, true
		}
	}
	p.goLimit = max(p.goLimit, minGoLimit)
	p.clientMemory = max(p.goLimit/4, minClientMemory)
	return p
}

// unlimitedCgroup is where cgroup v1 reports "no limit" (a page-rounded MaxInt64);
// anything this large is no limit.
const unlimitedCgroup = 1 << 62

// containerMemoryLimit returns the memory limit of the cgroup this process runs in,
// the smallest along its path (a pod's limit sits above its containers'), or 0 when
// there is none or none can be read. root is "/" but for tests. cgroup v2's
// memory.max is read where it is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified
// on hybrid hosts); cgroup v1's memory.limit_in_bytes otherwise.
func containerMemoryLimit(root string) int64 {
	f, err := os.Open(filepath.Join(root, "proc/self/cgroup"))
	if err != nil {
		return 0
	}
	defer f.Close()
	var limit int64
	take := func(dir, rel, file string) {
		// From the process's own cgroup up to the root of the mounted hierarchy.
		for p := filepath.Clean("/" + rel); ; p = filepath.Dir(p) {
			if n, ok := readLimit(filepath.Join(root, dir, p, file)); ok && (limit == 0 || n < limit) {
				limit = n
			}
			if p == "/" {
				return
			}
		}
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			take("sys/fs/cgroup", parts[2], "memory.max")
			take("sys/fs/cgroup/unified", parts[2], "memory.max")
		case hasController(parts[1], "memory"):
			take("sys/fs/cgroup/memory", parts[2], "memory.limit_in_bytes")
		}
	}
	return limit
}

func hasController(list, c string) bool {
	for _, x := range strings.Split(list, ",") {
		if x == c {
			return true
		}
	}
	return false
}

// readLimit reads a cgroup memory limit file: a byte count, or "max".
func readLimit(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	s := strings.TrimSpace(string(b))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n >= unlimitedCgroup {
		return 0, false // "max", or v1's way of saying the same
	}
	return n, true
}
