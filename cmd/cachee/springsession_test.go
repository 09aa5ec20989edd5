package main_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestSpringSession runs Spring Session's Redis repository, over Lettuce, against the
// binary's RESP port (test/springsession): sessions stored as hashes, one attribute
// changed and one removed with HSET and HDEL, the id changed with RENAME, a timeout with
// PEXPIRE, and DEL. It then checks the stored hash from outside.
func TestSpringSession(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Maven project")
	}
	mvn := tool(t, "CACHEE_MVN", "mvn")
	java := tool(t, "CACHEE_JAVA", "java")
	dir, err := filepath.Abs("../../test/springsession")
	if err != nil {
		t.Fatal(err)
	}
	build := exec.Command(mvn, "-B", "-q", "-ntp", "compile",
		"org.apache.maven.plugins:maven-dependency-plugin:"+makeVar(t, "MAVEN_DEPENDENCY_PLUGIN_VERSION")+":build-classpath",
		"-Dmdep.outputFile=target/classpath.txt")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building test/springsession: %v\n%s", err, out)
	}
	cp, err := os.ReadFile(filepath.Join(dir, "target", "classpath.txt"))
	if err != nil {
		t.Fatal(err)
	}
	p := start(t)
	port := p.tcp[strings.LastIndexByte(p.tcp, ':')+1:]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := exec.CommandContext(ctx, java, "-cp", filepath.Join(dir, "target", "classes")+":"+strings.TrimSpace(string(cp)),
		"dev.cachee.springsession.Main", port)
	out, err := run.CombinedOutput()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "ok") {
		t.Fatalf("Spring Session against cachee: %v\n%s", err, out)
	}
	var first, renamed string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "id" {
			first, renamed = f[1], f[2]
		}
	}
	rc := redis.NewClient(&redis.Options{Addr: p.tcp})
	defer rc.Close()
	key := "spring:session:sessions:" + renamed
	if typ, err := rc.Type(ctx, key).Result(); err != nil || typ != "hash" {
		t.Fatalf("TYPE %s = %q %v, want a hash", key, typ, err)
	}
	fields, err := rc.HKeys(ctx, key).Result()
	// (A removed attribute stays as a field with an empty value: Spring Session's way.)
	if err != nil || !slices.Contains(fields, "sessionAttr:cart") || !slices.Contains(fields, "maxInactiveInterval") {
		t.Fatalf("fields of %s: %v %v", key, fields, err)
	}
	if ttl, err := rc.TTL(ctx, key).Result(); err != nil || ttl <= 29*time.Minute || ttl > 30*time.Minute {
		t.Fatalf("TTL %s = %v %v, want the 30 min timeout", key, ttl, err)
	}
	if n, _ := rc.Exists(ctx, "spring:session:sessions:"+first).Result(); n != 0 {
		t.Fatal("the session's old id still exists after changeSessionId")
	}
}

// makeVar is the value of a simple variable of the Makefile ("NAME := value"), which
// pins the versions of the tools the build fetches.
func makeVar(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" := "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("the Makefile sets no %s", name)
	return ""
}
