// Package tier is what package server and the tiers behind it share: the interface of
// a data-path tier (Tier) and of a prewarm source (Prewarmer), the prewarm options and
// counts, the errors a tier wraps so that the server can tell the client what failed,
// and the redaction of URLs for logs and errors.
//
// It is a leaf: it imports neither package server nor server/l2, nor gRPC nor the
// generated API, so that server/l2 implements these interfaces without importing the
// server, and the RESP shim (server/resp) links no gRPC. TestImportRule in package
// server holds every package to that.
package tier

import (
	"context"
	"errors"

	"github.com/cachee/cachee/store"
)

// Tier is what the data-path RPCs read and write: the store itself, or an L2 tier in
// front of it that reads misses through from a central Redis and writes through to it
// (package server/l2). Methods have the store's meaning; the context bounds any
// network call a tier makes. An L2 that cannot be reached for a write is an error
// wrapping ErrL2Unavailable.
type Tier interface {
	Get(ctx context.Context, key, dst []byte) ([]byte, bool, error)
	GetMany(ctx context.Context, keys [][]byte, fn func(i int, value []byte, found bool, err error))
	Set(ctx context.Context, key, value []byte, opt store.SetOptions) (bool, error)
	SetMany(ctx context.Context, items []store.Item, stored []bool) []error
	Delete(ctx context.Context, key []byte) (bool, error)
}

// ErrL2Unavailable is for a Tier to wrap when its L2 cannot be reached (or answered
// too late) for a call that needs it, such as a write-through; the gRPC call then fails
// UNAVAILABLE with reason L2_UNAVAILABLE. Its text is meant for clients as it is: the
// RESP shim puts it in its error reply.
var ErrL2Unavailable = errors.New("L2 unavailable")

// ErrPrewarmSource is for a Prewarmer to wrap when its source cannot be reached; the
// Prewarm RPC then fails UNAVAILABLE with reason PREWARM_SOURCE_UNAVAILABLE.
var ErrPrewarmSource = errors.New("prewarm source unavailable")
