package server

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// peerCred reads SO_PEERCRED: the credentials of the peer as of connect(2), which the
// peer cannot change afterwards.
func peerCred(c *net.UnixConn) (peerID, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return peerID{}, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return peerID{}, err
	}
	if credErr != nil {
		return peerID{}, fmt.Errorf("SO_PEERCRED: %w", credErr)
	}
	return peerID{pid: cred.Pid, uid: cred.Uid, gid: cred.Gid}, nil
}
