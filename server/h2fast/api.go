package h2fast

import (
	"time"

	"golang.org/x/net/http2/hpack"
)

// Config bounds a connection. The zero value of each field takes the default named
// beside it.
type Config struct {
	// MaxConcurrentStreams is advertised in SETTINGS and enforced: a stream past it is
	// refused (RST_STREAM REFUSED_STREAM). Default 1024.
	MaxConcurrentStreams uint32
	// MaxHeaderListSize bounds a request's header list (RFC 9113 §6.5.2), advertised
	// and enforced: a larger one ends the connection. Default 64 KiB.
	MaxHeaderListSize uint32
	// ConnWindow is the connection's receive window. Default 1 MiB. Streams get the
	// protocol's default of 65535 bytes each.
	ConnWindow uint32
	// MaxRecvMsgSize is the largest request message the Handler is given; a larger one
	// goes to the backend, which refuses it as it refuses any oversized message. Zero
	// means 4 MiB.
	MaxRecvMsgSize int
	// MaxPending bounds the bytes waiting to be written to the client or to the
	// backend: past it the connection stops reading the client until they drain.
	// Default 256 KiB.
	MaxPending int
	// MinPingInterval and PingWithoutStream mirror grpc-go's keepalive enforcement:
	// a client that pings more often than MinPingInterval (or at all without a stream,
	// unless PingWithoutStream) more than twice in a row, without anything sent to
	// it in between, gets GOAWAY ENHANCE_YOUR_CALM "too_many_pings". Zero disables
	// the check.
	MinPingInterval   time.Duration
	PingWithoutStream bool
	// Memory is charged for the request and answer bytes the connection holds; nil
	// charges nothing.
	Memory Memory
	// Now is the clock, for tests; default time.Now.
	Now func() time.Time
	// Relayed, when set, is told of each stream relayed to the backend.
	Relayed func()
}

// Memory is a budget of bytes shared by connections.
type Memory interface {
	// TryAcquire reserves n bytes before they are allocated, or reports false.
	TryAcquire(n int64) bool
	// Charge counts n bytes that are allocated already, over the limit if need be:
	// an answer that is built, or the output buffer it passes through. Refusing them
	// would not free them; counting them makes the next TryAcquire see them.
	Charge(n int64)
	Release(n int64)
}

// Defaults of Config.
const (
	DefaultMaxConcurrentStreams = 1024
	DefaultMaxHeaderListSize    = 64 << 10
	DefaultConnWindow           = 1 << 20
	DefaultMaxRecvMsgSize       = 4 << 20
	DefaultMaxPending           = 256 << 10
)

func (c Config) withDefaults() Config {
	if c.MaxConcurrentStreams == 0 {
		c.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	if c.MaxHeaderListSize == 0 {
		c.MaxHeaderListSize = DefaultMaxHeaderListSize
	}
	if c.ConnWindow < initialWindow {
		c.ConnWindow = DefaultConnWindow
	}
	if c.MaxRecvMsgSize <= 0 {
		c.MaxRecvMsgSize = DefaultMaxRecvMsgSize
	}
	if c.MaxPending <= 0 {
		c.MaxPending = DefaultMaxPending
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Handler answers the calls of the methods it routes to itself.
type Handler interface {
	// Route reports whether the fast path answers the method at path (such as
	// "/cachee.v1.CacheService/Get"), and a number the Call will carry for it.
	Route(path string) (method int, ok bool)
	// Serve answers call, filling its status and reply. It reports true when the
	// answer is ready (or the call is relayed, see Call.Relay), or false when it will
	// come later: the Handler then calls the connection's Finish(call) on the goroutine
	// that feeds the connection, once.
	Serve(c *Conn, call *Call) bool
	// Cancel tells that the client reset a call that Serve left pending; Finish is
	// still due.
	Cancel(call *Call)
	// Overloaded fills the status of a call whose request the Memory would not hold.
	Overloaded(call *Call)
}

// Call is one unary call answered by the Handler.
// PrefixLen is the size of a gRPC message's prefix: its compressed flag and length.
const PrefixLen = prefixLen

type Call struct {
	Method int    // what Route returned
	Path   string // ":path"
	// Header is the request's header list, pseudo-header fields first, as received.
	Header []hpack.HeaderField
	// Timeout is the grpc-timeout the client sent, and HasTimeout whether it sent one.
	Timeout    time.Duration
	HasTimeout bool
	// Message is the request message, without its 5-byte prefix. It is valid only
	// during Serve: a Handler that answers later decodes it first.
	Message []byte

	// The answer. Code is a gRPC status code; StatusMessage is sent in grpc-message
	// (percent-encoded here); Details, when set, is a marshaled google.rpc.Status sent
	// in grpc-status-details-bin. Reply is the response message, sent when Code is 0.
	// Headers and Trailers are extra metadata fields (lowercase names, binary values
	// already base64-encoded). Reply starts as an empty buffer of the connection's
	// that a Handler answering in Serve may append the message to; one answering
	// later must set a buffer of its own.
	Code          uint32
	StatusMessage string
	Details       []byte
	Reply         []byte
	// ReplyMsg, when a Handler sets it, is Reply with PrefixLen bytes of room before
	// it in the same buffer (Reply is ReplyMsg[PrefixLen:]): the connection writes
	// the message's prefix there instead of copying Reply behind one. A Handler that
	// makes a buffer of its own for a large answer leaves the room.
	ReplyMsg []byte
	Headers  []hpack.HeaderField
	Trailers []hpack.HeaderField

	// Value is the Handler's own, for state that a pending call carries.
	Value any

	st       *stream
	subtype  string // content-type's subtype: "" or "proto", echoed in the answer
	canceled bool
	relay    bool
}

// Canceled reports whether the client reset the call.
func (c *Call) Canceled() bool { return c.canceled }

// Relay declines the call, from Serve (which then reports true): the backend answers
// it, as it answers the streams the Handler does not route.
func (c *Call) Relay() { c.relay = true }
