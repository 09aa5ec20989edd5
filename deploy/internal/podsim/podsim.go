package podsim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/cachee/cachee/deploy/internal/manifest"
)

// Options say what to run and for how long.
type Options struct {
	Manifest    []byte // rendered YAML with one workload that runs cachee
	Cachee      string // the cachee binary
	App         string // the example app's binary
	HealthProbe string // grpc_health_probe
	RedisServer string // redis-server, for a manifest that points at an L2
	// L2 is auto (pass the L2 tier's flags when cachee --help lists them, else drop
	// them and say so), on (pass them; cachee refusing them fails the run) or off.
	L2          string
	Duration    time.Duration // of the load
	Concurrency int
	Keys        int     // distinct items, read with a Zipf distribution
	SocketShare float64 // share of reads that skip shared memory, to time the socket
	// PreStopScale multiplies the manifest's preStop sleeps (1 for real time, 0 to skip
	// them in tests).
	PreStopScale float64
	Log          io.Writer // progress
}

// imageBinaryPath is where the image keeps grpc_health_probe (deploy/docker/Dockerfile).
const imageProbePath = "/usr/local/bin/grpc_health_probe"

// Run runs the pod and reports. The error is for a run that could not happen or went
// wrong (a container that would not start, a drain that needed a kill); what was
// measured is in the report either way.
func Run(ctx context.Context, o Options) (*Report, error) {
	r := &Report{}
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, "pod: "+format+"\n", args...)
		}
	}
	b, err := manifest.Decode("pod", o.Manifest)
	if err != nil {
		return r, err
	}
	var w manifest.Workload
	var cc *corev1.Container
	for _, x := range b.Workloads() {
		if c, _ := manifest.Container(&x.Pod.Spec, "cachee"); c != nil {
			w, cc = x, c
			break
		}
	}
	if cc == nil {
		return r, errors.New("no workload in the manifest runs cachee")
	}
	spec := &w.Pod.Spec
	var ac *corev1.Container
	for i := range spec.Containers {
		if spec.Containers[i].Name != "cachee" {
			ac = &spec.Containers[i]
			break
		}
	}
	if ac == nil {
		return r, fmt.Errorf("%s has no app container beside cachee", w.Name)
	}
	r.Workload = w.Kind + "/" + w.Name

	// Volumes: one local directory each, owned as the kubelet would own them.
	base, err := os.MkdirTemp("", "cachee-pod-")
	if err != nil {
		return r, err
	}
	var cleanup []string
	defer func() {
		for _, d := range cleanup {
			os.RemoveAll(d)
		}
	}()
	cleanup = append(cleanup, base)
	os.Chmod(base, 0o755)
	// The containers' binaries, copied into the pod's own directory: run as root, the
	// pod runs them (and its probes) as the manifest's uid, which cannot enter a
	// checkout under a private (0700) home or temporary directory.
	for _, b := range []*string{&o.Cachee, &o.App, &o.HealthProbe} {
		if *b, err = copyBinary(filepath.Join(base, ".bin"), *b); err != nil {
			return r, fmt.Errorf("copy the pod's binaries: %w", err)
		}
	}
	volDirs := map[string]string{}
	for i := range spec.Volumes {
		v := &spec.Volumes[i]
		d, err := mkVolumeDir(base, v)
		if err != nil {
			return r, err
		}
		if !strings.HasPrefix(d, base) {
			cleanup = append(cleanup, d)
		}
		// fsGroup: the group owns the directory, setgid, so what is created inside
		// belongs to it. 2770 is stricter than the kubelet's emptyDir (2777), so a
		// container outside the group fails here where it might pass in a cluster.
		if psc := spec.SecurityContext; os.Geteuid() == 0 && psc != nil && psc.FSGroup != nil {
			if err := os.Chown(d, 0, int(*psc.FSGroup)); err != nil {
				return r, err
			}
			if err := os.Chmod(d, 0o2770); err != nil {
				return r, err
			}
			r.Identity = fmt.Sprintf("volumes root:%d 2770 (fsGroup)", *psc.FSGroup)
		}
		volDirs[v.Name] = d
	}
	mk := func(c *corev1.Container) *container {
		ct := &container{spec: c, ports: map[int32]int{}, paths: map[string]string{}}
		for _, m := range c.VolumeMounts {
			ct.paths[m.MountPath] = volDirs[m.Name]
		}
		return ct
	}
	cachee, app := mk(cc), mk(ac)

	// cachee's ports: each one it serves gets a free local port.
	for _, f := range []struct {
		flag string
		def  int32
	}{{"port", 6380}, {"http-port", 6381}, {"metrics-port", 9090}} {
		n := f.def
		if v, ok := manifest.Arg(cc.Args, f.flag); ok {
			x, err := strconv.Atoi(v)
			if err != nil {
				return r, fmt.Errorf("--%s=%s: %w", f.flag, v, err)
			}
			n = int32(x)
		}
		if cachee.ports[n], err = freePort(); err != nil {
			return r, err
		}
	}
	cachee.args = slices.Clone(cc.Args)
	for flag, def := range map[string]int32{"port": 6380, "http-port": 6381, "metrics-port": 9090} {
		n := def
		if v, ok := manifest.Arg(cc.Args, flag); ok {
			x, _ := strconv.Atoi(v)
			n = int32(x)
		}
		cachee.args = setFlag(cachee.args, flag, strconv.Itoa(cachee.ports[n]))
	}
	for i, a := range cachee.args {
		cachee.args[i] = rewritePaths(a, cachee.paths)
	}

	// The L2: a Service of the manifest becomes a local redis-server.
	services := map[string]bool{}
	for _, s := range b.Services {
		services[s.Name] = true
	}
	redisPort, err := freePort()
	if err != nil {
		return r, err
	}
	redisAddr := "127.0.0.1:" + strconv.Itoa(redisPort)
	needRedis := false
	for i, a := range cachee.args {
		if out, ok := rewriteL2(a, services, redisAddr); ok {
			cachee.args[i], needRedis = out, true
		}
	}

	// The L2 tier's flags: passed if the binary has them (or -l2=on), else dropped with
	// a clear word about which are missing.
	help, err := exec.Command(o.Cachee, "--help").CombinedOutput()
	if err != nil {
		return r, fmt.Errorf("%s --help: %w", o.Cachee, err)
	}
	var inManifest []string
	for _, f := range manifest.L2Flags {
		if _, ok := manifest.Arg(cc.Args, f); ok {
			inManifest = append(inManifest, f)
			if !regexp.MustCompile(`(?m)^\s+(-\w, )?--` + regexp.QuoteMeta(f) + `\b`).Match(help) {
				r.L2Missing = append(r.L2Missing, "--"+f)
			}
		}
	}
	switch o.L2 {
	case "on":
		r.L2Mode = "on: passing the L2 flags as the manifest has them"
	case "off":
		cachee.args, r.L2Dropped = dropFlags(cachee.args, inManifest)
		r.L2Mode = "off: L2 flags dropped (-l2=off)"
	case "auto", "":
		if len(r.L2Missing) > 0 {
			missing := make([]string, len(r.L2Missing))
			for i, m := range r.L2Missing {
				missing[i] = strings.TrimPrefix(m, "--")
			}
			cachee.args, r.L2Dropped = dropFlags(cachee.args, missing)
			r.L2Mode = "auto: this cachee lacks " + strings.Join(r.L2Missing, ", ") + " (the L2 tier, issue 6); those flags were NOT passed, so there is no read-through to L2 in this run (-l2=on passes them and shows cachee refusing them)"
		} else if len(inManifest) > 0 {
			r.L2Mode = "auto: this cachee has every L2 flag; passing them"
		} else {
			r.L2Mode = "auto: the manifest passes no L2 flags"
		}
	default:
		return r, fmt.Errorf("-l2=%s: want auto, on or off", o.L2)
	}
	logf("%s", r.L2Mode)

	cachee.env, _, err = resolveEnv(spec, cc, cachee.paths)
	if err != nil {
		return r, err
	}
	if v := envValue(cachee.env, "GOMEMLIMIT"); v != "" {
		r.GOMEMLIMIT = v
	}
	r.MemoryLimit = cc.Resources.Limits.Memory().String()
	r.CacheeArgs = cachee.args

	// The app: its HTTP port on loopback, its environment with local paths.
	app.args = slices.Clone(ac.Args)
	appPort, err := freePort()
	if err != nil {
		return r, err
	}
	for _, p := range ac.Ports {
		app.ports[p.ContainerPort] = appPort
	}
	app.args = setFlag(app.args, "listen", "127.0.0.1:"+strconv.Itoa(appPort))
	app.env, _, err = resolveEnv(spec, ac, app.paths)
	if err != nil {
		return r, err
	}
	images := map[string]string{imageProbePath: o.HealthProbe}
	cacheeCred, appCred := credential(spec, cc), credential(spec, ac)
	who := func(name string, c *syscall.Credential) string {
		if c == nil {
			return name + " as this process's user"
		}
		return fmt.Sprintf("%s uid %d gid %d groups %v", name, c.Uid, c.Gid, c.Groups)
	}
	if os.Geteuid() == 0 {
		r.Identity = who("cachee", cacheeCred) + ", " + who("app", appCred) + "; " + r.Identity
	} else {
		r.Identity = "not root: both processes run as this user, the manifest's uid and fsGroup are not applied"
	}

	// redis-server, when the manifest points at an L2.
	if needRedis {
		if o.RedisServer == "" {
			return r, errors.New("the manifest points at an L2 but no redis-server was given")
		}
		rp, err := start("redis", o.RedisServer, []string{"--port", strconv.Itoa(redisPort), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--maxmemory-policy", "allkeys-lfu"}, nil, nil, filepath.Join(base, "redis.log"))
		if err != nil {
			return r, err
		}
		defer rp.stop(5 * time.Second)
		if err := waitRedis(ctx, redisAddr, rp); err != nil {
			return r, err
		}
		r.L2Addr = redisAddr
		logf("redis-server (L2) on %s", redisAddr)
	}

	// Start cachee, then its startup probe, then the app: the native sidecar order.
	t0 := time.Now()
	cp, err := start("cachee", o.Cachee, cachee.args, cachee.env, cacheeCred, filepath.Join(base, "cachee.log"))
	if err != nil {
		return r, err
	}
	defer cp.stop(15 * time.Second)
	logf("cachee %s", strings.Join(cachee.args, " "))
	if r.StartupPassed, err = startup(ctx, cp, cc.StartupProbe, cachee, images, cacheeCred, t0); err != nil {
		r.CacheeExit = cp.exitCode()
		return r, fmt.Errorf("cachee: %w%s", err, l2Hint(r))
	}
	logf("cachee startup probe passed after %v", r.StartupPassed.Round(time.Millisecond))
	ap, err := start("app", o.App, app.args, app.env, appCred, filepath.Join(base, "app.log"))
	if err != nil {
		return r, err
	}
	defer ap.stop(15 * time.Second)
	if _, err := startup(ctx, ap, ac.StartupProbe, app, images, appCred, t0); err != nil {
		return r, fmt.Errorf("app: %w", err)
	}

	pctx, stopProbes := context.WithCancel(ctx)
	var pwg sync.WaitGroup
	probers := map[string]*prober{}
	for _, p := range []struct {
		name string
		pr   *corev1.Probe
		c    *container
		cred *syscall.Credential
	}{
		{"cachee readiness", cc.ReadinessProbe, cachee, cacheeCred}, {"cachee liveness", cc.LivenessProbe, cachee, cacheeCred},
		{"app readiness", ac.ReadinessProbe, app, appCred}, {"app liveness", ac.LivenessProbe, app, appCred},
	} {
		if p.pr == nil {
			continue
		}
		pb := &prober{}
		probers[p.name] = pb
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			runProber(pctx, pb, p.pr, p.c, images, p.cred, t0)
		}()
	}
	defer func() { stopProbes(); pwg.Wait() }()

	// The readiness gate: both containers Ready, within a bound.
	deadline := time.Now().Add(30 * time.Second)
	for {
		cr, _, _, _ := probers["cachee readiness"].snapshot()
		ar, _, _, _ := probers["app readiness"].snapshot()
		if cr > 0 && ar > 0 {
			r.ReadyAfter = max(cr, ar)
			r.GateOpened = true
			break
		}
		if cp.exited() || ap.exited() || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !r.GateOpened {
		_, _, _, err := probers["cachee readiness"].snapshot()
		return r, fmt.Errorf("the pod did not turn Ready within 30s (cachee readiness: %v)", err)
	}
	logf("pod Ready after %v; load for %v", r.ReadyAfter.Round(time.Millisecond), o.Duration)

	appURL := "http://127.0.0.1:" + strconv.Itoa(appPort)
	// The L2's own latency is sampled during the load, so that it and the tiers the
	// app reports are measured under the same conditions.
	var l2wg sync.WaitGroup
	if needRedis {
		lctx, lcancel := context.WithTimeout(ctx, o.Duration)
		defer lcancel()
		l2wg.Add(1)
		go func() {
			defer l2wg.Done()
			r.L2Direct = redisLatency(lctx, redisAddr, o.Keys)
		}()
	}
	r.Load = drive(ctx, appURL, o)
	l2wg.Wait()
	if err := getJSON(appURL+"/stats", &r.App); err != nil {
		return r, fmt.Errorf("app /stats: %w", err)
	}
	healthURL := "http://127.0.0.1:" + strconv.Itoa(cachee.ports[int32(6381)])
	if v, ok := manifest.Arg(cc.Args, "http-port"); ok {
		n, _ := strconv.Atoi(v)
		healthURL = "http://127.0.0.1:" + strconv.Itoa(cachee.ports[int32(n)])
	}
	getJSON(healthURL+"/health", &r.Health)
	r.Memory = procMemory(cp.cmd.Process.Pid)
	if shm := argOr(cachee.args, "shm", ""); shm != "" {
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join(shm, "cachee.seg"), &st) == nil {
			r.Segment = st.Blocks * 512
		}
	}
	for name, pb := range probers {
		_, passes, failures, last := pb.snapshot()
		r.Probes = append(r.Probes, ProbeResult{name, passes, failures, errString(last)})
	}
	slices.SortFunc(r.Probes, func(a, b ProbeResult) int { return strings.Compare(a.Name, b.Name) })
	stopProbes()
	pwg.Wait()

	// Termination, native sidecar order: the app's preStop and drain, then cachee's.
	ts := time.Now()
	sleepScaled(ac, o.PreStopScale)
	r.AppStop, r.AppKilled = ap.stop(appShutdown(ac) + 2*time.Second)
	r.AppExit = ap.exitCode()
	sleepScaled(cc, o.PreStopScale)
	grace, _ := time.ParseDuration(argOr(cc.Args, "grace-period", "10s"))
	r.CacheeStop, r.CacheeKilled = cp.stop(grace + 2*time.Second)
	r.CacheeExit = cp.exitCode()
	r.Termination = time.Since(ts)
	if tg := spec.TerminationGracePeriodSeconds; tg != nil {
		r.GracePeriod = time.Duration(*tg) * time.Second
	}
	if sock := argOr(cachee.args, "socket", ""); sock != "" {
		if _, err := os.Lstat(sock); err == nil {
			r.SocketLeft = true
		}
	}
	switch {
	case r.AppKilled || r.CacheeKilled:
		return r, errors.New("a container needed SIGKILL to stop")
	case r.AppExit != 0 || r.CacheeExit != 0:
		return r, fmt.Errorf("exit codes: app %d, cachee %d", r.AppExit, r.CacheeExit)
	}
	return r, nil
}

// startup runs a startup probe as the kubelet does: every period until it passes or
// fails failureThreshold times in a row. It returns when it passed, since t0.
func startup(ctx context.Context, p *proc, sp *corev1.Probe, c *container, images map[string]string, cred *syscall.Credential, t0 time.Time) (time.Duration, error) {
	if sp == nil {
		return 0, nil
	}
	threshold := max(sp.FailureThreshold, 1)
	period := time.Duration(max(sp.PeriodSeconds, 1)) * time.Second
	for i := int32(0); ; i++ {
		if p.exited() {
			return 0, fmt.Errorf("exited with code %d before its startup probe passed:\n  %s", p.exitCode(), strings.Join(p.out.last(5), "\n  "))
		}
		err := probe(ctx, sp, c, images, cred)
		if err == nil {
			return time.Since(t0), nil
		}
		if i+1 >= threshold {
			return 0, fmt.Errorf("startup probe failed %d times: %v", threshold, err)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(period):
		}
	}
}

func l2Hint(r *Report) string {
	if len(r.L2Missing) == 0 {
		return ""
	}
	return "\n  this cachee lacks " + strings.Join(r.L2Missing, ", ") + ": the L2 tier (issue 6) is not in this build"
}

func argOr(args []string, name, def string) string {
	if v, ok := manifest.Arg(args, name); ok {
		return v
	}
	return def
}

func envValue(env []string, name string) string {
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == name {
			return v
		}
	}
	return ""
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func sleepScaled(c *corev1.Container, scale float64) {
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		time.Sleep(time.Duration(float64(c.Lifecycle.PreStop.Sleep.Seconds) * scale * float64(time.Second)))
	}
}

func appShutdown(c *corev1.Container) time.Duration {
	d, err := time.ParseDuration(argOr(c.Args, "shutdown-timeout", "10s"))
	if err != nil {
		return 10 * time.Second
	}
	return d
}

func getJSON(u string, v any) error {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

func waitRedis(ctx context.Context, addr string, p *proc) error {
	for i := 0; i < 200; i++ {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		if p.exited() {
			return fmt.Errorf("redis-server exited: %s", strings.Join(p.out.last(3), "; "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
	return errors.New("redis-server did not listen within 5s")
}

// procMemory reads the kernel's view of a process's memory: anonymous memory (Go heap,
// stacks) and shared memory (the segment's tmpfs pages it has touched).
func procMemory(pid int) map[string]string {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && (k == "VmRSS" || k == "RssAnon" || k == "RssShmem" || k == "RssFile") {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// drive sends bounded load at the app: o.Concurrency clients for o.Duration, items
// chosen with a Zipf distribution, a share of them forced through the socket.
func drive(ctx context.Context, base string, o Options) LoadResult {
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var mu sync.Mutex
	var res LoadResult
	var lat []time.Duration
	var wg sync.WaitGroup
	tr := &http.Transport{MaxIdleConnsPerHost: o.Concurrency}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for w := 0; w < max(o.Concurrency, 1); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			zipf := rand.NewZipf(rng, 1.1, 1, uint64(max(o.Keys, 2)-1))
			var mine []time.Duration
			var n, errs int
			for ctx.Err() == nil {
				u := base + "/item/" + strconv.FormatUint(zipf.Uint64(), 10)
				if rng.Float64() < o.SocketShare {
					u += "?via=socket"
				}
				t := time.Now()
				resp, err := client.Get(u)
				if err != nil {
					if ctx.Err() == nil {
						errs++
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs++
					continue
				}
				mine = append(mine, time.Since(t))
				n++
			}
			mu.Lock()
			res.Requests += n
			res.Errors += errs
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(lat)
	res.P50, res.P99 = quantile(lat, 0.5), quantile(lat, 0.99)
	return res
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// redisLatency times GETs straight to the L2 until ctx ends, one every 2ms: the cost
// a pod pays without a sidecar (here on loopback, without the pod network the
// article's numbers include).
func redisLatency(ctx context.Context, addr string, keys int) *TierLatency {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil
	}
	defer c.Close()
	rd := bufio.NewReader(c)
	rng := rand.New(rand.NewPCG(7, 7))
	var lat []time.Duration
	hits := 0
	for ctx.Err() == nil {
		key := "item:" + strconv.Itoa(rng.IntN(max(keys, 1)))
		t := time.Now()
		c.SetDeadline(t.Add(time.Second))
		fmt.Fprintf(c, "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(key), key)
		line, err := rd.ReadString('\n')
		if err != nil {
			return nil
		}
		if strings.HasPrefix(line, "$") && !strings.HasPrefix(line, "$-1") {
			hits++
			n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
			if _, err := io.CopyN(io.Discard, rd, int64(n)+2); err != nil {
				return nil
			}
		}
		lat = append(lat, time.Since(t))
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Millisecond):
		}
	}
	slices.Sort(lat)
	return &TierLatency{Count: len(lat), Hits: hits, P50: quantile(lat, 0.5), P99: quantile(lat, 0.99)}
}
