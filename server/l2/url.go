package l2

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/rueidis"

	"github.com/cachee/cachee/server/tier"
)

// Endpoint is a parsed --l2 (or --prewarm-source) URL.
//
//	redis://[user[:password]@]host[:port][/db]       one server
//	rediss://...                                      the same over TLS
//	redis+cluster://[user[:password]@]h1:p1,h2:p2     a Redis Cluster, from seed nodes
//	rediss+cluster://...                              a cluster over TLS
//
// The port defaults to 6379. A cluster has only database 0.
type Endpoint struct {
	Addrs    []string // host:port of the server, or of the cluster's seeds
	Cluster  bool
	TLS      bool
	Username string
	Password string
	DB       int
}

// ParseURL parses an Endpoint.
func ParseURL(s string) (Endpoint, error) {
	var e Endpoint
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return e, fmt.Errorf("l2: %q: want redis://HOST:PORT, rediss://..., or redis+cluster://H1:P1,H2:P2", tier.RedactURL(s))
	}
	switch strings.ToLower(scheme) {
	case "redis":
	case "rediss":
		e.TLS = true
	case "redis+cluster":
		e.Cluster = true
	case "rediss+cluster":
		e.Cluster, e.TLS = true, true
	default:
		return e, fmt.Errorf("l2: unknown scheme %q: want redis, rediss, redis+cluster or rediss+cluster", scheme)
	}
	// User information ends at the last '@': a password may contain '@' (better
	// percent-encoded, but accepted).
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		user, pass, hasPass := strings.Cut(rest[:i], ":")
		var err error
		if e.Username, err = url.PathUnescape(user); err != nil {
			return e, fmt.Errorf("l2: user name: %w", err)
		}
		if hasPass {
			// A password spliced into the URL unencoded (a Secret substituted into
			// CACHEE_L2) may hold a '%' that is no escape: then it is taken as written.
			if e.Password, err = url.PathUnescape(pass); err != nil {
				e.Password = pass
			}
		}
		rest = rest[i+1:]
	}
	// Checked after the credentials, which may hold these characters unencoded.
	if strings.ContainsAny(rest, "?#") {
		return e, fmt.Errorf("l2: %q: query and fragment are not supported", tier.RedactURL(s))
	}
	hosts, path, _ := strings.Cut(rest, "/")
	if path != "" {
		db, err := strconv.Atoi(path)
		if err != nil || db < 0 {
			return e, fmt.Errorf("l2: database %q: want a number", path)
		}
		if e.Cluster && db != 0 {
			return e, errors.New("l2: a Redis Cluster has only database 0")
		}
		e.DB = db
	}
	if hosts == "" {
		return e, fmt.Errorf("l2: %q has no host", tier.RedactURL(s))
	}
	for h := range strings.SplitSeq(hosts, ",") {
		if h == "" {
			return e, fmt.Errorf("l2: %q: empty host in the list", tier.RedactURL(s))
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(strings.Trim(h, "[]"), "6379")
		}
		host, port, err := net.SplitHostPort(h)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			return e, fmt.Errorf("l2: bad host:port %q", h)
		}
		e.Addrs = append(e.Addrs, h)
	}
	if !e.Cluster && len(e.Addrs) > 1 {
		return e, errors.New("l2: several hosts need redis+cluster:// (or rediss+cluster://)")
	}
	return e, nil
}

// SameServers reports whether o names the same server or cluster as e, whatever the
// credentials: a --prewarm-source given without the password that --l2 carries (in
// CACHEE_L2, from a Secret) still means L2.
func (e Endpoint) SameServers(o Endpoint) bool {
	return e.Cluster == o.Cluster && e.TLS == o.TLS && e.DB == o.DB && slices.Equal(e.Addrs, o.Addrs)
}

// String is the URL with the password hidden, for logs.
func (e Endpoint) String() string {
	var b strings.Builder
	b.WriteString("redis")
	if e.TLS {
		b.WriteString("s")
	}
	if e.Cluster {
		b.WriteString("+cluster")
	}
	b.WriteString("://")
	if e.Username != "" || e.Password != "" {
		b.WriteString(url.PathEscape(e.Username))
		if e.Password != "" {
			b.WriteString(":xxxxx")
		}
		b.WriteString("@")
	}
	b.WriteString(strings.Join(e.Addrs, ","))
	if e.DB != 0 {
		b.WriteString("/" + strconv.Itoa(e.DB))
	}
	return b.String()
}

// options are the rueidis options common to every client of the endpoint.
func (e Endpoint) options() rueidis.ClientOption {
	o := rueidis.ClientOption{
		InitAddress: append([]string(nil), e.Addrs...),
		Username:    e.Username,
		Password:    e.Password,
		SelectDB:    e.DB,
		// A single server needs no cluster probe; a cluster is never mistaken for one.
		ForceSingleClient: !e.Cluster,
		// Latency is bounded by --l2-timeout per call; retrying a read after a
		// network error would only spend that budget on a connection being rebuilt.
		DisableRetry: true,
		// One connection per server: the invalidations of what it read arrive on it, and
		// NOLOOP (which is per connection) then covers every write this sidecar makes.
		PipelineMultiplex: -1,
		// rueidis's defaults are 0.5 MiB each way per connection; cachee holds two
		// connections per server, outside --max-memory. Larger replies are read past
		// the buffer, so a small one costs only a few more system calls for big values.
		ReadBufferEachConn:  64 << 10,
		WriteBufferEachConn: 64 << 10,
	}
	if e.TLS {
		host, _, _ := net.SplitHostPort(e.Addrs[0])
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	}
	return o
}
