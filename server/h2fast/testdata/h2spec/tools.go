//go:build tools

// Package h2spec pins the HTTP/2 conformance tool that cmd/cachee's tests run against
// the gRPC fast path.
package h2spec

import _ "github.com/summerwind/h2spec/cmd/h2spec"
