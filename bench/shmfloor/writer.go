package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// writerEnv, when set in the environment, makes this program (or its test binary) the
// floor's writer: it lays the slot out in the directory the variable names, says
// "ready", and keeps the mapping alive until its stdin closes.
const writerEnv = "SHMFLOOR_WRITER"

// The hot key and its value, the same for every path measured.
const (
	hotKey    = "bench:hot"
	valueSize = 100
)

func hotValue(n int) []byte {
	v := make([]byte, n)
	for i := range v {
		v[i] = byte('a' + i%26)
	}
	return v
}

// runWriterIfAsked is the child's whole life when writerEnv is set.
func runWriterIfAsked() {
	dir := os.Getenv(writerEnv)
	if dir == "" {
		return
	}
	if err := writeFloor(dir, []byte(hotKey), hotValue(valueSize)); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin) // until the reader is done
	os.Exit(0)
}

// floorWriter is the child process that wrote the slot.
type floorWriter struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// startFloorWriter runs exe (this program or its test binary) as the writer of a slot
// in dir and waits until the slot is laid out.
func startFloorWriter(exe string, dir string, args ...string) (*floorWriter, error) {
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), writerEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		stdin.Close()
		cmd.Wait()
		return nil, fmt.Errorf("floor writer: %q", line)
	}
	return &floorWriter{cmd: cmd, stdin: stdin}, nil
}

func (w *floorWriter) stop() {
	w.stdin.Close()
	w.cmd.Wait()
}
