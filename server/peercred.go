package server

import (
	"fmt"
	"net"
	"os"
	"slices"
)

// peerID is who is at the other end of a Unix socket connection.
type peerID struct {
	pid      int32
	uid, gid uint32
}

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
	if cred.uid == uint32(os.Geteuid()) || slices.Contains(s.cfg.AllowUIDs, cred.uid) || slices.Contains(s.cfg.AllowGIDs, cred.gid) {
		return true, ""
	}
	return false, fmt.Sprintf("peer pid %d uid %d gid %d is not allowed", cred.pid, cred.uid, cred.gid)
}
