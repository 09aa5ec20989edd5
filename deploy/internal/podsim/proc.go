package podsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// tail keeps the last lines a process wrote, and writes everything to a log file.
type tail struct {
	mu    sync.Mutex
	lines []string
	part  []byte
	file  io.Writer
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.file != nil {
		t.file.Write(p)
	}
	t.part = append(t.part, p...)
	for {
		i := bytes.IndexByte(t.part, '\n')
		if i < 0 {
			break
		}
		t.lines = append(t.lines, string(t.part[:i]))
		if len(t.lines) > 40 {
			t.lines = t.lines[len(t.lines)-40:]
		}
		t.part = t.part[i+1:]
	}
	return len(p), nil
}

func (t *tail) last(n int) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.lines[max(0, len(t.lines)-n):]...)
}

// proc is a running container.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *tail
	done chan struct{}
	err  error // valid after done
}

// credential is the uid, gid and groups the pod's securityContext gives a container;
// nil when this process cannot switch users (not root) or the spec names no uid.
func credential(pod *corev1.PodSpec, c *corev1.Container) *syscall.Credential {
	if os.Geteuid() != 0 {
		return nil
	}
	psc := pod.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	uid, gid := psc.RunAsUser, psc.RunAsGroup
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			uid = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			gid = sc.RunAsGroup
		}
	}
	if uid == nil {
		return nil
	}
	cred := &syscall.Credential{Uid: uint32(*uid), Gid: uint32(*uid)}
	if gid != nil {
		cred.Gid = uint32(*gid)
	}
	if psc.FSGroup != nil {
		cred.Groups = append(cred.Groups, uint32(*psc.FSGroup))
	}
	for _, g := range psc.SupplementalGroups {
		cred.Groups = append(cred.Groups, uint32(g))
	}
	return cred
}

func start(name, bin string, args, env []string, cred *syscall.Credential, logPath string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p := &proc{name: name, out: &tail{file: f}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin"}, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) exitCode() int {
	if p.cmd.ProcessState == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// stop sends SIGTERM and waits up to grace, then SIGKILL; it returns how long the
// process took and whether it needed the kill.
func (p *proc) stop(grace time.Duration) (time.Duration, bool) {
	t0 := time.Now()
	if p.exited() {
		return 0, false
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return time.Since(t0), false
	case <-time.After(grace):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return time.Since(t0), true
	}
}

// probe runs one check of a kubelet probe against local ports and binaries.
func probe(ctx context.Context, pr *corev1.Probe, c *container, images map[string]string, cred *syscall.Credential) error {
	timeout := time.Duration(max(pr.TimeoutSeconds, 1)) * time.Second
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case pr.HTTPGet != nil:
		port := pr.HTTPGet.Port.IntVal
		if name := pr.HTTPGet.Port.StrVal; name != "" {
			for _, cp := range c.spec.Ports {
				if cp.Name == name {
					port = cp.ContainerPort
				}
			}
		}
		local, ok := c.ports[port]
		if !ok {
			return fmt.Errorf("probe port %s is not a port of %s", pr.HTTPGet.Port.String(), c.spec.Name)
		}
		req, err := http.NewRequestWithContext(ctx, "GET", "http://127.0.0.1:"+strconv.Itoa(local)+pr.HTTPGet.Path, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		// The kubelet's rule: 200 to 399 passes.
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("GET %s: %s", pr.HTTPGet.Path, resp.Status)
		}
		return nil
	case pr.Exec != nil:
		argv := make([]string, len(pr.Exec.Command))
		for i, a := range pr.Exec.Command {
			argv[i] = rewritePaths(a, c.paths)
		}
		bin, ok := images[argv[0]]
		if !ok {
			return fmt.Errorf("exec probe runs %s, which this simulation has no binary for", argv[0])
		}
		cmd := exec.CommandContext(ctx, bin, argv[1:]...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w: %s", strings.Join(pr.Exec.Command, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	case pr.TCPSocket != nil:
		return errors.New("tcpSocket probes are not simulated")
	}
	return errors.New("probe has no handler")
}

// prober runs one probe on its period, like the kubelet, and records the outcome.
type prober struct {
	mu          sync.Mutex
	firstPass   time.Duration // since the pod started; 0 until it passes
	passes      int
	failures    int
	lastErr     error
	consecutive int // failures in a row
}

func (pb *prober) record(err error, since time.Duration) {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	if err == nil {
		pb.passes++
		pb.consecutive = 0
		if pb.firstPass == 0 {
			pb.firstPass = max(since, time.Nanosecond)
		}
		return
	}
	pb.failures++
	pb.consecutive++
	pb.lastErr = err
}

func (pb *prober) snapshot() (first time.Duration, passes, failures int, last error) {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	return pb.firstPass, pb.passes, pb.failures, pb.lastErr
}

func runProber(ctx context.Context, pb *prober, pr *corev1.Probe, c *container, images map[string]string, cred *syscall.Credential, t0 time.Time) {
	period := time.Duration(max(pr.PeriodSeconds, 1)) * time.Second
	select {
	case <-ctx.Done():
		return
	case <-time.After(time.Duration(pr.InitialDelaySeconds) * time.Second):
	}
	for {
		pb.record(probe(ctx, pr, c, images, cred), time.Since(t0))
		select {
		case <-ctx.Done():
			return
		case <-time.After(period):
		}
	}
}

// copyBinary copies the executable at src into dir (made 0755 if missing) as a file of
// mode 0755 named after it, and returns the copy's path; an empty src stays empty.
func copyBinary(dir, src string) (string, error) {
	if src == "" {
		return "", nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask
		return "", err
	}
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	dst := filepath.Join(dir, filepath.Base(src))
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return "", err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Chmod(0o755)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return dst, err
}
