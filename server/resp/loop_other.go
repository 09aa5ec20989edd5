//go:build !linux

package resp

import "net"

type loop struct{}

func (l *loop) shutdown() {}

// serveInLoop reports false: without epoll every connection gets a goroutine.
func (s *Server) serveInLoop(cl *client, c net.Conn) bool { return false }
