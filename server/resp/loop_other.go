//go:build !linux

package resp

import "net"

type loop struct{}

func (l *loop) shutdown() {}
func (l *loop) drain()    {}

// peekInput cannot tell here whether input waits: a draining connection finishes as
// soon as it has nothing half-received.
func peekInput(int) (int, error) { return -1, nil }

// requestSweep does nothing: connections served by goroutines time out on their reads.
func (l *loop) requestSweep() {}

// serveInLoop reports false: without epoll every connection gets a goroutine.
func (s *Server) serveInLoop(cl *client, c net.Conn) bool { return false }
