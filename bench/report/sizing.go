package main

import (
	"bytes"
	"fmt"
	"time"
)

// sizing writes what the run's figures mean for someone sizing a pod. Every number in
// it is computed from this run's results; a figure whose section failed is said to be
// missing.
func (b *bench) sizing() []byte {
	var w bytes.Buffer
	fmt.Fprintf(&w, "## What this means for a pod\n\n")
	fmt.Fprintf(&w, "Derived from the sections below, on this machine; a faster or idle machine shifts every latency, not the proportions.\n\n")

	// Time per request.
	var lat []latencyResult
	for _, r := range b.results.Latency {
		if r.Value == 100 {
			lat = append(lat, r)
		}
	}
	if len(lat) == 0 {
		fmt.Fprintf(&w, "- Time per request: not available (section 1 did not finish).\n\n")
	} else {
		fmt.Fprintf(&w, "**Time per request.** A request that reads the cache k times spends about k × p50 in those reads (hot key, 100-byte value, from section 1). The p99 column is what one slow read in a hundred costs.\n\n")
		var rows [][]string
		for _, r := range lat {
			rows = append(rows, []string{r.Name, fmtDur(r.P50), fmtDur(5 * r.P50), fmtDur(10 * r.P50), fmtDur(20 * r.P50), fmtDur(r.P99)})
		}
		table(&w, []string{"path", "one call (p50)", "5 calls", "10 calls", "20 calls", "one call (p99)"}, "lrrrrr", rows)
		shm, grpc, redisTCP := lat[0], lat[1], latFind(lat, pRedisTCP)
		if shm.P50 > 0 && grpc.P50 > 0 && redisTCP.P50 > 0 {
			fmt.Fprintf(&w, "With 10 cache reads per request, reading through shared memory costs %s and over gRPC %s; a redis-server over TCP in the same pod %s, and one across the network adds the network's round trip to each read. Shared memory makes the cache's share of a request negligible; over a socket, ten reads are %s of every request's latency, which matters for requests that take a few milliseconds and not for those that take a hundred.\n\n",
				fmtDur(10*shm.P50), fmtDur(10*grpc.P50), fmtDur(10*redisTCP.P50), fmtDur(10*grpc.P50))
		}
	}

	// Entries per 256 MiB.
	const quarterGiB = 256 << 20
	if m := b.results.Memory; m == nil || m.StoreEntries == 0 {
		fmt.Fprintf(&w, "- Entries per 256 MiB: not available (section 4 did not finish).\n\n")
	} else {
		perStore := float64(m.StoreUsed) / float64(m.StoreEntries)
		perRedis := float64(m.RedisUsed-m.RedisUsed0) / float64(max(m.RedisKeys, 1))
		fmt.Fprintf(&w, "**Entries per 256 MiB.** With 16-byte keys and 100-byte values cachee's store used %.0f bytes per entry (data, index and metadata, everything `--max-memory` bounds), so `--max-memory=256mb` holds about %s such entries; redis-server's `used_memory` grew %.0f bytes per key, about %s keys in 256 MiB of `maxmemory`.",
			perStore, thousands(int(quarterGiB/perStore)), perRedis, thousands(int(quarterGiB/perRedis)))
		if r := b.results.RSS; r != nil && r.MaxMemory == quarterGiB {
			fmt.Fprintf(&w, " Measured directly: after writing three times its capacity, `--max-memory=256mb` held %s entries.", thousands(int(r.Entries)))
		}
		fmt.Fprintf(&w, " Bytes per entry grow with the key and value: budget key + value + (%.0f − 116) bytes per entry.\n\n", perStore)
	}

	// Container limit.
	if r := b.results.RSS; r == nil || r.MaxMemory == 0 {
		fmt.Fprintf(&w, "- Container limit: not available (section 4 did not finish).\n\n")
	} else {
		peak := float64(r.Status.VmHWM) / float64(r.MaxMemory)
		charged := float64(r.Status.RssAnon+r.SegmentPages) / float64(r.MaxMemory)
		fmt.Fprintf(&w, "**Container limit.** Set the cachee container's memory limit to 1.5 × `--max-memory` (384Mi for the default 256mb). In this run, after writing three times its capacity, cachee's peak RSS was %.2f × `--max-memory` and the memory its pod is charged for (private memory plus the segment's tmpfs pages) %.2f ×, ",
			peak, charged)
		if peak < 1.5 && charged < 1.5 {
			fmt.Fprintf(&w, "inside the 1.5 × limit with %.0f%% of `--max-memory` to spare.\n\n", 100*(1.5-max(peak, charged)))
		} else {
			fmt.Fprintf(&w, "which does NOT fit the 1.5 × limit: see section 4.\n\n")
		}
	}
	return w.Bytes()
}

func latFind(rs []latencyResult, path string) latencyResult {
	for _, r := range rs {
		if r.Path == path {
			return r
		}
	}
	return latencyResult{P50: time.Duration(0)}
}
