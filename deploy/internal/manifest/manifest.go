// Package manifest renders cachee's Kubernetes manifests (kustomize build, helm
// template) and decodes them strictly into the Kubernetes API types, so that a field
// the API does not have fails the decode instead of being dropped on apply.
package manifest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// ServiceMonitor is the part of monitoring.coreos.com/v1 ServiceMonitor that cachee's
// manifests use. The operator's own Go types pull in controller-runtime; this struct
// is decoded strictly too, so a field it lacks fails the decode, and is added here
// (from the operator's CRD) when a manifest starts to use it.
type ServiceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ServiceMonitorSpec `json:"spec"`
}

// ServiceMonitorSpec selects Services and names the ports to scrape.
type ServiceMonitorSpec struct {
	Selector          metav1.LabelSelector `json:"selector"`
	NamespaceSelector *NamespaceSelector   `json:"namespaceSelector,omitempty"`
	Endpoints         []Endpoint           `json:"endpoints"`
	JobLabel          string               `json:"jobLabel,omitempty"`
}

// NamespaceSelector picks the namespaces a ServiceMonitor looks in.
type NamespaceSelector struct {
	Any        bool     `json:"any,omitempty"`
	MatchNames []string `json:"matchNames,omitempty"`
}

// Endpoint is one scrape target of a ServiceMonitor.
type Endpoint struct {
	Port          string `json:"port,omitempty"`
	Path          string `json:"path,omitempty"`
	Scheme        string `json:"scheme,omitempty"`
	Interval      string `json:"interval,omitempty"`
	ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
}

// Bundle is every object of one render, by kind.
type Bundle struct {
	Name            string
	Deployments     []*appsv1.Deployment
	DaemonSets      []*appsv1.DaemonSet
	Services        []*corev1.Service
	PDBs            []*policyv1.PodDisruptionBudget
	ServiceMonitors []*ServiceMonitor
}

// Decode splits a multi-document YAML stream and decodes each document strictly by
// its apiVersion and kind. A kind it does not know is an error: every object a render
// produces is checked.
func Decode(name string, data []byte) (*Bundle, error) {
	b := &Bundle{Name: name}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, i, err)
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, i, err)
		}
		if tm.APIVersion == "" && tm.Kind == "" {
			if j, err := yaml.YAMLToJSON(doc); err == nil && string(j) == "null" {
				continue // comments only, as helm emits for empty templates
			}
			return nil, fmt.Errorf("%s: document %d has no apiVersion and kind", name, i)
		}
		var obj any
		switch tm.GroupVersionKind().String() {
		case "apps/v1, Kind=Deployment":
			o := new(appsv1.Deployment)
			b.Deployments, obj = append(b.Deployments, o), o
		case "apps/v1, Kind=DaemonSet":
			o := new(appsv1.DaemonSet)
			b.DaemonSets, obj = append(b.DaemonSets, o), o
		case "/v1, Kind=Service":
			o := new(corev1.Service)
			b.Services, obj = append(b.Services, o), o
		case "policy/v1, Kind=PodDisruptionBudget":
			o := new(policyv1.PodDisruptionBudget)
			b.PDBs, obj = append(b.PDBs, o), o
		case "monitoring.coreos.com/v1, Kind=ServiceMonitor":
			o := new(ServiceMonitor)
			b.ServiceMonitors, obj = append(b.ServiceMonitors, o), o
		default:
			return nil, fmt.Errorf("%s: document %d: unexpected %s %s", name, i, tm.APIVersion, tm.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			return nil, fmt.Errorf("%s: document %d (%s): %w", name, i, tm.Kind, err)
		}
	}
	return b, nil
}

// Kustomize runs `kustomize build dir`.
func Kustomize(bin, dir string) ([]byte, error) {
	return run(exec.Command(bin, "build", dir))
}

// HelmTemplate runs `helm template` on a chart with values files and --set pairs. The
// Kubernetes version is one that has native sidecars and the preStop sleep action.
func HelmTemplate(bin, chart string, valuesFiles []string, sets ...string) ([]byte, error) {
	args := []string{"template", "cachee", chart, "--kube-version", "1.33.0"}
	for _, f := range valuesFiles {
		args = append(args, "--values", f)
	}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	return run(exec.Command(bin, args...))
}

func run(cmd *exec.Cmd) ([]byte, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
