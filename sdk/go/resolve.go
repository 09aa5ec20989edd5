package cachee

import (
	"net"
	"strings"
)

// Environment variables the Client reads (docs/sdk-contract.md, sections 1 to 3). One
// that is set but empty counts as unset, except CACHEE_SHM, whose empty value turns
// shared memory off.
const (
	envSocket    = "CACHEE_SOCKET"
	envHost      = "CACHE_HOST"
	envPort      = "CACHE_PORT"
	envShm       = "CACHEE_SHM"
	envAuthToken = "CACHEE_AUTH_TOKEN"
)

// defaultPort is the sidecar's TCP port when CACHE_HOST is set without CACHE_PORT.
const defaultPort = "6380"

// resolveTarget is the gRPC target: explicit (WithTarget) when given, else
// $CACHEE_SOCKET, else $CACHE_HOST:$CACHE_PORT, else the default socket. Sockets come
// out as unix:///abs/path, TCP as host:port.
func resolveTarget(explicit string, getenv func(string) string) string {
	switch {
	case explicit != "":
		return normalTarget(explicit)
	case getenv(envSocket) != "":
		return normalTarget(getenv(envSocket))
	}
	host, port := getenv(envHost), getenv(envPort)
	if host == "" && port == "" {
		return "unix://" + DefaultSocket
	}
	if host == "" {
		host = "localhost"
	}
	if port == "" {
		port = defaultPort
	}
	return net.JoinHostPort(host, port)
}

// normalTarget writes a socket address (an absolute path, unix:/path, or
// unix:///path) as unix:///path, and leaves any other target as it is.
func normalTarget(t string) string {
	switch {
	case strings.HasPrefix(t, "/"):
		return "unix://" + t
	case strings.HasPrefix(t, "unix:///"):
		return t
	case strings.HasPrefix(t, "unix:/"):
		return "unix://" + strings.TrimPrefix(t, "unix:")
	}
	return t
}

// resolveShmDir is the segment's directory: explicit (WithShmDir) when set, else
// $CACHEE_SHM when set, else DefaultShmDir. "" means shared memory is off.
func resolveShmDir(explicit string, explicitSet bool, lookupEnv func(string) (string, bool)) string {
	if explicitSet {
		return explicit
	}
	if d, ok := lookupEnv(envShm); ok {
		return d
	}
	return DefaultShmDir
}

// resolveToken is the bearer token to send: explicit (WithAuthToken) when given, else
// $CACHEE_AUTH_TOKEN, the variable the sidecar reads its own --auth-token from. ""
// means none.
func resolveToken(explicit string, getenv func(string) string) string {
	if explicit != "" {
		return explicit
	}
	return getenv(envAuthToken)
}
