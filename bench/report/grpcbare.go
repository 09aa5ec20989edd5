package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// The gRPC path's cost is mostly grpc-go's own. To show how much, section 1 also times
// a bare grpc-go server that answers grpc.health.v1 Check and nothing else, on a Unix
// socket, in a process of its own: this binary run with -serve-health.

// serveHealth is that bare server; it runs until SIGTERM.
func serveHealth(sock string) error {
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	s := grpc.NewServer()
	h := health.NewServer()
	h.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, h)
	go func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM, os.Interrupt)
		<-c
		s.Stop()
	}()
	return s.Serve(ln)
}

// bareHealth is a running bare health server and a client of it.
type bareHealth struct {
	cmd  *exec.Cmd
	conn *grpc.ClientConn
	hc   healthpb.HealthClient
}

func startBareHealth(ctx context.Context, dir string) (*bareHealth, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "health.sock")
	cmd := exec.Command(self, "-serve-health", sock)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	b := &bareHealth{cmd: cmd}
	if b.conn, err = grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		b.stop()
		return nil, err
	}
	b.hc = healthpb.NewHealthClient(b.conn)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := b.hc.Check(wctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil {
		b.stop()
		return nil, fmt.Errorf("bare health server: %w", err)
	}
	return b, nil
}

func (b *bareHealth) call(ctx context.Context) func() error {
	req := &healthpb.HealthCheckRequest{}
	return func() error {
		_, err := b.hc.Check(ctx, req)
		return err
	}
}

func (b *bareHealth) stop() {
	if b.conn != nil {
		b.conn.Close()
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	b.cmd.Wait()
}
