package l2

import (
	"slices"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Endpoint
		str  string
	}{
		{"redis://redis:6379", Endpoint{Addrs: []string{"redis:6379"}}, "redis://redis:6379"},
		{"redis://redis", Endpoint{Addrs: []string{"redis:6379"}}, "redis://redis:6379"},
		{"redis://10.0.0.1:7000/3", Endpoint{Addrs: []string{"10.0.0.1:7000"}, DB: 3}, "redis://10.0.0.1:7000/3"},
		{"rediss://u:p%40ss@r:6380", Endpoint{Addrs: []string{"r:6380"}, TLS: true, Username: "u", Password: "p@ss"}, "rediss://u:xxxxx@r:6380"},
		{"redis://:secret@r:1", Endpoint{Addrs: []string{"r:1"}, Password: "secret"}, "redis://:xxxxx@r:1"},
		{"redis://[::1]:6379", Endpoint{Addrs: []string{"[::1]:6379"}}, "redis://[::1]:6379"},
		{"redis+cluster://a:1,b:2,c", Endpoint{Addrs: []string{"a:1", "b:2", "c:6379"}, Cluster: true}, "redis+cluster://a:1,b:2,c:6379"},
		{"rediss+cluster://u:p@a:1", Endpoint{Addrs: []string{"a:1"}, Cluster: true, TLS: true, Username: "u", Password: "p"}, "rediss+cluster://u:xxxxx@a:1"},
	} {
		got, err := ParseURL(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if !slices.Equal(got.Addrs, tc.want.Addrs) || got.Cluster != tc.want.Cluster || got.TLS != tc.want.TLS ||
			got.Username != tc.want.Username || got.Password != tc.want.Password || got.DB != tc.want.DB {
			t.Errorf("%s: %+v, want %+v", tc.in, got, tc.want)
		}
		if got.String() != tc.str {
			t.Errorf("%s: String %q, want %q", tc.in, got.String(), tc.str)
		}
	}
	if e, err := ParseURL("redis://:a?b#c/d@r:1/0"); err != nil || e.Password != "a?b#c/d" || e.Addrs[0] != "r:1" {
		t.Errorf("raw ?, # and / in a password: %+v %v", e, err)
	}
	if e, err := ParseURL("redis://:50%off@r:1"); err != nil || e.Password != "50%off" {
		t.Errorf("raw %% in a password: %+v %v", e, err)
	}
	a, _ := ParseURL("redis://:secret@r:1/2")
	for in, same := range map[string]bool{"redis://r:1/2": true, "redis://u:other@r:1/2": true, "redis://r:1": false, "rediss://r:1/2": false, "redis://r:2/2": false} {
		b, _ := ParseURL(in)
		if a.SameServers(b) != same {
			t.Errorf("SameServers(%s) = %v", in, !same)
		}
	}
	for _, bad := range []string{
		"", "redis:6379", "http://r:1", "redis://", "redis://a:1,b:2", "redis+cluster://a:1/2",
		"redis://r:1/x", "redis://r:99999", "redis://r:1?db=2", "redis+cluster://a:1,,b:2",
	} {
		if _, err := ParseURL(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if _, err := ParseURL("ftp://u:hunter2@x"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error shows the password: %v", err)
	}
}
