package deploy_test

import (
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/cachee/cachee/deploy/internal/manifest"
)

// render is one way of producing manifests, and what it must contain.
type render struct {
	name           string
	kustomize      string   // directory under deploy/kubernetes
	helmValues     []string // files under deploy/helm/cachee; nil with helm true means defaults
	helm           bool
	daemonset      bool
	l2             bool
	serviceMonitor bool
	prometheusRule bool // with the default rules when kustomize renders it
	dashboard      bool
}

var renders = []render{
	{name: "kustomize/base", kustomize: "base"},
	{name: "kustomize/sidecar", kustomize: "overlays/sidecar", serviceMonitor: true, prometheusRule: true},
	{name: "kustomize/daemonset", kustomize: "overlays/daemonset", daemonset: true, serviceMonitor: true, prometheusRule: true},
	{name: "kustomize/l1l2", kustomize: "overlays/l1l2", l2: true, serviceMonitor: true, prometheusRule: true},
	{name: "helm/default", helm: true},
	{name: "helm/daemonset", helm: true, helmValues: []string{"ci/daemonset-values.yaml"}, daemonset: true, serviceMonitor: true},
	{name: "helm/l2", helm: true, helmValues: []string{"ci/l2-values.yaml"}, l2: true, serviceMonitor: true},
	{name: "helm/l2-secret-plain-sidecar", helm: true, helmValues: []string{"ci/l2-secret-values.yaml"}, l2: true},
	{name: "helm/monitoring", helm: true, helmValues: []string{"ci/monitoring-values.yaml"}, serviceMonitor: true, prometheusRule: true, dashboard: true},
}

func (r render) build(t *testing.T) *manifest.Bundle {
	t.Helper()
	var out []byte
	var err error
	if r.helm {
		var files []string
		for _, f := range r.helmValues {
			files = append(files, filepath.Join("helm", "cachee", f))
		}
		out, err = manifest.HelmTemplate(filepath.Join("helm", "cachee"), files)
	} else {
		out, err = manifest.Kustomize(filepath.Join("kubernetes", r.kustomize))
	}
	if err != nil {
		t.Fatal(err)
	}
	b, err := manifest.Decode(r.name, out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestManifests(t *testing.T) {
	known := knownFlags(t)
	for _, r := range renders {
		t.Run(r.name, func(t *testing.T) {
			b := r.build(t)
			checkBundle(t, r, b, known)
		})
	}
}

// cacheePod is a workload that runs cachee, with what its args say.
type cacheePod struct {
	w         manifest.Workload
	c         *corev1.Container
	native    bool
	socket    string
	shm       string
	maxMemory int64
	http      int32
	metrics   int32
}

// argOr is the flag's value, or def when absent (the binary's default).
func argOr(args []string, name, def string) string {
	if v, ok := manifest.Arg(args, name); ok {
		return v
	}
	return def
}

func checkBundle(t *testing.T, r render, b *manifest.Bundle, known map[string]bool) {
	var pods []cacheePod
	for _, w := range b.Workloads() {
		checkImages(t, w)
		c, native := manifest.Container(&w.Pod.Spec, "cachee")
		if c == nil {
			continue
		}
		pods = append(pods, checkCachee(t, b, w, c, native, known))
	}
	if len(pods) == 0 {
		t.Fatal("no workload runs a container named cachee")
	}
	if r.daemonset {
		if len(b.DaemonSets) != 1 || pods[0].w.Kind != "DaemonSet" || len(pods) != 1 {
			t.Fatalf("want cachee in exactly one DaemonSet, got %d DaemonSets and cachee in %d workloads", len(b.DaemonSets), len(pods))
		}
		checkDaemonSet(t, b, pods[0])
	} else if len(b.DaemonSets) != 0 {
		t.Fatalf("unexpected DaemonSet %s", b.DaemonSets[0].Name)
	}
	for _, p := range pods {
		checkServiceMonitor(t, r, b, p)
		if r.l2 {
			checkL2(t, b, p)
		} else if _, ok := manifest.Arg(p.c.Args, "l2"); ok {
			t.Errorf("%s: --l2 in a render without L2", p.w.Name)
		}
	}
	checkPDBs(t, b)
	checkMonitoring(t, r, b)
}

// checkMonitoring: the alerts and the dashboard are there when expected, and only
// then; kustomize's PrometheusRule holds the chart's rules with its defaults, and
// every render has every alert.
func checkMonitoring(t *testing.T, r render, b *manifest.Bundle) {
	t.Helper()
	if !r.dashboard && len(b.ConfigMaps) > 0 {
		t.Errorf("unexpected ConfigMap %s", b.ConfigMaps[0].Name)
	}
	if !r.prometheusRule {
		if len(b.PrometheusRules) > 0 {
			t.Errorf("unexpected PrometheusRule %s", b.PrometheusRules[0].Name)
		}
		return
	}
	if len(b.PrometheusRules) != 1 {
		t.Fatalf("want one PrometheusRule, got %d", len(b.PrometheusRules))
	}
	pr := b.PrometheusRules[0]
	if pr.Labels["app.kubernetes.io/part-of"] != "cachee" {
		t.Errorf("PrometheusRule %s: labels %v", pr.Name, pr.Labels)
	}
	var defaults manifest.RuleFile
	readYAML(t, rulesFile, &defaults)
	alerts := func(f manifest.RuleFile) (names []string) {
		for _, g := range f.Groups {
			for _, rule := range g.Rules {
				names = append(names, rule.Alert)
			}
		}
		return names
	}
	if got, want := alerts(pr.Spec), alerts(defaults); !slices.Equal(got, want) {
		t.Errorf("PrometheusRule %s has alerts %v, want %v", pr.Name, got, want)
	}
	if r.kustomize != "" && !reflect.DeepEqual(pr.Spec, defaults) {
		t.Errorf("PrometheusRule %s differs from %s", pr.Name, rulesFile)
	}
}

func checkImages(t *testing.T, w manifest.Workload) {
	t.Helper()
	all := append(slices.Clone(w.Pod.Spec.InitContainers), w.Pod.Spec.Containers...)
	for _, c := range all {
		i := strings.LastIndex(c.Image, ":")
		if i < 0 || i < strings.LastIndex(c.Image, "/") || c.Image[i+1:] == "latest" {
			t.Errorf("%s/%s: image %q has no pinned tag", w.Name, c.Name, c.Image)
		}
	}
}

// checkCachee checks the cachee container and, in its pod, the app beside it.
func checkCachee(t *testing.T, b *manifest.Bundle, w manifest.Workload, c *corev1.Container, native bool, known map[string]bool) cacheePod {
	t.Helper()
	spec := &w.Pod.Spec
	where := w.Kind + "/" + w.Name + "/cachee"
	flags, err := manifest.Flags(c.Args)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	for _, f := range flags {
		if !known[f.Name] && !slices.Contains(manifest.L2Flags, f.Name) {
			t.Errorf("%s: --%s is neither a flag of cachee nor of the L2 tier", where, f.Name)
		}
	}
	p := cacheePod{w: w, c: c, native: native}
	p.socket = argOr(c.Args, "socket", "/var/run/cachee/cachee.sock")
	p.shm = argOr(c.Args, "shm", "/dev/shm/cachee")
	p.maxMemory, err = manifest.ParseSize(argOr(c.Args, "max-memory", "256mb"))
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	p.http = atoi32(t, argOr(c.Args, "http-port", "6381"))
	p.metrics = atoi32(t, argOr(c.Args, "metrics-port", "9090"))

	// Memory: the limit is at least 1.5x --max-memory; the request is set.
	limit := c.Resources.Limits.Memory()
	if limit.IsZero() {
		t.Fatalf("%s: no memory limit", where)
	}
	if 2*limit.Value() < 3*p.maxMemory {
		t.Errorf("%s: memory limit %s is less than 1.5x --max-memory (%d bytes)", where, limit, p.maxMemory)
	}
	if c.Resources.Requests.Memory().IsZero() {
		t.Errorf("%s: no memory request", where)
	}
	checkGOMEMLIMIT(t, where, c, limit.Value(), p.maxMemory)

	// Probes: the socket's gRPC health at startup, /ready and /health on --http-port.
	if pr := c.StartupProbe; pr == nil || pr.Exec == nil {
		t.Errorf("%s: no exec startup probe", where)
	} else if cmd := pr.Exec.Command; len(cmd) == 0 || path.Base(cmd[0]) != "grpc_health_probe" || !slices.Contains(cmd, "-addr=unix://"+p.socket) {
		t.Errorf("%s: startup probe %q is not grpc_health_probe on unix://%s", where, cmd, p.socket)
	}
	checkHTTPProbe(t, where+" readiness", c, c.ReadinessProbe, "/ready", p.http)
	checkHTTPProbe(t, where+" liveness", c, c.LivenessProbe, "/health", p.http)
	if port := namedPort(c, "metrics"); port != p.metrics {
		t.Errorf("%s: container port \"metrics\" is %d, --metrics-port %d", where, port, p.metrics)
	}

	// The socket's directory is a volume cachee can write.
	sockDir := path.Dir(p.socket)
	m := manifest.MountAt(c, sockDir)
	if m == nil || m.ReadOnly {
		t.Fatalf("%s: the socket directory %s is not a writable mount", where, sockDir)
	}
	sockVol := manifest.Volume(spec, m.Name)
	if sockVol == nil {
		t.Fatalf("%s: mount %s names no volume", where, m.Name)
	}
	// The segment, when shared, is on tmpfs big enough for it.
	var shmVol *corev1.Volume
	if p.shm != "" {
		m := manifest.MountAt(c, p.shm)
		if m == nil {
			t.Fatalf("%s: --shm=%s is not a mount", where, p.shm)
		}
		shmVol = manifest.Volume(spec, m.Name)
		if shmVol == nil || shmVol.EmptyDir == nil || shmVol.EmptyDir.Medium != corev1.StorageMediumMemory {
			t.Fatalf("%s: --shm=%s is not a medium: Memory emptyDir", where, p.shm)
		}
		if sl := shmVol.EmptyDir.SizeLimit; sl == nil || sl.Value() < p.maxMemory {
			t.Errorf("%s: segment volume sizeLimit %v is below --max-memory (%d bytes)", where, sl, p.maxMemory)
		}
	}

	checkSecurity(t, where, spec, c, false)
	if native && (c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways) {
		t.Errorf("%s: an init container without restartPolicy: Always is not a sidecar", where)
	}

	// Shutdown: a preStop sleep, then the drain; the grace period covers both, and
	// with a native sidecar also the app's, which stops first.
	grace, err := time.ParseDuration(argOr(c.Args, "grace-period", "10s"))
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	need := preStopSleep(t, where, c) + grace
	if native {
		for _, a := range spec.Containers {
			need += preStopSleep(t, w.Name+"/"+a.Name, &a) + appShutdown(&a)
		}
	}
	if tgps := spec.TerminationGracePeriodSeconds; tgps == nil || time.Duration(*tgps)*time.Second < need {
		t.Errorf("%s: terminationGracePeriodSeconds %v does not cover preStop and drain (%v)", where, tgps, need)
	}

	// The app beside it (sidecar mode) shares both volumes at the same paths.
	if w.Kind == "Deployment" {
		apps := 0
		for i := range spec.Containers {
			a := &spec.Containers[i]
			if a.Name == "cachee" {
				continue
			}
			apps++
			aw := w.Name + "/" + a.Name
			checkSecurity(t, aw, spec, a, false)
			checkAppMount(t, aw, a, sockDir, sockVol.Name)
			if e := manifest.Env(a, "CACHEE_SOCKET"); e == nil || e.Value != p.socket {
				t.Errorf("%s: CACHEE_SOCKET is %v, cachee's --socket %s", aw, e, p.socket)
			}
			if shmVol != nil {
				checkAppMount(t, aw, a, p.shm, shmVol.Name)
				if e := manifest.Env(a, "CACHEE_SHM"); e == nil || e.Value != p.shm {
					t.Errorf("%s: CACHEE_SHM is %v, cachee's --shm %s", aw, e, p.shm)
				}
			}
		}
		if apps == 0 {
			t.Errorf("%s: no app container beside cachee", w.Name)
		}
		// Both containers reach the 0660 socket: through the pod's fsGroup.
		if sc := spec.SecurityContext; sc == nil || sc.FSGroup == nil {
			t.Errorf("%s: no fsGroup, so the app may not reach the socket", w.Name)
		}
	}
	return p
}

// checkGOMEMLIMIT: GOMEMLIMIT is "$(VAR)MiB" where VAR, defined before it, is this
// container's limits.memory from the downward API with a divisor; the Go heap that
// allows plus the segment fits in the limit.
func checkGOMEMLIMIT(t *testing.T, where string, c *corev1.Container, limit, maxMemory int64) {
	t.Helper()
	gi := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "GOMEMLIMIT" })
	if gi < 0 {
		t.Errorf("%s: no GOMEMLIMIT", where)
		return
	}
	m := regexp.MustCompile(`^\$\(([A-Z0-9_]+)\)MiB$`).FindStringSubmatch(c.Env[gi].Value)
	if m == nil {
		t.Errorf("%s: GOMEMLIMIT %q is not $(VAR)MiB from the downward API", where, c.Env[gi].Value)
		return
	}
	vi := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == m[1] })
	if vi < 0 || vi > gi {
		t.Errorf("%s: GOMEMLIMIT refers to %s, which is not defined before it", where, m[1])
		return
	}
	vf := c.Env[vi].ValueFrom
	if vf == nil || vf.ResourceFieldRef == nil || vf.ResourceFieldRef.Resource != "limits.memory" ||
		(vf.ResourceFieldRef.ContainerName != "" && vf.ResourceFieldRef.ContainerName != c.Name) {
		t.Errorf("%s: %s is not this container's limits.memory from the downward API", where, m[1])
		return
	}
	div := vf.ResourceFieldRef.Divisor
	if div.IsZero() || div.Value()%(1<<20) != 0 {
		t.Errorf("%s: divisor %s is not a whole number of MiB", where, div.String())
		return
	}
	// What the kubelet computes: the limit over the divisor, rounded up, in MiB.
	heapMiB := (limit + div.Value() - 1) / div.Value()
	if heapMiB<<20+maxMemory > limit {
		t.Errorf("%s: GOMEMLIMIT %dMiB plus --max-memory exceeds the limit %d", where, heapMiB, limit)
	}
}

func checkHTTPProbe(t *testing.T, where string, c *corev1.Container, p *corev1.Probe, wantPath string, port int32) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s: no httpGet probe", where)
		return
	}
	if p.HTTPGet.Path != wantPath {
		t.Errorf("%s: path %s, want %s", where, p.HTTPGet.Path, wantPath)
	}
	got := p.HTTPGet.Port.IntVal
	if p.HTTPGet.Port.StrVal != "" {
		got = namedPort(c, p.HTTPGet.Port.StrVal)
	}
	if got != port {
		t.Errorf("%s: port %s is %d, cachee serves HTTP on %d", where, p.HTTPGet.Port.String(), got, port)
	}
}

func namedPort(c *corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

func atoi32(t *testing.T, s string) int32 {
	t.Helper()
	var n int32
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("port %q: %v", s, err)
	}
	return n
}

func checkAppMount(t *testing.T, where string, a *corev1.Container, dir, volume string) {
	t.Helper()
	m := manifest.MountAt(a, dir)
	if m == nil || m.Name != volume {
		t.Errorf("%s: does not mount volume %s at %s as cachee does", where, volume, dir)
		return
	}
	if !m.ReadOnly {
		t.Errorf("%s: mounts %s writable; the app only connects and maps read-only", where, dir)
	}
}

func preStopSleep(t *testing.T, where string, c *corev1.Container) time.Duration {
	t.Helper()
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds < 1 {
		t.Errorf("%s: no preStop sleep", where)
		return 0
	}
	return time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
}

// appShutdown is the example app's --shutdown-timeout (its default is 10s).
func appShutdown(c *corev1.Container) time.Duration {
	d, err := time.ParseDuration(argOr(c.Args, "shutdown-timeout", "10s"))
	if err != nil {
		return 0
	}
	return d
}

// checkSecurity: non-root with a fixed uid, read-only root filesystem, no privilege
// escalation, every capability dropped, the runtime's seccomp profile. chownInit
// allows the one exception, an init container that runs as root with CHOWN alone.
func checkSecurity(t *testing.T, where string, spec *corev1.PodSpec, c *corev1.Container, chownInit bool) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	sc := c.SecurityContext
	if sc == nil {
		t.Errorf("%s: no securityContext", where)
		return
	}
	uid := psc.RunAsUser
	if sc.RunAsUser != nil {
		uid = sc.RunAsUser
	}
	nonRoot := psc.RunAsNonRoot
	if sc.RunAsNonRoot != nil {
		nonRoot = sc.RunAsNonRoot
	}
	if chownInit {
		if uid == nil || *uid != 0 || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Add, []corev1.Capability{"CHOWN"}) {
			t.Errorf("%s: the root init container must add CHOWN and nothing else", where)
		}
	} else {
		if nonRoot == nil || !*nonRoot || uid == nil || *uid == 0 {
			t.Errorf("%s: not runAsNonRoot with a fixed non-zero uid", where)
		}
		if sc.Capabilities != nil && len(sc.Capabilities.Add) > 0 {
			t.Errorf("%s: adds capabilities %v", where, sc.Capabilities.Add)
		}
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: root filesystem is writable", where)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: allows privilege escalation", where)
	}
	if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("%s: does not drop ALL capabilities", where)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("%s: privileged", where)
	}
	if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod seccomp profile is not RuntimeDefault", where)
	}
}

// checkDaemonSet: the node cache's socket is in a hostPath, no port is published on
// the node, nodes roll one at a time, and the app reaches the socket at the same path.
func checkDaemonSet(t *testing.T, b *manifest.Bundle, p cacheePod) {
	t.Helper()
	ds := b.DaemonSets[0]
	spec := &ds.Spec.Template.Spec
	sockDir := path.Dir(p.socket)
	vol := manifest.Volume(spec, manifest.MountAt(p.c, sockDir).Name)
	if vol.HostPath == nil {
		t.Fatalf("DaemonSet %s: socket volume %s is not a hostPath", ds.Name, vol.Name)
	}
	if ru := ds.Spec.UpdateStrategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 1 {
		t.Errorf("DaemonSet %s: rolling update is not one node at a time", ds.Name)
	}
	if spec.HostNetwork {
		t.Errorf("DaemonSet %s: hostNetwork", ds.Name)
	}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		for _, port := range c.Ports {
			if port.HostPort != 0 {
				t.Errorf("DaemonSet %s/%s: hostPort %d publishes an unauthenticated cache on the node", ds.Name, c.Name, port.HostPort)
			}
		}
		if c.Name != "cachee" {
			checkSecurity(t, "DaemonSet "+ds.Name+"/"+c.Name, spec, &c, true)
		}
	}
	if p.shm != "" {
		t.Errorf("DaemonSet %s: --shm=%s shares a segment; node caches keep it private", ds.Name, p.shm)
	}
	group := spec.SecurityContext.RunAsGroup
	// Every Deployment is an app of the node cache: same hostPath, same mount path.
	apps := 0
	for _, d := range b.Deployments {
		dspec := &d.Spec.Template.Spec
		for i := range dspec.Containers {
			a := &dspec.Containers[i]
			m := manifest.MountAt(a, sockDir)
			if m == nil {
				continue
			}
			apps++
			av := manifest.Volume(dspec, m.Name)
			if av == nil || av.HostPath == nil || av.HostPath.Path != vol.HostPath.Path {
				t.Errorf("%s/%s: %s is not the DaemonSet's hostPath %s", d.Name, a.Name, sockDir, vol.HostPath.Path)
			}
			if !m.ReadOnly {
				t.Errorf("%s/%s: mounts the node's socket directory writable", d.Name, a.Name)
			}
			if e := manifest.Env(a, "CACHEE_SOCKET"); e == nil || e.Value != p.socket {
				t.Errorf("%s/%s: CACHEE_SOCKET %v, DaemonSet's --socket %s", d.Name, a.Name, e, p.socket)
			}
			psc := dspec.SecurityContext
			if group == nil || psc == nil || !((psc.RunAsGroup != nil && *psc.RunAsGroup == *group) ||
				(psc.FSGroup != nil && *psc.FSGroup == *group) || slices.Contains(psc.SupplementalGroups, *group)) {
				t.Errorf("%s: not in the DaemonSet's group %v, so it cannot open the 0660 socket", d.Name, group)
			}
			checkSecurity(t, d.Name+"/"+a.Name, dspec, a, false)
		}
	}
	if apps == 0 {
		t.Errorf("no Deployment mounts the DaemonSet's socket")
	}
}

// checkServiceMonitor: when expected, a ServiceMonitor scrapes "metrics" on a Service
// that selects the pod and targets cachee's metrics port.
func checkServiceMonitor(t *testing.T, r render, b *manifest.Bundle, p cacheePod) {
	t.Helper()
	if !r.serviceMonitor {
		if len(b.ServiceMonitors) > 0 {
			t.Errorf("unexpected ServiceMonitor %s", b.ServiceMonitors[0].Name)
		}
		return
	}
	if len(b.ServiceMonitors) != 1 {
		t.Fatalf("want one ServiceMonitor, got %d", len(b.ServiceMonitors))
	}
	sm := b.ServiceMonitors[0]
	if !slices.ContainsFunc(sm.Spec.Endpoints, func(e manifest.Endpoint) bool { return e.Port == "metrics" && e.Path == "/metrics" }) {
		t.Fatalf("ServiceMonitor %s does not scrape port metrics at /metrics", sm.Name)
	}
	smSel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	podLabels := labels.Set(p.w.Pod.Labels)
	for _, s := range b.Services {
		if !smSel.Matches(labels.Set(s.Labels)) || len(s.Spec.Selector) == 0 ||
			!labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) {
			continue
		}
		for _, port := range s.Spec.Ports {
			if port.Name != "metrics" {
				continue
			}
			target := port.TargetPort.IntVal
			if port.TargetPort.StrVal != "" {
				target = namedPort(p.c, port.TargetPort.StrVal)
			}
			if target == p.metrics {
				return
			}
		}
	}
	t.Errorf("%s: no Service that ServiceMonitor %s selects routes \"metrics\" to cachee's port %d", p.w.Name, sm.Name, p.metrics)
}

// checkL2: --l2 (or CACHEE_L2, with the password from a Secret) and --prewarm-source
// are redis URLs; a host that is a Service of the bundle has the port, and the L2
// it runs is locked down like cachee.
func checkL2(t *testing.T, b *manifest.Bundle, p cacheePod) {
	t.Helper()
	where := p.w.Name + "/cachee"
	l2, ok := manifest.Arg(p.c.Args, "l2")
	if !ok {
		e := manifest.Env(p.c, "CACHEE_L2")
		pw := manifest.Env(p.c, "L2_PASSWORD")
		if e == nil || pw == nil || pw.ValueFrom == nil || pw.ValueFrom.SecretKeyRef == nil || !strings.Contains(e.Value, ":$(L2_PASSWORD)@") {
			t.Fatalf("%s: no --l2, nor CACHEE_L2 with the password from a Secret", where)
		}
		l2 = strings.Replace(e.Value, "$(L2_PASSWORD)", "secret", 1)
	}
	for _, flag := range []string{"l1-ttl", "l2-write", "l2-invalidate", "l2-timeout", "prewarm-source", "prewarm-keys", "prewarm-timeout"} {
		if _, ok := manifest.Arg(p.c.Args, flag); !ok {
			t.Errorf("%s: L1/L2 without --%s", where, flag)
		}
	}
	for _, raw := range []string{l2, argOr(p.c.Args, "prewarm-source", "")} {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Port() == "" {
			t.Errorf("%s: %q is not redis://HOST:PORT", where, raw)
			continue
		}
		for _, s := range b.Services {
			if s.Name != u.Hostname() {
				continue
			}
			if !slices.ContainsFunc(s.Spec.Ports, func(sp corev1.ServicePort) bool { return fmt.Sprint(sp.Port) == u.Port() }) {
				t.Errorf("%s: Service %s has no port %s", where, s.Name, u.Port())
			}
			found := false
			for _, w := range b.Workloads() {
				if labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(w.Pod.Labels)) {
					found = true
					for i := range w.Pod.Spec.Containers {
						checkSecurity(t, w.Name+"/"+w.Pod.Spec.Containers[i].Name, &w.Pod.Spec, &w.Pod.Spec.Containers[i], false)
						if lim := w.Pod.Spec.Containers[i].Resources.Limits.Memory(); lim.IsZero() {
							t.Errorf("%s: L2 without a memory limit", w.Name)
						}
					}
				}
			}
			if !found {
				t.Errorf("Service %s selects no workload", s.Name)
			}
		}
	}
}

// checkPDBs: every Deployment that serves the app has a PDB of one pod at a time.
func checkPDBs(t *testing.T, b *manifest.Bundle) {
	t.Helper()
	for _, d := range b.Deployments {
		if c, _ := manifest.Container(&d.Spec.Template.Spec, "valkey"); c != nil {
			continue // the single-replica demo L2
		}
		ok := false
		for _, pdb := range b.PDBs {
			sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
			if err != nil {
				t.Fatal(err)
			}
			if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 || pdb.Spec.MinAvailable != nil {
					t.Errorf("PDB %s: want maxUnavailable: 1 alone", pdb.Name)
				}
				ok = true
			}
		}
		if !ok {
			t.Errorf("Deployment %s has no PodDisruptionBudget", d.Name)
		}
	}
}
