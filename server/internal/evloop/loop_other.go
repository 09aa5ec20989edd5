//go:build !linux

package evloop

import (
	"errors"
	"net"
)

// On systems without epoll there is no loop: New fails, and callers serve sockets
// from goroutines instead.

const (
	In    = 0x1
	Out   = 0x4
	Err   = 0x8
	Hup   = 0x10
	RdHup = 0x2000
)

type Handler interface{ Event(fd int, events uint32) }

var ErrStopped = errors.New("evloop: stopped")

var errNoEpoll = errors.New("evloop: needs epoll (Linux)")

type Loop struct{}

func New() (*Loop, error)                      { return nil, errNoEpoll }
func (l *Loop) Post(func()) bool               { return false }
func (l *Loop) Stop()                          {}
func (l *Loop) Done() <-chan struct{}          { return nil }
func (l *Loop) Add(int, uint32, Handler) error { return errNoEpoll }
func (l *Loop) Watch(int, uint32) error        { return errNoEpoll }
func (l *Loop) Remove(int)                     {}
func (l *Loop) Run() error                     { return errNoEpoll }
func Read(int, []byte) (int, error)            { return -1, errNoEpoll }
func Write(int, []byte) (int, error)           { return -1, errNoEpoll }
func Close(int) error                          { return errNoEpoll }
func Take(net.Conn) (int, bool)                { return -1, false }
func Socketpair() (int, int, error)            { return -1, -1, errNoEpoll }

var (
	EAGAIN error = errNoEpoll
	EINTR  error = errNoEpoll
)
