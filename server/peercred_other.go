//go:build !linux

package server

import (
	"fmt"
	"net"
	"runtime"
)

// peerCred is SO_PEERCRED's, which only Linux has: elsewhere --allow-uids and
// --allow-gids refuse every connection on the socket (they fail closed).
func peerCred(*net.UnixConn) (peerID, error) {
	return peerID{}, fmt.Errorf("peer credentials are not read on %s: --allow-uids and --allow-gids need Linux", runtime.GOOS)
}
