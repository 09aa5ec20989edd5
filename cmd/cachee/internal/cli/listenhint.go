package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/cachee/cachee/server"
)

// listenFlags are the flags that set each of the server's listeners.
var listenFlags = map[string]string{"socket": "--socket", "tcp": "--port", "http": "--http-port", "metrics": "--metrics-port"}

// listenHint adds to an error of server.Listen what to do about it, naming the flag
// that moves the listener that failed.
func listenHint(err error) error {
	var le *server.ListenError
	if !errors.As(err, &le) {
		return err
	}
	flag := listenFlags[le.Listener]
	var hint string
	switch {
	case errors.Is(err, server.ErrSocketInUse):
		hint = "stop that server, or give this one another " + flag
	case errors.Is(err, server.ErrNotSocket):
		hint = "remove it, or give " + flag + " another path"
	case le.Listener == "socket" && errors.Is(err, fs.ErrPermission):
		hint = "this user cannot create it; give " + flag + " a path it can write, e.g. " + flag +
			"=/tmp/cachee.sock (make run does so when not root)"
	case errors.Is(err, syscall.EADDRINUSE):
		hint = "another process has the port; choose another with " + flag + " (0 picks a free one)"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		hint = "not an address of this machine; check --bind"
	case errors.Is(err, fs.ErrPermission):
		hint = "ports below 1024 need root or CAP_NET_BIND_SERVICE; choose another with " + flag
	case le.Listener == "socket":
		hint = "choose another path with " + flag
	default:
		hint = "choose another port with " + flag
	}
	return fmt.Errorf("%w: %s", err, hint)
}
