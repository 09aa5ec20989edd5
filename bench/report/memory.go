package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cachee/cachee/bench/internal/procs"
	"github.com/cachee/cachee/bench/internal/respc"
	cachee "github.com/cachee/cachee/sdk/go"
)

// memoryResult is section 4's first part: one fill of n entries into each server.
type memoryResult struct {
	Entries        int          `json:"entries"`
	MaxMemory      int64        `json:"cachee_max_memory"`
	StoreEmpty     int64        `json:"cachee_memory_used_empty"`
	StoreUsed      int64        `json:"cachee_memory_used"`
	StoreEntries   int64        `json:"cachee_entries"`
	StoreEvictions uint64       `json:"cachee_evictions"`
	CacheeBefore   procs.Status `json:"cachee_status_before"`
	CacheeAfter    procs.Status `json:"cachee_status_after"`
	SegmentPages   int64        `json:"cachee_segment_pages"`
	SegmentEmpty   int64        `json:"cachee_segment_pages_empty"`
	RedisUsed0     int64        `json:"redis_used_memory_empty"`
	RedisUsed      int64        `json:"redis_used_memory"`
	RedisRSS       int64        `json:"redis_used_memory_rss"`
	RedisBefore    procs.Status `json:"redis_status_before"`
	RedisAfter     procs.Status `json:"redis_status_after"`
	RedisKeys      int64        `json:"redis_keys"`
}

// rssResult is section 4's second part: cachee after writing factor times its capacity.
type rssResult struct {
	MaxMemory    int64        `json:"max_memory"`
	Written      int          `json:"entries_written"`
	Status       procs.Status `json:"status"`
	SegmentPages int64        `json:"segment_pages"`
	SegmentSize  int64        `json:"segment_size"`
	StoreUsed    int64        `json:"memory_used"`
	Entries      int64        `json:"entries"`
	Evictions    uint64       `json:"evictions"`
}

func memKey(prefix string) func(dst []byte, i int) []byte {
	return func(dst []byte, i int) []byte {
		// 16 bytes: the prefix and the number, zero-padded.
		dst = append(dst, prefix...)
		num := strconv.Itoa(i)
		for range 16 - len(prefix) - len(num) {
			dst = append(dst, '0')
		}
		return append(dst, num...)
	}
}

// mb formats a byte count as cachee's --max-memory takes it.
func mb(n int64) string { return strconv.FormatInt(n>>20, 10) + "mb" }

func (b *bench) memory(s *section) error {
	cfg := b.cfg
	n := cfg.MemEntries
	value := benchValue(100)
	s.command(fmt.Sprintf("`go run ./bench/report` (section 4): each server started fresh; %s keys of 16 bytes with 100-byte values written with pipelined SETs (1000 per write) over the Unix socket; cachee's figures from its Stats call and /proc/PID/status, redis-server's from `INFO memory`", thousands(n)))
	s.runs = "1: memory figures are counts, not timings, and repeat to within a page or two"
	s.spread = "not applicable (one run of counts)"
	dir, err := os.MkdirTemp(b.tmp, "memory-")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// Part 1: n entries in each server, room to spare, nothing evicted.
	maxMem := max(int64(64<<20), int64(n)*400) &^ (1<<20 - 1)
	res := &memoryResult{Entries: n, MaxMemory: maxMem}
	shm, err := os.MkdirTemp(b.shmBase, "memory-")
	if err != nil {
		return err
	}
	log.Printf("memory: %d entries into cachee", n)
	err = b.withCachee(ctx, dir, shm, mb(maxMem), func(c *procs.Cachee, sdk *cachee.Client) error {
		st, err := sdk.Stats(ctx)
		if err != nil {
			return err
		}
		res.StoreEmpty = st.MemoryUsed
		if res.CacheeBefore, err = procs.ReadStatus(c.Pid()); err != nil {
			return err
		}
		if res.SegmentEmpty, _, err = procs.FilePages(c.Segment); err != nil {
			return err
		}
		if err := fill(c.Socket, n, memKey("key:"), value); err != nil {
			return err
		}
		if st, err = sdk.Stats(ctx); err != nil {
			return err
		}
		res.StoreUsed, res.StoreEntries, res.StoreEvictions = st.MemoryUsed, st.Entries, st.Evictions
		if res.CacheeAfter, err = procs.ReadStatus(c.Pid()); err != nil {
			return err
		}
		res.SegmentPages, _, err = procs.FilePages(c.Segment)
		return err
	})
	if err != nil {
		return fmt.Errorf("cachee: %w", err)
	}
	log.Printf("memory: %d entries into redis-server", n)
	rdir, err := os.MkdirTemp(dir, "redis-")
	if err != nil {
		return err
	}
	srv, err := procs.StartRedis(rdir, "mem")
	if err != nil {
		return err
	}
	err = func() error {
		defer srv.Stop()
		c, err := respc.Dial("unix", srv.Socket)
		if err != nil {
			return err
		}
		defer c.Close()
		if res.RedisUsed0, err = usedMemory(c); err != nil {
			return err
		}
		if res.RedisBefore, err = procs.ReadStatus(srv.Pid()); err != nil {
			return err
		}
		if err := c.Fill(n, 1000, memKey("key:"), value); err != nil {
			return err
		}
		info, err := c.Info("memory")
		if err != nil {
			return err
		}
		if res.RedisUsed, err = strconv.ParseInt(info["used_memory"], 10, 64); err != nil {
			return fmt.Errorf("INFO memory used_memory: %w", err)
		}
		if res.RedisRSS, err = strconv.ParseInt(info["used_memory_rss"], 10, 64); err != nil {
			return fmt.Errorf("INFO memory used_memory_rss: %w", err)
		}
		if res.RedisKeys, err = intReply(c, "DBSIZE"); err != nil {
			return err
		}
		res.RedisAfter, err = procs.ReadStatus(srv.Pid())
		return err
	}()
	if err != nil {
		return fmt.Errorf("redis-server: %w", err)
	}
	b.results.Memory = res

	per := func(x int64) string { return fmt.Sprintf("%.1f", float64(x)/float64(n)) }
	pod := res.CacheeAfter.RssAnon + res.SegmentPages
	s.printf("### Bytes per entry at %s entries (16-byte keys, 100-byte values: 116 bytes of data each)\n\n", thousands(n))
	table(&s.body, []string{"figure", "cachee", "redis-server"}, "lrr", [][]string{
		{"the server's own count after the fill ÷ entries (cachee: Stats `memory_used`, the segment bytes in use; redis: `used_memory`)", per(res.StoreUsed), per(res.RedisUsed)},
		{"growth of that count from the empty server ÷ entries", per(res.StoreUsed - res.StoreEmpty), per(res.RedisUsed - res.RedisUsed0)},
		{"process RSS after the fill ÷ entries (VmRSS)", per(res.CacheeAfter.VmRSS), per(res.RedisAfter.VmRSS)},
		{"RSS growth from the empty server ÷ entries", per(res.CacheeAfter.VmRSS - res.CacheeBefore.VmRSS), per(res.RedisAfter.VmRSS - res.RedisBefore.VmRSS)},
		{"what the pod's memory limit is charged ÷ entries (cachee: RssAnon + the segment's tmpfs pages, which is about --max-memory whatever the entries, see below; redis: VmRSS)", per(pod), per(res.RedisAfter.VmRSS)},
		{"entries held (cachee Stats `entries`, redis `DBSIZE`)", thousands(int(res.StoreEntries)), thousands(int(res.RedisKeys))},
	})
	s.printf("cachee ran with `--max-memory=%s` here, so that nothing was evicted (%d evictions). Its segment is a file of that size on tmpfs (`/dev/shm`), mapped shared: its pages count in cachee's RssShmem once touched, and in the pod's memory cgroup whoever touches them. %s of the segment's pages were allocated when the server was still empty, %s after the fill. %s\n\n",
		mb(maxMem), res.StoreEvictions, fmtBytes(res.SegmentEmpty), fmtBytes(res.SegmentPages), upfront(res.SegmentEmpty, maxMem))
	if res.StoreEntries != int64(n) || res.RedisKeys != int64(n) {
		s.printf("**Warning**: a server holds fewer than the %s entries written; the per-entry figures above divide by %s all the same.\n\n", thousands(n), thousands(n))
	}
	if err := memoryChart(filepath.Join(cfg.Out, "memory.png"), n, res); err != nil {
		return err
	}
	s.chart("bytes per entry", "memory.png")

	// Part 2: RSS against --max-memory after writing factor times the capacity.
	limit := cfg.RSSMaxMemory
	written := int(int64(cfg.RSSFactor) * limit / 116)
	rss := &rssResult{MaxMemory: limit, Written: written}
	shm2, err := os.MkdirTemp(b.shmBase, "rss-")
	if err != nil {
		return err
	}
	log.Printf("memory: %d entries into cachee --max-memory=%s", written, mb(limit))
	err = b.withCachee(ctx, dir, shm2, mb(limit), func(c *procs.Cachee, sdk *cachee.Client) error {
		if err := fill(c.Socket, written, memKey("fill:"), value); err != nil {
			return err
		}
		st, err := sdk.Stats(ctx)
		if err != nil {
			return err
		}
		rss.StoreUsed, rss.Entries, rss.Evictions = st.MemoryUsed, st.Entries, st.Evictions
		if rss.Status, err = procs.ReadStatus(c.Pid()); err != nil {
			return err
		}
		rss.SegmentPages, rss.SegmentSize, err = procs.FilePages(c.Segment)
		return err
	})
	if err != nil {
		return fmt.Errorf("cachee --max-memory=%s: %w", mb(limit), err)
	}
	b.results.RSS = rss
	frac := func(x int64) string { return fmt.Sprintf("%.2f", float64(x)/float64(limit)) }
	row := func(name string, x int64) []string { return []string{name, fmtBytes(x), frac(x)} }
	s.printf("### RSS against --max-memory=%s after writing %d× its capacity\n\n", mb(limit), cfg.RSSFactor)
	s.printf("%s distinct keys of 16 bytes with 100-byte values (%d × %s of data), pipelined SETs over the Unix socket. At the end cachee held %s entries and had evicted %s.\n\n",
		thousands(written), cfg.RSSFactor, mb(limit), thousands(int(rss.Entries)), thousands(int(rss.Evictions)))
	table(&s.body, []string{"figure", "bytes", "÷ --max-memory"}, "lrr", [][]string{
		row("--max-memory", limit),
		row("store `memory_used` (Stats)", rss.StoreUsed),
		row("segment file size", rss.SegmentSize),
		row("segment pages in tmpfs (st_blocks × 512)", rss.SegmentPages),
		row("VmRSS: resident pages, = RssAnon + RssFile + RssShmem", rss.Status.VmRSS),
		row("RssAnon: Go heap, stacks, runtime", rss.Status.RssAnon),
		row("RssShmem: the segment's pages this process has touched", rss.Status.RssShmem),
		row("RssFile: the binary's and libraries' pages", rss.Status.RssFile),
		row("VmHWM: the peak of VmRSS during the run", rss.Status.VmHWM),
		row("RssAnon + segment pages: what the pod's limit is charged", rss.Status.RssAnon+rss.SegmentPages),
		row("a container limit of 1.5 × --max-memory", limit*3/2),
	})
	verdict := "stayed below"
	if rss.Status.VmHWM >= limit*3/2 || rss.Status.RssAnon+rss.SegmentPages >= limit*3/2 {
		verdict = "did NOT stay below"
	}
	s.printf("Peak RSS was %.2f × --max-memory: cachee %s a container limit of 1.5 × --max-memory. RSS counts pages of this process's memory that are resident: its private memory (RssAnon), the pages of files it maps (RssFile) and the pages of shared memory it maps and has touched (RssShmem, here the segment). The segment's pages stay in tmpfs, charged to the pod, even when no process maps them.\n\n",
		float64(rss.Status.VmHWM)/float64(limit), verdict)
	if err := rssChart(filepath.Join(cfg.Out, "rss.png"), rss); err != nil {
		return err
	}
	s.chart("RSS against --max-memory", "rss.png")
	return nil
}

// upfront says what the segment's pages of an empty server mean for the pod.
func upfront(emptyPages, maxMem int64) string {
	if emptyPages >= maxMem*9/10 {
		return "cachee takes (nearly) its whole `--max-memory` of tmpfs when it starts, so the pod is charged `--max-memory` from the first second, and the charge per entry depends on how full the cache is, not on the entry."
	}
	return "cachee takes tmpfs pages as it fills, so the pod's charge grows with the entries."
}

// withCachee starts cachee with its segment in shm, connects the Go SDK over gRPC,
// calls fn, and stops cachee.
func (b *bench) withCachee(ctx context.Context, dir, shm, maxMem string, fn func(*procs.Cachee, *cachee.Client) error) error {
	sub, err := os.MkdirTemp(dir, "cachee-")
	if err != nil {
		return err
	}
	c, err := procs.StartCachee(procs.CacheeOptions{Bin: b.cfg.Cachee, Dir: sub, Shm: shm, MaxMemory: maxMem})
	if err != nil {
		return err
	}
	defer c.Stop()
	sdk, err := cachee.Dial(ctx, cachee.WithTarget("unix://"+c.Socket), cachee.WithoutShm(), cachee.WithWaitReady(),
		cachee.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		return err
	}
	defer sdk.Close()
	return fn(c, sdk)
}

// fill writes n keys over RESP on a Unix socket.
func fill(sock string, n int, key func([]byte, int) []byte, value []byte) error {
	c, err := respc.Dial("unix", sock)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Fill(n, 1000, key, value)
}
