//go:build !linux

package resp

import "net"

type loop struct{}

func (l *loop) shutdown() {}

// requestSweep does nothing: connections served by goroutines time out on their reads.
func (l *loop) requestSweep() {}

// serveInLoop reports false: without epoll every connection gets a goroutine.
func (s *Server) serveInLoop(cl *client, c net.Conn) bool { return false }
