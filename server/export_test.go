package server

// SetMaxLingering sets how many refused calls' contexts may be alive (see
// admission.refuse) for one test, and returns what puts it back.
func SetMaxLingering(n int64) (restore func()) {
	old := maxLingering
	maxLingering = n
	return func() { maxLingering = old }
}
