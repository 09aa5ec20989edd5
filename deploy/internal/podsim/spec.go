// Package podsim runs one pod of a rendered manifest on this machine, without
// Kubernetes: each volume becomes a directory (tmpfs for medium: Memory), each
// container a process with the manifest's args and environment (paths and ports
// rewritten to local ones), and the probes run as the kubelet would run them. A
// redis-server stands in for the L2 Service the manifest points at.
package podsim

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/cachee/cachee/deploy/internal/manifest"
)

// container is one container of the pod as a local process will run it.
type container struct {
	spec  *corev1.Container
	args  []string
	env   []string          // NAME=value, resolved
	ports map[int32]int     // containerPort -> local port
	paths map[string]string // mountPath -> local directory
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// rewritePaths replaces each mount path in s (as a whole path component) with its
// local directory, longest first.
func rewritePaths(s string, paths map[string]string) string {
	keys := make([]string, 0, len(paths))
	for k := range paths {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
	for _, k := range keys {
		re := regexp.MustCompile(regexp.QuoteMeta(k) + `(/|$|[^A-Za-z0-9_.-])`)
		s = re.ReplaceAllString(s, strings.ReplaceAll(paths[k], "$", "$$")+"$1")
	}
	return s
}

// setFlag replaces --name's value in args, or appends it.
func setFlag(args []string, name, value string) []string {
	out := slices.Clone(args)
	for i, a := range out {
		if strings.HasPrefix(a, "--"+name+"=") || a == "--"+name {
			out[i] = "--" + name + "=" + value
			return out
		}
	}
	return append(out, "--"+name+"="+value)
}

// dropFlags removes every --name in names from args, and says which it removed.
func dropFlags(args []string, names []string) (kept, dropped []string) {
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if strings.HasPrefix(a, "--") && slices.Contains(names, name) {
			dropped = append(dropped, a)
			continue
		}
		kept = append(kept, a)
	}
	return kept, dropped
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// expand does the kubelet's $(VAR) expansion against the variables defined so far;
// an undefined reference stays as it is, as in Kubernetes.
func expand(s string, vars map[string]string) string {
	return varRef.ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := vars[m[2:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

// resolveEnv computes a container's environment as the kubelet would: in order, with
// $(VAR) expansion and the downward API's resource fields.
func resolveEnv(pod *corev1.PodSpec, c *corev1.Container, paths map[string]string) (env []string, vars map[string]string, err error) {
	vars = map[string]string{}
	for _, e := range c.Env {
		v := expand(e.Value, vars)
		if f := e.ValueFrom; f != nil {
			switch {
			case f.ResourceFieldRef != nil:
				v, err = resourceField(pod, c, f.ResourceFieldRef)
				if err != nil {
					return nil, nil, fmt.Errorf("env %s: %w", e.Name, err)
				}
			case f.FieldRef != nil:
				v = map[string]string{"metadata.name": "podsim", "metadata.namespace": "default"}[f.FieldRef.FieldPath]
			default:
				return nil, nil, fmt.Errorf("env %s: only the downward API is simulated, not Secrets or ConfigMaps", e.Name)
			}
		}
		v = rewritePaths(v, paths)
		vars[e.Name] = v
		env = append(env, e.Name+"="+v)
	}
	return env, vars, nil
}

// resourceField is a resourceFieldRef's value: the quantity over the divisor, rounded
// up, as the kubelet writes it.
func resourceField(pod *corev1.PodSpec, self *corev1.Container, ref *corev1.ResourceFieldSelector) (string, error) {
	c := self
	if ref.ContainerName != "" {
		c, _ = manifest.Container(pod, ref.ContainerName)
		if c == nil {
			return "", fmt.Errorf("no container %s", ref.ContainerName)
		}
	}
	list, name, _ := strings.Cut(ref.Resource, ".")
	res := c.Resources.Limits
	if list == "requests" {
		res = c.Resources.Requests
	}
	q, ok := res[corev1.ResourceName(name)]
	if !ok {
		return "", fmt.Errorf("%s has no %s", c.Name, ref.Resource)
	}
	div := int64(1)
	if !ref.Divisor.IsZero() {
		div = ref.Divisor.Value()
	}
	return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(div))), 10), nil
}

// l2Services maps each redis URL in s whose host is a Service of the bundle to the
// local redis-server, and reports whether it found one.
func rewriteL2(s string, services map[string]bool, local string) (string, bool) {
	found := false
	re := regexp.MustCompile(`rediss?://[^\s,]+`)
	out := re.ReplaceAllStringFunc(s, func(raw string) string {
		u, err := url.Parse(raw)
		if err != nil || !services[u.Hostname()] {
			return raw
		}
		found = true
		u.Scheme = "redis" // the local server speaks plain TCP
		u.Host = local
		return u.String()
	})
	return out, found
}

// mkVolumeDir makes the local directory for one volume: on /dev/shm for medium:
// Memory (tmpfs, as the kubelet mounts it), else under base.
func mkVolumeDir(base string, v *corev1.Volume) (string, error) {
	if v.EmptyDir != nil && v.EmptyDir.Medium == corev1.StorageMediumMemory {
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			return os.MkdirTemp("/dev/shm", "cachee-pod-"+v.Name+"-")
		}
	}
	d := filepath.Join(base, v.Name)
	return d, os.Mkdir(d, 0o755)
}
