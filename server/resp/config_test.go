package resp_test

import (
	"testing"

	"github.com/cachee/cachee/server/resp"
)

func TestConfigValidate(t *testing.T) {
	for _, c := range []resp.Config{{}, resp.DefaultConfig(), {RequirePass: "x", MaxClients: 1, EventLoops: -1}} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	for _, c := range []resp.Config{
		{MaxClients: -1},
		{MaxBulk: -1},
		{MaxArgs: -5},
		{MaxRequest: 100},
		{MaxBulk: 128 << 20, MaxRequest: 64 << 20},
		{MaxOutput: -1},
		{Port: 70000},
		{RequirePass: "a\nb"},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: accepted", c)
		}
	}
}
