package cachee

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	cacheev1 "github.com/cachee/cachee/gen/go/cachee/v1"
)

// The SDK contract's cases (docs/sdk-contract.md), shared by every cachee SDK.
const contractDir = "../testdata/contract"

func loadContract(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(contractDir, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// env is a process environment for the resolvers: only the variables listed are set.
type env map[string]string

func (e env) get(k string) string            { return e[k] }
func (e env) lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }

func TestContractAddress(t *testing.T) {
	var c struct {
		TargetCases []struct {
			Name     string
			Explicit *string
			Env      env
			Target   string
		} `json:"target_cases"`
		ShmCases []struct {
			Name     string
			Explicit *string
			Env      env
			ShmDir   *string `json:"shm_dir"`
		} `json:"shm_cases"`
		TokenCases []struct {
			Name     string
			Explicit *string
			Env      env
			Metadata *string
		} `json:"token_cases"`
		SegmentFile string `json:"segment_file"`
	}
	loadContract(t, "address.json", &c)
	for _, tc := range c.TargetCases {
		if got := resolveTarget(deref(tc.Explicit), tc.Env.get); got != tc.Target {
			t.Errorf("target %q: got %q, want %q", tc.Name, got, tc.Target)
		}
	}
	for _, tc := range c.ShmCases {
		got := resolveShmDir(deref(tc.Explicit), tc.Explicit != nil, tc.Env.lookup)
		if want := deref(tc.ShmDir); got != want {
			t.Errorf("shm %q: got %q, want %q", tc.Name, got, want)
		}
	}
	for _, tc := range c.TokenCases {
		got := ""
		if tok := resolveToken(deref(tc.Explicit), tc.Env.get); tok != "" {
			md, _ := bearerToken(tok).GetRequestMetadata(context.Background())
			got = md["authorization"]
		}
		if want := deref(tc.Metadata); got != want {
			t.Errorf("token %q: got %q, want %q", tc.Name, got, want)
		}
	}
	if c.SegmentFile == "" || filepath.Base(newSegmentWatcher(&Client{opts: options{shmDir: "/d"}}).path) != c.SegmentFile {
		t.Errorf("segment file: contract %q", c.SegmentFile)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// codeOf reads a status code by its canonical name (CANCELLED, DEADLINE_EXCEEDED).
func codeOf(t *testing.T, name string) codes.Code {
	t.Helper()
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		if strings.ToUpper(strings.ReplaceAll(toSnake(c.String()), " ", "_")) == name {
			return c
		}
	}
	t.Fatalf("unknown status code %q", name)
	return 0
}

// toSnake turns grpc-go's code names (DeadlineExceeded, Canceled) into the canonical
// ones (DEADLINE_EXCEEDED, CANCELLED).
func toSnake(s string) string {
	if s == "Canceled" {
		return "CANCELLED"
	}
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// classSentinels names this SDK's sentinel for each of the contract's error classes.
var classSentinels = map[string]error{
	"InvalidArgument": ErrInvalidArgument, "KeyEmpty": ErrKeyEmpty, "KeyTooLarge": ErrKeyTooLarge,
	"ValueTooLarge": ErrValueTooLarge, "InvalidTTL": ErrInvalidTTL, "BatchTooLarge": ErrBatchTooLarge,
	"MessageTooLarge": ErrMessageTooLarge, "ResponseTooLarge": ErrResponseTooLarge, "OutOfMemory": ErrOutOfMemory,
	"Unavailable": ErrUnavailable, "Overloaded": ErrOverloaded, "L2Unavailable": ErrL2Unavailable,
	"Unauthenticated": ErrUnauthenticated, "Contended": ErrContended, "Corrupt": ErrCorrupt, "WrongType": ErrWrongType,
	"PrewarmNotConfigured": ErrPrewarmNotConfigured, "PrewarmRunning": ErrPrewarmRunning,
	"PrewarmSourceUnavailable": ErrPrewarmSourceUnavailable, "DeadlineExceeded": context.DeadlineExceeded,
	"Canceled": context.Canceled, "Closed": ErrClosed, "Internal": ErrInternal,
}

// checkClass fails unless err is exactly the classes named: class and also, and none
// of the contract's other classes.
func checkClass(t *testing.T, what string, err error, class string, also []string, all []string) {
	t.Helper()
	want := map[string]bool{class: true}
	for _, a := range also {
		want[a] = true
	}
	for _, name := range all {
		s, ok := classSentinels[name]
		if !ok {
			t.Fatalf("no sentinel for the contract's class %q", name)
		}
		if got := errors.Is(err, s); got != want[name] {
			t.Errorf("%s: errors.Is(%v, %s) = %v, want %v", what, err, name, got, want[name])
		}
	}
}

func TestContractErrors(t *testing.T) {
	var c struct {
		Classes []string
		Cases   []struct {
			Code, Class string
			Reason      *string
			Also        []string
		}
	}
	loadContract(t, "errors.json", &c)
	for _, tc := range c.Cases {
		code := codeOf(t, tc.Code)
		err := fromStatus(statusErr(t, code, deref(tc.Reason), nil))
		checkClass(t, tc.Code+"/"+deref(tc.Reason), err, tc.Class, tc.Also, c.Classes)
	}
	checkClass(t, "closed", ErrClosed, "Closed", nil, c.Classes)
	// The Client's own deadline: see Client.call.
	sdkTimeout := fromStatus(statusErr(t, codes.DeadlineExceeded, "", nil)).(*Error)
	sdkTimeout.sentinel = ErrUnavailable
	checkClass(t, "the SDK's deadline", sdkTimeout, "DeadlineExceeded", []string{"Unavailable"}, c.Classes)
}

// TestEveryReasonMapped fails when the proto gains a reason this SDK does not map.
func TestEveryReasonMapped(t *testing.T) {
	for v, name := range cacheev1.ErrorReason_name {
		r := cacheev1.ErrorReason(v)
		if r == cacheev1.ErrorReason_ERROR_REASON_UNSPECIFIED {
			continue
		}
		if _, ok := reasons[r]; !ok {
			t.Errorf("reason %s has no sentinel", name)
		}
		if reasonOf(reasonName(r)) != r {
			t.Errorf("reason %s does not round-trip", name)
		}
	}
}

func TestContractRetry(t *testing.T) {
	var c struct {
		Defaults struct {
			TimeoutMS         int     `json:"timeout_ms"`
			MaxAttempts       int     `json:"max_attempts"`
			BackoffInitialMS  int     `json:"backoff_initial_ms"`
			BackoffMultiplier int     `json:"backoff_multiplier"`
			BackoffMaxMS      int     `json:"backoff_max_ms"`
			ReconnectInitMS   int     `json:"reconnect_initial_ms"`
			ReconnectMult     float64 `json:"reconnect_multiplier"`
			ReconnectMaxMS    int     `json:"reconnect_max_ms"`
		}
		Cases []struct {
			Method      string
			Conditional bool
			Code        string
			Reason      *string
			KnownDown   bool `json:"known_down"`
			Retry       bool
		}
	}
	loadContract(t, "retry.json", &c)
	d, o := c.Defaults, defaultOptions()
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	if o.timeout != ms(d.TimeoutMS) || o.retries+1 != d.MaxAttempts || o.retryBase != ms(d.BackoffInitialMS) ||
		o.retryMax != ms(d.BackoffMaxMS) || o.reconnectBase != ms(d.ReconnectInitMS) || o.reconnectMax != ms(d.ReconnectMaxMS) ||
		reconnectMultiplier != d.ReconnectMult || d.BackoffMultiplier != 2 {
		t.Errorf("defaults %+v differ from the contract's %+v", o, d)
	}
	// The backoff: uniform in [step/2, step], the step doubling from the initial wait.
	cl := &Client{opts: o}
	for attempt := range 8 {
		step := min(ms(d.BackoffInitialMS)<<attempt, ms(d.BackoffMaxMS))
		for range 50 {
			if w := cl.backoff(attempt); w < step/2 || w > step {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempt, w, step/2, step)
			}
		}
	}
	rpcs := map[[2]any]rpc{
		{"Get", false}: rpcGet, {"BatchGet", false}: rpcBatchGet, {"Stats", false}: rpcStats, {"Delete", false}: rpcDelete,
		{"Set", false}: rpcSet, {"Set", true}: rpcSetIf, {"BatchSet", false}: rpcBatchSet, {"BatchSet", true}: rpcBatchSetIf,
	}
	for _, tc := range c.Cases {
		r, retried := rpcs[[2]any{tc.Method, tc.Conditional}]
		got := false
		if retried { // Prewarm and RecordAccess never go through Client.call
			if r.name != tc.Method {
				t.Fatalf("rpc %+v for %s", r, tc.Method)
			}
			e := fromStatus(statusErr(t, codeOf(t, tc.Code), deref(tc.Reason), nil)).(*Error)
			got = mayRetry(r.safe, e, tc.KnownDown)
		}
		if got != tc.Retry {
			t.Errorf("%s conditional=%v %s/%s known_down=%v: retry %v, want %v",
				tc.Method, tc.Conditional, tc.Code, deref(tc.Reason), tc.KnownDown, got, tc.Retry)
		}
	}
}
