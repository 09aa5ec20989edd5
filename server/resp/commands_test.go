package resp_test

import (
	"context"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachee/cachee/server/resp"
	"github.com/cachee/cachee/store"
)

// Replies that cannot be compared with redis-server byte for byte (they hold ids,
// versions, times or cachee's own limits) are checked here against patterns.
func TestCommandsTable(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := startEnv(t, resp.Config{EventLoops: m.loops}, store.Config{MaxMemory: 8 << 20})
			c := dial(t, "unix", e.unix)
			for _, tc := range []struct {
				cmd  []string
				want string // a regexp matched against the whole reply
			}{
				{w("HELLO"), `\*14\r\n\$6\r\nserver\r\n\$5\r\nredis\r\n\$7\r\nversion\r\n\$5\r\n7\.0\.0\r\n\$5\r\nproto\r\n:2\r\n\$2\r\nid\r\n:\d+\r\n\$4\r\nmode\r\n\$10\r\nstandalone\r\n\$4\r\nrole\r\n\$6\r\nmaster\r\n\$7\r\nmodules\r\n\*0\r\n`},
				{w("SELECT 1"), `-ERR DB index is out of range\r\n`},
				{w("SET '' v"), `-ERR empty keys are not supported by cachee\r\n`},
				{w("GET ''"), `\$-1\r\n`},
				{w("DEL ''"), `:0\r\n`},
				{w("EXISTS ''"), `:0\r\n`},
				{w("TTL ''"), `:-2\r\n`},
				{w("MSET a 1 '' 2"), `-ERR empty keys are not supported by cachee\r\n`},
				{w("EXISTS a"), `:0\r\n`},
				{[]string{"SET", strings.Repeat("k", 70000), "v"}, `-ERR key is larger than cachee's max key size\r\n`},
				{[]string{"SET", "big", strings.Repeat("v", 2<<20)}, `-ERR Protocol error: invalid bulk length 2097152: over the limit of 1048576 bytes \(--max-value-size\)\r\n`},
			} {
				if tc.cmd[0] == "SET" && tc.cmd[1] == "big" {
					c = dial(t, "unix", e.unix) // the protocol error closes the connection
					c.send([]byte("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$2097152\r\n"))
					if got := c.read(); !regexp.MustCompile(`^` + tc.want + `$`).MatchString(got) {
						t.Errorf("%s: got %q", tc.cmd[0], got)
					}
					continue
				}
				got := c.do(tc.cmd...)
				if !regexp.MustCompile(`^` + tc.want + `$`).MatchString(got) {
					t.Errorf("%q: got %q, want /%s/", strings.Join(tc.cmd, " "), short(got), tc.want)
				}
			}
			c = dial(t, "tcp", e.tcp)
			checks := []struct {
				cmd  []string
				want string
			}{
				{w("CONFIG GET databases"), "*2\r\n$9\r\ndatabases\r\n$1\r\n1\r\n"},
				{w("CONFIG GET maxmemory"), "*2\r\n$9\r\nmaxmemory\r\n$7\r\n8388608\r\n"},
				{w("CONFIG GET maxmemory-policy appendonly"), "*4\r\n$16\r\nmaxmemory-policy\r\n$11\r\nallkeys-lfu\r\n$10\r\nappendonly\r\n$2\r\nno\r\n"},
				{w("CONFIG GET MAXMEMORY-POL*"), "*2\r\n$16\r\nmaxmemory-policy\r\n$11\r\nallkeys-lfu\r\n"},
				{w("CONFIG SET maxmemory 1"), "-ERR CONFIG SET is not supported by cachee: its settings are flags, set at start\r\n"},
				{w("COMMAND INFO get nosuch"), "*2\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*3\r\n+@string\r\n+@read\r\n+@fast\r\n*0\r\n*0\r\n*0\r\n*-1\r\n"},
				{w("COMMAND DOCS echo"), "*2\r\n$4\r\necho\r\n*6\r\n$7\r\nsummary\r\n$25\r\nReturns the given string.\r\n$5\r\nsince\r\n$5\r\n1.0.0\r\n$5\r\ngroup\r\n$10\r\nconnection\r\n"},
				{w("CLIENT SETINFO lib-name mylib"), "+OK\r\n"},
				{w("CLIENT SETINFO lib-ver 1.2"), "+OK\r\n"},
				{w("CLIENT SETINFO lib-name my lib"), "-ERR wrong number of arguments for 'client|setinfo' command\r\n"},
				{[]string{"CLIENT", "SETINFO", "lib-name", "a b"}, "-ERR lib-name cannot contain spaces, newlines or special characters.\r\n"},
				{w("CLIENT SETINFO foo x"), "-ERR Unrecognized option 'foo'\r\n"},
			}
			for _, tc := range checks {
				if got := c.do(tc.cmd...); got != tc.want {
					t.Errorf("%q: got %q want %q", strings.Join(tc.cmd, " "), got, tc.want)
				}
			}
			info := c.do("CLIENT", "INFO")
			if !regexp.MustCompile(`^\$\d+\r\nid=\d+ addr=127\.0\.0\.1:\d+ laddr=127\.0\.0\.1:\d+ fd=-?\d+ name= age=\d+ idle=\d+ flags=N db=0 .* cmd=client\|info user=default redir=-1 resp=2 lib-name=mylib lib-ver=1\.2\n\r\n$`).MatchString(info) {
				t.Errorf("CLIENT INFO: %q", info)
			}
			list := c.do("CLIENT", "LIST")
			if strings.Count(list, "\n") < 2 || !strings.Contains(list, "lib-name=mylib") {
				t.Errorf("CLIENT LIST: %q", list)
			}
			if got := c.do("CLIENT", "LIST", "ID", "999999"); got != "$0\r\n\r\n" {
				t.Errorf("CLIENT LIST ID: %q", got)
			}
			all := c.do("INFO")
			for _, f := range []string{"# Server\r\n", "redis_version:7.0.0\r\n", "redis_mode:standalone\r\n", "tcp_port:6380\r\n",
				"\r\n\r\n# Clients\r\n", "connected_clients:", "maxclients:10000\r\n", "# Memory\r\n", "used_memory:", "maxmemory:8388608\r\n",
				"maxmemory_policy:allkeys-lfu\r\n", "# Stats\r\n", "total_commands_processed:", "keyspace_hits:",
				"keyspace_misses:", "evicted_keys:", "expired_keys:", "# Replication\r\nrole:master\r\n", "# Keyspace\r\n"} {
				if !strings.Contains(all, f) {
					t.Errorf("INFO lacks %q", f)
				}
			}
			if got := c.do("INFO", "nosuchsection"); got != "$0\r\n\r\n" {
				t.Errorf("INFO nosuchsection: %q", got)
			}
			if got := c.do("TIME"); !regexp.MustCompile(`^\*2\r\n\$10\r\n\d{10}\r\n\$\d\r\n\d{1,6}\r\n$`).MatchString(got) {
				t.Errorf("TIME: %q", got)
			}
			// RESP3 shapes.
			if got := c.do("HELLO", "3"); !strings.HasPrefix(got, "%7\r\n$6\r\nserver\r\n") || !strings.Contains(got, "$5\r\nproto\r\n:3\r\n") {
				t.Errorf("HELLO 3: %q", got)
			}
			for _, tc := range []struct{ cmd, want string }{
				{"CONFIG GET appendonly", "%1\r\n$10\r\nappendonly\r\n$2\r\nno\r\n"},
				{"INFO nosuchsection", "=4\r\ntxt:\r\n"},
				{"GET nosuch", "_\r\n"},
				{"COMMAND DOCS nosuch", "%0\r\n"},
				{"COMMAND INFO nosuch", "*1\r\n_\r\n"},
				{"CLIENT GETNAME", "_\r\n"},
				{"HELLO 2", ""},
				{"GET nosuch", "$-1\r\n"},
			} {
				got := c.do(w(tc.cmd)...)
				if tc.want != "" && got != tc.want {
					t.Errorf("%s: got %q want %q", tc.cmd, got, tc.want)
				}
			}
			if got := c.do("RESET"); got != "+RESET\r\n" {
				t.Errorf("RESET: %q", got)
			}
		})
	}
}

func TestOutOfMemory(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := startEnv(t, resp.Config{EventLoops: m.loops}, store.Config{MaxMemory: store.MinMemory, Eviction: store.EvictionNone})
			c := dial(t, "tcp", e.tcp)
			val := strings.Repeat("v", 1000)
			var got string
			for i := range 10000 {
				if got = c.do("SET", "k"+strconv.Itoa(i), val); got != "+OK\r\n" {
					break
				}
			}
			if got != "-OOM command not allowed when used memory > 'maxmemory'.\r\n" {
				t.Fatalf("filling a noeviction store: %q", got)
			}
			if got := c.do("GET", "k1"); got != "$1000\r\n"+val+"\r\n" {
				t.Errorf("read after OOM: %q", short(got))
			}
			if got := c.do("DEL", "k1"); got != ":1\r\n" {
				t.Errorf("DEL after OOM: %q", got)
			}
		})
	}
}

func TestRequirePass(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := startEnv(t, resp.Config{EventLoops: m.loops, RequirePass: "pw"}, store.Config{})
			c := dial(t, "tcp", e.tcp)
			for _, tc := range [][2]string{
				{c.do("GET", "k"), "-NOAUTH Authentication required.\r\n"},
				{c.do("NOSUCH"), "-ERR unknown command 'NOSUCH', with args beginning with: \r\n"},
				{c.do("GET"), "-ERR wrong number of arguments for 'get' command\r\n"},
				{c.do("HELLO", "3"), "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n"},
				{c.do("AUTH", "wrong"), "-WRONGPASS invalid username-password pair or user is disabled.\r\n"},
				{c.do("AUTH", "other", "pw"), "-WRONGPASS invalid username-password pair or user is disabled.\r\n"},
				{c.do("MULTI"), "-NOAUTH Authentication required.\r\n"},
				{c.do("PING"), "-NOAUTH Authentication required.\r\n"},
				{c.do("AUTH", "pw"), "+OK\r\n"},
				{c.do("PING"), "+PONG\r\n"},
				{c.do("RESET"), "+RESET\r\n"},
				{c.do("PING"), "-NOAUTH Authentication required.\r\n"},
				{c.do("AUTH", "default", "pw"), "+OK\r\n"},
				{c.do("RESET"), "+RESET\r\n"},
			} {
				if tc[0] != tc[1] {
					t.Errorf("got %q want %q", tc[0], tc[1])
				}
			}
			if got := c.do("HELLO", "3", "AUTH", "default", "pw", "SETNAME", "me"); !strings.HasPrefix(got, "%7\r\n") {
				t.Errorf("HELLO AUTH: %q", got)
			}
			if got := c.do("CLIENT", "GETNAME"); got != "$2\r\nme\r\n" {
				t.Errorf("name after HELLO: %q", got)
			}
			// Unauthenticated clients are held to small requests.
			for _, in := range []string{"*11\r\n", "*2\r\n$4\r\nECHO\r\n$16385\r\n"} {
				u := dial(t, "tcp", e.tcp)
				u.send([]byte(in))
				want := "-ERR Protocol error: unauthenticated multibulk length\r\n"
				if strings.Contains(in, "16385") {
					want = "-ERR Protocol error: unauthenticated bulk length\r\n"
				}
				if got := u.read(); got != want || !u.closed() {
					t.Errorf("%q: %q", in, got)
				}
			}
			// Once authenticated, the limits are the store's.
			a := dial(t, "unix", e.unix)
			a.do("AUTH", "pw")
			if got := a.do("ECHO", strings.Repeat("x", 100000)); len(got) != 100000+len("$100000\r\n\r\n") {
				t.Errorf("big echo after auth: %d bytes", len(got))
			}
			ctx := context.Background()
			if err := goRedis(t, e, "tcp", 3).Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
				t.Errorf("go-redis without password: %v", err)
			}
			if err := goRedis(t, e, "unix", 3, func(o *redis.Options) { o.Password = "pw" }).Ping(ctx).Err(); err != nil {
				t.Errorf("go-redis with password: %v", err)
			}
		})
	}
}

func TestMaxClientsAndClose(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := startEnv(t, resp.Config{EventLoops: m.loops, MaxClients: 3}, store.Config{})
			var cs []*raw
			for range 3 {
				c := dial(t, "tcp", e.tcp)
				if got := c.do("PING"); got != "+PONG\r\n" {
					t.Fatal(got)
				}
				cs = append(cs, c)
			}
			extra := dial(t, "tcp", e.tcp)
			extra.send(encode("PING"))
			if got := extra.read(); got != "-ERR max number of clients reached\r\n" || !extra.closed() {
				t.Errorf("fourth client: %q", got)
			}
			cs[0].do("QUIT")
			if !cs[0].closed() {
				t.Error("QUIT did not close")
			}
			// The slot is free again once the server has seen the close.
			var got string
			eventually(t, "a free slot after QUIT", func() bool {
				got = dial(t, "tcp", e.tcp).do("PING")
				return got == "+PONG\r\n"
			})
			// Close ends every connection, and refuses new ones.
			done := make(chan struct{})
			go func() { e.srv.Close(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Close did not return")
			}
			for _, c := range cs[1:] {
				if !c.closed() {
					t.Error("connection open after Close")
				}
			}
			a, b := net.Pipe()
			go e.srv.ServeConn(a, nil)
			b.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := b.Read(make([]byte, 1)); err == nil {
				t.Error("ServeConn after Close kept the connection")
			}
		})
	}
}

// A connection that is not a socket (net.Pipe here; TLS in production) is served by a
// goroutine even when event loops are on.
func TestNonSocketConn(t *testing.T) {
	e := startEnv(t, resp.Config{}, store.Config{})
	a, b := net.Pipe()
	done := make(chan struct{})
	go func() { e.srv.ServeConn(a, []byte("*1\r\n$4\r\nPI")); close(done) }()
	r := &raw{t: t, c: b, r: bufioReader(b)}
	r.send([]byte("NG\r\n"))
	if got := r.read(); got != "+PONG\r\n" {
		t.Fatalf("peeked PING: %q", got)
	}
	if got := r.do("ECHO", "x"); got != "$1\r\nx\r\n" {
		t.Fatalf("echo: %q", got)
	}
	b.Close()
	<-done
}
