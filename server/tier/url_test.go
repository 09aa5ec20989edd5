package tier_test

import (
	"testing"

	"github.com/cachee/cachee/server/tier"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"redis://user:s3cret@redis:6379/0": "redis://xxxxx@redis:6379/0",
		"rediss://:p@ss@w0rd@redis:6380":   "rediss://xxxxx@redis:6380",
		"redis+cluster://a:b@h1:1,h2:2":    "redis+cluster://xxxxx@h1:1,h2:2",
		"redis://redis:6379":               "redis://redis:6379",
		"not a url, but has an @ sign":     "not a url, but has an @ sign",
		"":                                 "",
	} {
		if got := tier.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
