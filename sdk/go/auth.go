package cachee

import (
	"context"
)

// WithAuthToken makes every call carry "authorization: Bearer <token>", for a sidecar
// started with --auth-token. Without it, the Client sends $CACHEE_AUTH_TOKEN when that
// is set: the variable the sidecar reads its token from. A call with no token, or a
// wrong one, fails with ErrUnauthenticated. The token is sent as the connection is, in
// plaintext: it keeps out callers who cannot read it, not eavesdroppers (see the
// sidecar's docs/security.md).
func WithAuthToken(token string) Option { return func(o *options) { o.token = token } }

// bearerToken is the grpc.PerRPCCredentials of WithAuthToken.
type bearerToken string

func (t bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

// RequireTransportSecurity is false: the sidecar serves a Unix socket or TCP without
// TLS, and grpc-go would refuse to send the token otherwise.
func (bearerToken) RequireTransportSecurity() bool { return false }
