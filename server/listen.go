package server

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// maxSocketPath is the room in sockaddr_un.sun_path on Linux, less the terminating NUL.
const maxSocketPath = 107

// Why a socket path is refused, for errors.Is.
var (
	ErrSocketInUse = errors.New("another server is listening on it")
	ErrNotSocket   = errors.New("it exists and is not a socket; not replacing it")
)

// ListenError is a listener Listen could not bind: which one (the fields of Addrs:
// "socket", "tcp", "http" or "metrics"), its address, and why.
type ListenError struct {
	Listener string
	Addr     string
	Err      error
}

func (e *ListenError) Error() string {
	err := e.Err
	// net's error repeats the address ("listen tcp 127.0.0.1:6380: bind: ..."): keep
	// what follows it.
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	return listenerNames[e.Listener] + " " + e.Addr + ": " + err.Error()
}

var listenerNames = map[string]string{"socket": "socket", "tcp": "TCP port", "http": "HTTP port", "metrics": "metrics port"}

func (e *ListenError) Unwrap() error { return e.Err }

// unixSocket is a listening Unix socket that only its owner and group can connect to.
type unixSocket struct {
	*net.UnixListener
	path string
	info fs.FileInfo // the socket file we created, to remove only our own
}

// listenUnix binds path with mode 0660 under a parent directory created with mode
// 0750. The socket is bound in a private directory (mode 0700), chmodded, then
// renamed into place, so it is never connectable by others, not even for an instant
// and whatever the umask and the parent directory's mode (an emptyDir shared with the
// application is 0777), and a stale socket file left by a process that died is
// replaced atomically. A socket that someone still serves is an error, as is any
// other kind of file at path.
func listenUnix(path string) (*unixSocket, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("the path is %d bytes, longer than the %d a Unix socket allows", len(path), maxSocketPath)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, ErrNotSocket
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, ErrSocketInUse
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	private := filepath.Join(dir, "."+strconv.Itoa(os.Getpid())+".sock.d")
	tmp := filepath.Join(private, "s")
	if len(tmp) > maxSocketPath {
		return nil, fmt.Errorf("socket directory %q is too long to bind a socket in", dir)
	}
	os.RemoveAll(private)
	if err := os.Mkdir(private, 0o700); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	defer os.RemoveAll(private)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false) // we remove the final name ourselves, if still ours
	fail := func(err error) (*unixSocket, error) {
		ln.Close()
		return nil, err
	}
	if err := os.Chmod(tmp, 0o660); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return &unixSocket{UnixListener: ln, path: path, info: fi}, nil
}

func (u *unixSocket) Addr() net.Addr { return &net.UnixAddr{Name: u.path, Net: "unix"} }

// remove deletes the socket file unless another process has replaced it since.
func (u *unixSocket) remove() {
	if fi, err := os.Lstat(u.path); err == nil && os.SameFile(fi, u.info) {
		os.Remove(u.path)
	}
}
