// Command pod runs one pod of a rendered cachee manifest on this machine, without
// Kubernetes (see package podsim), drives load at it and prints what it measured.
// `make pod` runs it on the L1/L2 overlay.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/cachee/cachee/deploy/internal/manifest"
	"github.com/cachee/cachee/deploy/internal/podsim"
)

func main() {
	var o podsim.Options
	manifestPath := flag.String("manifest", "", "rendered YAML (kustomize build or helm template output)")
	kustomizeDir := flag.String("kustomize", "", "or a kustomization directory to build")
	flag.StringVar(&o.Cachee, "cachee", "bin/cachee", "the cachee binary")
	flag.StringVar(&o.App, "app", "bin/example-app", "the example app's binary")
	flag.StringVar(&o.HealthProbe, "health-probe", ".tmp/bin/grpc-health-probe", "grpc_health_probe")
	flag.StringVar(&o.RedisServer, "redis-server", "", "redis-server (default: from PATH)")
	flag.StringVar(&o.L2, "l2", "auto", "auto, on or off: whether to pass the L2 tier's flags")
	flag.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to drive load")
	flag.IntVar(&o.Concurrency, "concurrency", 4, "concurrent clients")
	flag.IntVar(&o.Keys, "keys", 10000, "distinct items (Zipf-distributed reads)")
	flag.Float64Var(&o.SocketShare, "socket-share", 0.2, "share of reads that skip shared memory")
	flag.Float64Var(&o.PreStopScale, "prestop-scale", 1, "multiplier for the manifest's preStop sleeps")
	flag.Parse()
	var data []byte
	var err error
	switch {
	case *manifestPath != "" && *kustomizeDir == "":
		data, err = os.ReadFile(*manifestPath)
	case *kustomizeDir != "" && *manifestPath == "":
		data, err = manifest.Kustomize(*kustomizeDir)
	default:
		fmt.Fprintln(os.Stderr, "pod: give -manifest or -kustomize")
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pod:", err)
		os.Exit(1)
	}
	o.Manifest = data
	if o.RedisServer == "" {
		o.RedisServer, _ = exec.LookPath("redis-server")
	}
	o.Log = os.Stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	r, err := podsim.Run(ctx, o)
	if r.GateOpened {
		r.Print(os.Stdout)
	}
	fmt.Printf("pod run took %v\n", time.Since(start).Round(time.Millisecond))
	if err != nil {
		fmt.Fprintln(os.Stderr, "pod:", err)
		os.Exit(1)
	}
}
