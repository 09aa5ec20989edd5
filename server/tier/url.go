package tier

import "strings"

// RedactURL hides the user information of a URL (a password) for logs and errors.
func RedactURL(u string) string {
	if at := strings.LastIndexByte(u, '@'); at >= 0 {
		if i := strings.Index(u, "://"); i >= 0 && i < at {
			return u[:i+3] + "xxxxx" + u[at:]
		}
	}
	return u
}
