//go:build race

package cachee_test

func init() { raceEnabled = true }
