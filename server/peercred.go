package server

import (
	"fmt"
	"net"
	"os"
	"slices"

	"golang.org/x/sys/unix"
)

// peerAllowed reports whether the process at the other end of a Unix socket
// connection may use the server, by the credentials the kernel recorded when it
// connected (SO_PEERCRED): its uid must be in AllowUIDs or its primary gid in
// AllowGIDs. The server's own uid is always allowed (a process with our uid could
// read our memory anyway). With both lists empty, or on TCP, everyone who can connect
// is allowed: the socket's file mode and --bind decide that.
func (s *Server) peerAllowed(c net.Conn) (bool, string) {
	if len(s.cfg.AllowUIDs) == 0 && len(s.cfg.AllowGIDs) == 0 {
		return true, ""
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return true, ""
	}
	cred, err := peerCred(uc)
	if err != nil {
		return false, err.Error()
	}
	if cred.Uid == uint32(os.Geteuid()) || slices.Contains(s.cfg.AllowUIDs, cred.Uid) || slices.Contains(s.cfg.AllowGIDs, cred.Gid) {
		return true, ""
	}
	return false, fmt.Sprintf("peer pid %d uid %d gid %d is not allowed", cred.Pid, cred.Uid, cred.Gid)
}

// peerCred reads SO_PEERCRED: the credentials of the peer as of connect(2), which the
// peer cannot change afterwards.
func peerCred(c *net.UnixConn) (*unix.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	if credErr != nil {
		return nil, fmt.Errorf("SO_PEERCRED: %w", credErr)
	}
	return cred, nil
}
