// Command cachee is the cache sidecar: `cachee [start] [flags]` serves, and
// `cachee get|set|del|stats|prewarm` talk to a running server over its socket.
package main

import (
	"os"

	"github.com/cachee/cachee/cmd/cachee/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
