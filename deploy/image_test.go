package deploy_test

import (
	"bufio"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dockerStage is one FROM ... of the Dockerfile, with what it runs and copies.
type dockerStage struct {
	from, name string
	env        []string // KEY=VALUE from ENV lines
	runs       []string
	copies     []string
	user       string
}

// parseDockerfile reads the instructions the tests care about; continuation lines
// are not used in this Dockerfile, and a test below keeps it that way.
func parseDockerfile(t *testing.T) []dockerStage {
	t.Helper()
	f, err := os.Open(filepath.Join("docker", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages []dockerStage
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			t.Fatalf("Dockerfile: continuation line %q; keep each instruction on one line so the Makefile can mirror it", line)
		}
		instr, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(instr) {
		case "FROM":
			s := dockerStage{from: rest}
			if img, name, ok := strings.Cut(rest, " AS "); ok {
				s.from, s.name = img, name
			}
			stages = append(stages, s)
		case "ENV":
			stages[len(stages)-1].env = append(stages[len(stages)-1].env, strings.Fields(rest)...)
		case "RUN":
			stages[len(stages)-1].runs = append(stages[len(stages)-1].runs, rest)
		case "COPY":
			stages[len(stages)-1].copies = append(stages[len(stages)-1].copies, rest)
		case "USER":
			stages[len(stages)-1].user = rest
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return stages
}

// TestDockerfileMatchesMakefile: every go build/install that the Dockerfile's build
// stage runs, `make image-binary` runs too, with the same flags, environment and
// versions (make -n prints its commands with variables expanded).
func TestDockerfileMatchesMakefile(t *testing.T) {
	stages := parseDockerfile(t)
	build := stages[0]
	if build.name != "build" || !strings.HasPrefix(build.from, "golang:") {
		t.Fatalf("first stage is %q AS %q, want the golang build stage", build.from, build.name)
	}
	cmd := exec.Command("make", "--no-print-directory", "-n", "image-binary")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make -n image-binary: %v", err)
	}
	dry := strings.Join(strings.Fields(string(out)), " ")
	outDir, err := filepath.Abs(filepath.Join(root, ".tmp", "image"))
	if err != nil {
		t.Fatal(err)
	}
	goCmds := 0
	for _, run := range build.runs {
		if !strings.Contains(run, "go build") && !strings.Contains(run, "go install") {
			continue
		}
		goCmds++
		want := strings.ReplaceAll(run, "/out", outDir)
		if !strings.Contains(dry, strings.Join(strings.Fields(want), " ")) {
			t.Errorf("Dockerfile runs\n\t%s\nbut make image-binary does not run\n\t%s", run, want)
		}
	}
	if goCmds < 3 {
		t.Errorf("the build stage has %d go commands, want cachee, grpc-health-probe and the example app", goCmds)
	}
	for _, kv := range build.env {
		if !strings.Contains(dry, kv) {
			t.Errorf("Dockerfile sets ENV %s; make image-binary does not", kv)
		}
	}
	if !strings.Contains(strings.Join(build.env, " "), "CGO_ENABLED=0") {
		t.Error("the build stage does not set CGO_ENABLED=0")
	}
}

// TestDockerfileImage: the runtime image is distroless (or scratch), runs as a numeric
// non-root user, and has grpc_health_probe where the manifests' probe calls it.
func TestDockerfileImage(t *testing.T) {
	stages := parseDockerfile(t)
	final := stages[len(stages)-1]
	if !strings.HasPrefix(final.from, "gcr.io/distroless/static") && final.from != "scratch" {
		t.Errorf("final stage FROM %s, want distroless static or scratch", final.from)
	}
	if !regexp.MustCompile(`^[1-9][0-9]*(:[1-9][0-9]*)?$`).MatchString(final.user) {
		t.Errorf("final stage USER %q, want a numeric non-root uid (runAsNonRoot checks it without /etc/passwd)", final.user)
	}
	probe := ""
	for _, c := range final.copies {
		if f := strings.Fields(c); len(f) == 3 && strings.HasSuffix(f[2], "/grpc_health_probe") {
			probe = f[2]
		}
	}
	if probe == "" {
		t.Fatal("the image has no grpc_health_probe")
	}
	// The startup probe of every render calls that path.
	b := renders[0].build(t)
	for _, w := range b.Workloads() {
		for _, c := range append(w.Pod.Spec.InitContainers, w.Pod.Spec.Containers...) {
			if c.StartupProbe != nil && c.StartupProbe.Exec != nil && c.StartupProbe.Exec.Command[0] != probe {
				t.Errorf("%s/%s: probe runs %s, the image has %s", w.Name, c.Name, c.StartupProbe.Exec.Command[0], probe)
			}
		}
	}
}

// TestImageBinariesStatic checks what `make image-binary` built: static ELF files
// (no interpreter, no shared libraries), so they run on distroless/static or scratch.
func TestImageBinariesStatic(t *testing.T) {
	dir := os.Getenv("IMAGE_OUT")
	if dir == "" {
		if os.Getenv("DEPLOY_TOOLS_REQUIRED") == "1" {
			t.Fatal("IMAGE_OUT not set: make test-deploy runs image-binary first")
		}
		t.Skip("IMAGE_OUT not set: run make image-binary and pass IMAGE_OUT=.tmp/image")
	}
	for _, name := range []string{"cachee", "grpc-health-probe", "example-app"} {
		f, err := elf.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s has an ELF interpreter: dynamically linked", name)
			}
		}
		if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
			t.Errorf("%s needs shared libraries %v (%v)", name, libs, err)
		}
		if syms, err := f.Symbols(); err == nil && len(syms) > 0 {
			t.Errorf("%s has a symbol table: built without -s", name)
		}
		f.Close()
	}
}
