//go:build !linux

package cachee

import (
	"context"
	"net"
)

// dialSock dials a net.Conn: the ppoll-based sockConn is Linux's (sockconn_linux.go).
func dialSock(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}
