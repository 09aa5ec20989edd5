package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"

	"github.com/cachee/cachee/deploy/internal/manifest"
)

// TestHelmRejects: values that would OOM-kill the sidecar, or that the schema does not
// know, fail the render instead of producing a manifest.
func TestHelmRejects(t *testing.T) {
	chart := filepath.Join("helm", "cachee")
	for _, tc := range []struct {
		name string
		sets []string
		want string
	}{
		{"limit below 1.5x", []string{"memory.limitMiB=383"}, "at least 1.5x"},
		{"heap divisor too small", []string{"memory.goHeapDivisor=2"}, "leaves no room"},
		{"unknown value", []string{"memory.maxMemory=1"}, "additional properties"},
		{"unknown eviction", []string{"eviction=lfu"}, "eviction"},
		{"unknown mode", []string{"mode=central"}, "mode"},
		{"L2 without a URL", []string{"l2.enabled=true"}, "l2.url"},
		{"bad L2 URL", []string{"l2.enabled=true", "l2.url=http://x:1"}, "l2/url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := manifest.HelmTemplate(chart, nil, tc.sets...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("helm template --set %v: err %v, want one that mentions %q", tc.sets, err, tc.want)
			}
		})
	}
}

// TestHelmSidecarSnippet renders a user's own chart that depends on cachee's and adds
// the sidecar to its Deployment with the named templates, as _helpers.tpl documents,
// and holds the result to the same invariants as the chart's own Deployment.
func TestHelmSidecarSnippet(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.TrimLeft(body, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("Chart.yaml", `
apiVersion: v2
name: shop
version: 1.0.0
dependencies:
- name: cachee
  version: 0.1.0
`)
	// The dependency's own objects are turned off: only the snippet is used.
	write("values.yaml", `
cachee:
  app:
    enabled: false
  podDisruptionBudget:
    enabled: false
  memory:
    maxMemoryMiB: 512
    limitMiB: 768
`)
	write("templates/deployment.yaml", `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
spec:
  selector:
    matchLabels: {app: shop}
  template:
    metadata:
      labels: {app: shop}
    spec:
      terminationGracePeriodSeconds: 40
      securityContext: {{- include "cachee.sidecar.podSecurityContext" (dict "values" .Values.cachee) | nindent 8 }}
      initContainers:
      - {{ include "cachee.sidecar.container" (dict "values" .Values.cachee) | indent 8 | trim }}
      containers:
      - name: shop
        image: example.com/shop:1.2.3
        args: [--shutdown-timeout=10s]
        env: {{- include "cachee.sidecar.appEnv" (dict "values" .Values.cachee) | nindent 10 }}
        lifecycle:
          preStop:
            sleep: {seconds: 5}
        securityContext:
          runAsNonRoot: true
          readOnlyRootFilesystem: true
          allowPrivilegeEscalation: false
          capabilities: {drop: [ALL]}
        volumeMounts: {{- include "cachee.sidecar.appVolumeMounts" (dict "values" .Values.cachee) | nindent 10 }}
      volumes: {{- include "cachee.sidecar.volumes" (dict "values" .Values.cachee) | nindent 8 }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: shop
spec:
  maxUnavailable: 1
  selector:
    matchLabels: {app: shop}
`)
	// The dependency goes in charts/, as `helm dependency build` would put it.
	src, err := filepath.Abs(filepath.Join("helm", "cachee"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "charts"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-r", src, filepath.Join(dir, "charts", "cachee")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	out, err := manifest.HelmTemplate(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := manifest.Decode("snippet", out)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Deployments) != 1 || b.Deployments[0].Name != "shop" {
		t.Fatalf("want the user's Deployment alone, got %d Deployments", len(b.Deployments))
	}
	checkBundle(t, render{name: "snippet"}, b, knownFlags(t))
	c, _ := manifest.Container(&b.Deployments[0].Spec.Template.Spec, "cachee")
	if v, _ := manifest.Arg(c.Args, "max-memory"); v != "512mb" {
		t.Errorf("--max-memory=%s, want the parent's 512mb", v)
	}
}

// TestDecodeStrict: a field the API does not have fails the decode.
func TestDecodeStrict(t *testing.T) {
	const doc = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers:
      - name: c
        image: c:1
        readinessProbes: {}
`
	if _, err := manifest.Decode("typo", []byte(doc)); err == nil || !strings.Contains(err.Error(), "readinessProbes") {
		t.Fatalf("decode of a misspelt field: %v", err)
	}
	if _, err := manifest.Decode("kind", []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n")); err == nil {
		t.Fatal("an unexpected kind decoded")
	}
}

// TestHelmLint runs Helm's own chart linter on the chart, with each CI values file.
func TestHelmLint(t *testing.T) {
	chart := filepath.Join("helm", "cachee")
	files, err := filepath.Glob(filepath.Join(chart, "ci", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append([]string{""}, files...) {
		vals := map[string]any{}
		if f != "" {
			v, err := chartutil.ReadValuesFile(f)
			if err != nil {
				t.Fatal(err)
			}
			vals = v.AsMap()
		}
		kv := manifest.KubeVersion
		res := lint.AllWithKubeVersion(chart, vals, "default", &kv)
		for _, m := range res.Messages {
			// INFO is advice (an icon for Chart.yaml); warnings and errors fail.
			if m.Severity > support.InfoSev {
				t.Errorf("helm lint with %q: %s", f, m)
			}
		}
	}
}
