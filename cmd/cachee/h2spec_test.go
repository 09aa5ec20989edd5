package main_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// h2specExempt are the h2spec cases that cannot pass on cachee's gRPC port, with why.
// Every other case must pass. h2spec speaks plain HTTP: it sends GET requests, which a
// gRPC server answers with HEADERS alone (grpc-go: HTTP 405 and a grpc-status), so the
// cases that need an answer with DATA either fail (the generic ones below) or are
// skipped by h2spec itself (the flow-control ones below); server/h2fast's
// TestAnswerFlowControl checks the same rules on gRPC answers, which have DATA.
var h2specExempt = map[string]string{
	"http2/3.5: Sends invalid connection preface":                                                   "the port serves RESP too: a connection that does not open with the HTTP/2 preface is a RESP client, answered as one",
	"generic/2: Sends a WINDOW_UPDATE frame on half-closed (remote) stream":                         "needs DATA in the answer to a GET",
	"generic/2: Sends a PRIORITY frame on half-closed (remote) stream":                              "needs DATA in the answer to a GET",
	"http2/6.5.3: Sends multiple values of SETTINGS_INITIAL_WINDOW_SIZE":                            "skipped by h2spec: needs DATA in the answer to a GET",
	"http2/6.9.1: Sends SETTINGS frame to set the initial window size to 1 and sends HEADERS frame": "skipped by h2spec: needs DATA in the answer to a GET",
	"http2/6.9.2: Changes SETTINGS_INITIAL_WINDOW_SIZE after sending HEADERS frame":                 "skipped by h2spec: needs DATA in the answer to a GET",
	"http2/6.9.2: Sends a SETTINGS frame for window size to be negative":                            "skipped by h2spec: needs DATA in the answer to a GET",
}

// junit is the part of h2spec's JUnit report the test reads.
type junit struct {
	Suites []struct {
		Cases []struct {
			Package string `xml:"package,attr"`
			Name    string `xml:"classname,attr"`
			Failure *struct {
				Text string `xml:",chardata"`
			} `xml:"failure"`
			Error *struct {
				Text string `xml:",chardata"`
			} `xml:"error"`
			Skipped *struct{} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// TestH2Spec runs h2spec (the HTTP/2 conformance suite, strict cases included) against
// the gRPC fast path on the TCP port.
func TestH2Spec(t *testing.T) {
	h2spec := os.Getenv("CACHEE_H2SPEC")
	if h2spec == "" {
		if os.Getenv("CACHEE_REQUIRE_TOOLS") != "" {
			t.Fatal("CACHEE_H2SPEC unset and CACHEE_REQUIRE_TOOLS set: `make test` builds h2spec and sets it")
		}
		t.Skip("CACHEE_H2SPEC unset: `make test` builds h2spec and sets it")
	}
	// A small stream limit: h2spec checks it by opening one stream more than it allows,
	// one frame per write, and with the default of 1024 the first streams are often
	// answered (and closed) before the last arrives, so that the limit is never passed.
	p := start(t, "--grpc-fast-path=true", "--grpc-max-concurrent-streams=16")
	host, port, _ := strings.Cut(p.tcp, ":")
	results, out := runH2Spec(t, h2spec, host, port)
	passed, exempt := 0, 0
	for _, r := range results {
		if r.failure == "" {
			passed++
			continue
		}
		if reason, ok := h2specExempt[r.name]; ok {
			exempt++
			t.Logf("exempt: %s (%s)", r.name, reason)
			continue
		}
		// Some cases race the server's answer to a request against the client's next
		// frames: a stream limit passed only while earlier streams are unanswered, a
		// window overflow on a stream still open. grpc-go answers h2spec's GETs at once,
		// so now and then it wins; such a case is run again on its own, up to twice.
		again := r.failure
		for try := 1; try <= 2 && again != ""; try++ {
			rs, _ := runH2Spec(t, h2spec, host, port, r.id)
			if len(rs) == 1 {
				again = rs[0].failure
			}
			if again == "" {
				t.Logf("%s passed when run again (try %d; first: %s)", r.name, try, r.failure)
			}
		}
		if again != "" {
			t.Errorf("h2spec %s (%s): %s", r.id, r.name, r.failure)
			continue
		}
		passed++
	}
	t.Logf("h2spec: %d cases passed, %d exempt", passed, exempt)
	if passed == 0 {
		t.Fatalf("no case passed:\n%s", out)
	}
}

// h2specResult is one case of a run: its id (http2/6.9.1/3), name, and why it failed
// ("" when it passed).
type h2specResult struct {
	id, name, failure string
}

// runH2Spec runs h2spec, strict cases included, on the given cases (all when none).
func runH2Spec(t *testing.T, h2spec, host, port string, cases ...string) ([]h2specResult, []byte) {
	t.Helper()
	report := filepath.Join(t.TempDir(), "h2spec.xml")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// -o: seconds h2spec waits for a frame the case expects; generous on a busy machine.
	args := append([]string{"-S", "-h", host, "-p", port, "-o", "5", "-j", report}, cases...)
	out, err := exec.CommandContext(ctx, h2spec, args...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("h2spec did not finish: %v\n%s", err, out)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("h2spec wrote no report (%v):\n%s", err, out)
	}
	var r junit
	if err := xml.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	var results []h2specResult
	for _, s := range r.Suites {
		for i, c := range s.Cases {
			res := h2specResult{id: fmt.Sprintf("%s/%d", c.Package, i+1), name: c.Package + ": " + c.Name}
			switch {
			case c.Failure != nil:
				res.failure = strings.TrimSpace(c.Failure.Text)
			case c.Error != nil:
				res.failure = strings.TrimSpace(c.Error.Text)
			case c.Skipped != nil:
				res.failure = "skipped"
			}
			results = append(results, res)
		}
	}
	return results, out
}
