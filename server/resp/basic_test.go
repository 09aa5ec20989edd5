package resp_test

import (
	"testing"

	"github.com/cachee/cachee/server/resp"
	"github.com/cachee/cachee/store"
)

func TestSmoke(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := startEnv(t, resp.Config{EventLoops: m.loops}, store.Config{})
			for _, nw := range []string{"tcp", "unix"} {
				addr := e.tcp
				if nw == "unix" {
					addr = e.unix
				}
				c := dial(t, nw, addr)
				for _, tc := range [][2]string{
					{c.do("PING"), "+PONG\r\n"},
					{c.do("SET", "k", "v"), "+OK\r\n"},
					{c.do("GET", "k"), "$1\r\nv\r\n"},
					{c.do("GET", "nope"), "$-1\r\n"},
					{c.do("FOO", "a"), "-ERR unknown command 'FOO', with args beginning with: 'a' \r\n"},
					{c.do("DEL", "k"), ":1\r\n"},
				} {
					if tc[0] != tc[1] {
						t.Errorf("%s: got %q want %q", nw, tc[0], tc[1])
					}
				}
			}
		})
	}
}
