package deploy_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/cachee/cachee/deploy/internal/manifest"
)

var update = flag.Bool("update", false, "rewrite the files generated from the Helm chart's PrometheusRule")

// The alerts' one source is the chart's templates/prometheusrule.yaml. These files are
// rendered from it with the default values.
var (
	rulesFile     = filepath.Join("monitoring", "rules.yaml")
	rulesTestFile = filepath.Join("monitoring", "rules_test.yaml")
	componentFile = filepath.Join("kubernetes", "components", "prometheusrule", "prometheusrule.yaml")
	dashboardFile = filepath.Join("helm", "cachee", "dashboards", "cachee.json")
)

const generatedHeader = "# Generated from deploy/helm/cachee/templates/prometheusrule.yaml with the chart's\n" +
	"# default values; edit the template, then: cd deploy && go test -run TestMonitoringGenerated -update\n"

// chartRules renders the chart's PrometheusRule with the given values files and sets.
func chartRules(t *testing.T, files []string, sets ...string) *manifest.PrometheusRule {
	t.Helper()
	out, err := manifest.HelmTemplate(filepath.Join("helm", "cachee"), files, append([]string{"prometheusRule.enabled=true"}, sets...)...)
	if err != nil {
		t.Fatal(err)
	}
	b, err := manifest.Decode("rules", out)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.PrometheusRules) != 1 {
		t.Fatalf("%d PrometheusRules rendered", len(b.PrometheusRules))
	}
	return b.PrometheusRules[0]
}

// TestMonitoringGenerated: the plain rule file and the kustomize component hold the
// chart's rules, with its defaults.
func TestMonitoringGenerated(t *testing.T) {
	pr := chartRules(t, nil)
	spec, err := yaml.Marshal(pr.Spec)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := yaml.Marshal(manifest.PrometheusRule{
		TypeMeta: metav1.TypeMeta{APIVersion: "monitoring.coreos.com/v1", Kind: "PrometheusRule"},
		ObjectMeta: metav1.ObjectMeta{Name: "cachee", Labels: map[string]string{
			"app.kubernetes.io/part-of": "cachee",
		}},
		Spec: pr.Spec,
	})
	if err != nil {
		t.Fatal(err)
	}
	// ObjectMeta marshals an empty creationTimestamp; the API server fills it in.
	obj = bytes.Replace(obj, []byte("  creationTimestamp: null\n"), nil, 1)
	for _, f := range []struct {
		path string
		want []byte
	}{{rulesFile, spec}, {componentFile, obj}} {
		want := append([]byte(generatedHeader), f.want...)
		if *update {
			if err := os.WriteFile(f.path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the chart's rules: cd deploy && go test -run TestMonitoringGenerated -update", f.path)
		}
	}
}

// TestPromtool checks the rules with promtool, and runs their unit tests: for every
// alert, input series that fire it and series that do not.
func TestPromtool(t *testing.T) {
	promtool := tool(t, "PROMTOOL", "promtool")
	run := func(args ...string) {
		t.Helper()
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
	}
	run("check", "rules", rulesFile)
	run("test", "rules", rulesTestFile)

	// The rules as other values render them check too.
	spec, err := yaml.Marshal(chartRules(t, []string{filepath.Join("helm", "cachee", "ci", "monitoring-values.yaml")}).Spec)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(other, spec, 0o644); err != nil {
		t.Fatal(err)
	}
	run("check", "rules", other)

	// Every alert has a test case that fires it and one where it stays quiet.
	var rules manifest.RuleFile
	readYAML(t, rulesFile, &rules)
	var tests struct {
		Tests []struct {
			Name       string `json:"name"`
			AlertTests []struct {
				Alertname string            `json:"alertname"`
				ExpAlerts []json.RawMessage `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	readYAML(t, rulesTestFile, &tests)
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, at := range tc.AlertTests {
			if len(at.ExpAlerts) > 0 {
				fires[at.Alertname] = true
			} else {
				quiet[at.Alertname] = true
			}
		}
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" && (!fires[r.Alert] || !quiet[r.Alert]) {
				t.Errorf("%s: rules_test.yaml has a case that fires it: %v, one that does not: %v", r.Alert, fires[r.Alert], quiet[r.Alert])
			}
		}
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		Title      string `json:"title"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// TestDashboard: every panel queries the chosen data source, and the chart ships the
// dashboard as it is in the repository.
func TestDashboard(t *testing.T) {
	d := readDashboard(t)
	if d.UID == "" || len(d.Panels) < 10 {
		t.Fatalf("dashboard uid %q with %d panels", d.UID, len(d.Panels))
	}
	for _, p := range d.Panels {
		if p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: data source %q, %d queries", p.Title, p.Datasource.UID, len(p.Targets))
		}
		for _, tg := range p.Targets {
			if !strings.Contains(tg.Expr, `pod=~"$pod"`) && !strings.Contains(tg.Expr, "cachee_build_info") {
				t.Errorf("panel %q: %s ignores the pod selector", p.Title, tg.Expr)
			}
		}
	}
	out, err := manifest.HelmTemplate(filepath.Join("helm", "cachee"), []string{filepath.Join("helm", "cachee", "ci", "monitoring-values.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := manifest.Decode("dashboard", out)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.ConfigMaps) != 1 {
		t.Fatalf("%d ConfigMaps, want the dashboard's", len(b.ConfigMaps))
	}
	cm := b.ConfigMaps[0]
	file, _ := os.ReadFile(dashboardFile)
	if cm.Labels["grafana_dashboard"] != "1" || cm.Annotations["grafana_folder"] != "Caches" ||
		cm.Data["cachee.json"] != strings.TrimRight(string(file), "\n") {
		t.Errorf("ConfigMap %s: labels %v, annotations %v, the JSON as in %s: %v", cm.Name, cm.Labels, cm.Annotations,
			dashboardFile, cm.Data["cachee.json"] == strings.TrimRight(string(file), "\n"))
	}
}

// metricName finds the series names a PromQL expression reads, once labelClauses has
// removed the label names and matchers that look like them.
var (
	metricName   = regexp.MustCompile(`\b((?:cachee|process|go|grpc)_[a-zA-Z0-9_]+)\b`)
	labelClauses = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)|\{[^}]*\}`)
)

// monitoredMetrics is every metric name a rule or a dashboard query names, with
// where it is named.
func monitoredMetrics(t *testing.T) map[string][]string {
	t.Helper()
	names := map[string][]string{}
	add := func(where, expr string) {
		for _, m := range metricName.FindAllStringSubmatch(labelClauses.ReplaceAllString(expr, " "), -1) {
			names[m[1]] = append(names[m[1]], where)
		}
	}
	var rules manifest.RuleFile
	readYAML(t, rulesFile, &rules)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			add("rule "+r.Alert, r.Expr)
		}
	}
	d := readDashboard(t)
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			add("panel "+p.Title, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(map[string]any); ok {
			add("variable "+v.Name, fmt.Sprint(q["query"]))
		}
	}
	if len(names) < 20 {
		t.Fatalf("found %d metric names in the rules and the dashboard; the pattern or the files changed", len(names))
	}
	return names
}

// scrapedFamilies reads the metric families a /metrics page declares (# TYPE lines)
// and the series names each produces: a histogram's _bucket, _sum and _count, a
// summary's _sum and _count beside its own name.
func scrapedFamilies(page string) map[string]string {
	series := map[string]string{}
	for _, line := range strings.Split(page, "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != "#" || f[1] != "TYPE" {
			continue
		}
		name, typ := f[2], f[3]
		series[name] = typ
		switch typ {
		case "histogram":
			series[name+"_bucket"], series[name+"_sum"], series[name+"_count"] = typ, typ, typ
		case "summary":
			series[name+"_sum"], series[name+"_count"] = typ, typ
		}
	}
	return series
}

// checkMetricsExported fails for every name a rule or a panel reads that the scraped
// page lacks.
func checkMetricsExported(t *testing.T, page string) {
	t.Helper()
	scraped := scrapedFamilies(page)
	names := monitoredMetrics(t)
	var missing []string
	for name, where := range names {
		if _, ok := scraped[name]; !ok {
			missing = append(missing, fmt.Sprintf("%s (%s)", name, strings.Join(slices.Compact(where), ", ")))
		}
	}
	slices.Sort(missing)
	for _, m := range missing {
		t.Errorf("not exported by cachee: %s", m)
	}
}

// TestMonitoredMetricsExported scrapes a running cachee, with an L2 (a real
// redis-server) and the hit-rate gate on, after a read over each protocol, and finds
// every metric a rule or a dashboard panel names.
func TestMonitoredMetricsExported(t *testing.T) {
	cachee, _ := binaries(t)
	redisServer, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("DEPLOY_TOOLS_REQUIRED") == "1" {
			t.Fatal("redis-server not found (make deps installs it)")
		}
		t.Skip("redis-server not found: apt-get install redis-server")
	}
	redisPort := freePort(t)
	redis := exec.Command(redisServer, "--port", redisPort, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := redis.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { redis.Process.Kill(); redis.Wait() })
	waitDial(t, "127.0.0.1:"+redisPort)

	dir := t.TempDir()
	srv := exec.Command(cachee, "--socket="+filepath.Join(dir, "c.sock"), "--port=0", "--http-port=0", "--metrics-port=0",
		"--max-memory=8mb", "--shm=", "--log-format=json", "--l2=redis://127.0.0.1:"+redisPort,
		"--ready-hit-rate=0.99", "--ready-max-wait=10m")
	var logs syncBuffer
	srv.Stderr = &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	addrs := waitServing(t, &logs)

	// A read over gRPC (cachee's own client) and one over RESP.
	if out, err := exec.Command(cachee, "get", "nothing", "--addr=unix://"+filepath.Join(dir, "c.sock")).CombinedOutput(); err == nil {
		t.Fatalf("cachee get of a missing key succeeded: %s", out)
	}
	respCall(t, addrs.TCP, "*2\r\n$3\r\nGET\r\n$7\r\nnothing\r\n")
	checkMetricsExported(t, httpGet(t, "http://"+addrs.Metrics+"/metrics"))
}
