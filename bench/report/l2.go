package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/cachee/cachee/bench/internal/procs"
	"github.com/cachee/cachee/bench/internal/respc"
)

// L2 path ids.
const (
	pL1Hit       = "l1-hit"
	pReadThrough = "l2-read-through"
	pL2Direct    = "l2-direct"
)

var l2Order = []string{pL1Hit, pReadThrough, pL2Direct}

var l2Name = map[string]string{
	pL1Hit:       "L1 hit: GET through cachee of a key it holds",
	pReadThrough: "L2 read-through: GET through cachee of a key only L2 holds",
	pL2Direct:    "direct L2 GET: the same GET sent to the L2 redis-server",
}

// l2Flag is the flag whose presence in `cachee --help` says the build has an L2 tier.
const l2Flag = "--l2"

func (b *bench) l2(s *section) error {
	s.command(fmt.Sprintf("`%s --help`, looking for %s", relPath(b.cfg.Cachee), l2Flag))
	has, err := procs.HasFlag(b.cfg.Cachee, l2Flag)
	if err != nil {
		return err
	}
	if !has {
		s.runs = "none"
		s.spread = "none"
		s.printf("not measured: this build has no L2 tier (`cachee --help` lists no %s flag). A build with one is measured here the same way as section 1: an L1 hit, an L2 read-through and a direct L2 GET, alternating, in one run.\n\n", l2Flag)
		return nil
	}
	dir, err := os.MkdirTemp(b.tmp, "l2-")
	if err != nil {
		return err
	}
	l2srv, err := procs.StartRedis(dir, "l2")
	if err != nil {
		return err
	}
	defer l2srv.Stop()
	shm, err := os.MkdirTemp(b.shmBase, "l2-")
	if err != nil {
		return err
	}
	c, err := procs.StartCachee(procs.CacheeOptions{Bin: b.cfg.Cachee, Dir: dir, Shm: shm, MaxMemory: "64mb",
		Extra: []string{l2Flag + "=redis://" + l2srv.Addr}})
	if err != nil {
		return fmt.Errorf("starting cachee with %s: %w", l2Flag, err)
	}
	defer c.Stop()
	s.command(fmt.Sprintf("`cachee %s`, with redis-server %s as L2; go-redis v9 (one connection, RESP2) on cachee's Unix socket and on L2's TCP port", b.shortArgs(c.Args), procs.RedisVersion()))
	s.runs = fmt.Sprintf("%d per path, alternating order (the three paths in order, then in reverse); medians over the runs of each run's percentiles; ratios paired run by run", b.cfg.L2Runs)
	s.spread = "the last column gives the lowest and highest p50 of the runs"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := func(network, addr string) *redis.Options {
		return &redis.Options{Network: network, Addr: addr, PoolSize: 1, MaxRetries: -1, Protocol: 2, DisableIdentity: true}
	}
	viaCachee := redis.NewClient(opts("unix", c.Socket))
	defer viaCachee.Close()
	direct := redis.NewClient(opts("tcp", l2srv.Addr))
	defer direct.Close()
	rs, err := measureL2(ctx, viaCachee, direct, "unix", l2srv.Socket, b.cfg.L2Runs, b.cfg.L2Call)
	if err != nil {
		return err
	}
	b.results.L2 = rs
	var rows [][]string
	for _, r := range rs {
		rows = append(rows, []string{r.Name, fmtDur(r.P50), fmtDur(r.P99), fmtDur(r.P999), fmtRatio(r.RatioP50),
			fmtDur(slices.Min(r.RunP50s)) + " – " + fmtDur(slices.Max(r.RunP50s))})
	}
	s.printf("100-byte values; every read-through asks for a key not read before, stored in L2 directly beforehand.\n\n")
	table(&s.body, []string{"path", "p50", "p99", "p999", "p50 ÷ direct L2 GET", "p50 of the runs (min – max)"}, "lrrrrr", rows)
	return nil
}

// measureL2 times the three L2 paths. viaCachee reaches cachee, direct reaches the L2
// server, and (network, addr) is where this function stores the keys in L2 first. It
// takes no server of its own, so that a test can run it against redis-server standing in
// for both.
func measureL2(ctx context.Context, viaCachee, direct *redis.Client, network, addr string, runs, calls int) ([]latencyResult, error) {
	const size = 100
	value := benchValue(size)
	perRun := calls + max(calls/10, 10)
	n := runs * perRun
	l2, err := respc.Dial(network, addr)
	if err != nil {
		return nil, err
	}
	defer l2.Close()
	through := func(dst []byte, i int) []byte { return append(append(dst, "l2:through:"...), strconv.Itoa(i)...) }
	directKey := func(dst []byte, i int) []byte { return append(append(dst, "l2:direct:"...), strconv.Itoa(i)...) }
	for _, k := range []func([]byte, int) []byte{through, directKey} {
		if err := l2.Fill(n, 1000, k, value); err != nil {
			return nil, fmt.Errorf("storing keys in L2: %w", err)
		}
	}
	if r, err := l2.Do("SET", "l2:hot", string(value)); err != nil || r.Kind != '+' {
		return nil, fmt.Errorf("storing the hot key in L2: %v", err)
	}
	check := func(what string, v []byte, err error) error {
		if err == nil && len(v) != size {
			err = fmt.Errorf("%s: %d bytes, want %d", what, len(v), size)
		}
		if err == redis.Nil {
			err = fmt.Errorf("%s: not found (is the L2 tier reading through?)", what)
		}
		return err
	}
	// The first GET of the hot key through cachee loads it into L1.
	if v, err := viaCachee.Get(ctx, "l2:hot").Bytes(); check("first GET of the hot key through cachee", v, err) != nil {
		return nil, check("first GET of the hot key through cachee", v, err)
	}
	var nThrough, nDirect int
	var kbuf []byte
	call := map[string]func() error{
		pL1Hit: func() error {
			v, err := viaCachee.Get(ctx, "l2:hot").Bytes()
			return check("L1 hit", v, err)
		},
		pReadThrough: func() error {
			if nThrough == n {
				return fmt.Errorf("read-through: all %d keys used", n)
			}
			kbuf = through(kbuf[:0], nThrough)
			nThrough++
			v, err := viaCachee.Get(ctx, string(kbuf)).Bytes()
			return check("read-through of "+string(kbuf), v, err)
		},
		pL2Direct: func() error {
			if nDirect == n {
				return fmt.Errorf("direct: all %d keys used", n)
			}
			kbuf = directKey(kbuf[:0], nDirect)
			nDirect++
			v, err := direct.Get(ctx, string(kbuf)).Bytes()
			return check("direct GET of "+string(kbuf), v, err)
		},
	}
	qs, err := measureRuns(l2Order, runs, func(string) int { return calls }, call)
	if err != nil {
		return nil, err
	}
	var out []latencyResult
	for _, p := range l2Order {
		r := summarizeRuns(qs[p], qs[pL2Direct])
		r.Path, r.Name, r.Value = p, l2Name[p], size
		out = append(out, r)
	}
	return out, nil
}
