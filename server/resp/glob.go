package resp

// globMatch reports whether s matches the glob pattern p with Redis's rules (KEYS,
// SCAN MATCH, CONFIG GET): '*' any run, '?' any byte, '[...]' a class with ranges, a
// leading '^' to negate and '\' to escape, and '\' to take the next byte literally. A
// class left open at the end of the pattern ends there, and bytes in ranges compare as
// C's signed char, as in Redis.
func globMatch(p, s []byte) bool {
	skipLonger := false
	return globAt(p, s, &skipLonger, 0)
}

func globAt(p, s []byte, skipLonger *bool, depth int) bool {
	// Redis bounds the recursion (one level per '*'); so do we.
	if depth > 1000 {
		return false
	}
	for len(p) > 0 && len(s) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 1 && p[1] == '*' {
				p = p[1:]
			}
			if len(p) == 1 {
				return true
			}
			for len(s) > 0 {
				if globAt(p[1:], s, skipLonger, depth+1) {
					return true
				}
				if *skipLonger {
					return false
				}
				s = s[1:]
			}
			// The rest of the pattern matched nowhere in the rest of s: no earlier
			// '*' can help by taking more.
			*skipLonger = true
			return false
		case '?':
			s = s[1:]
		case '[':
			p = p[1:]
			not := len(p) > 0 && p[0] == '^'
			if not {
				p = p[1:]
			}
			match := false
			for {
				if len(p) == 0 {
					// Unterminated class: it ends with the pattern. Leave one byte for
					// the step below to consume.
					p = []byte{0}
					break
				}
				if p[0] == '\\' && len(p) >= 2 {
					p = p[1:]
					if p[0] == s[0] {
						match = true
					}
				} else if p[0] == ']' {
					break
				} else if len(p) >= 3 && p[1] == '-' {
					lo, hi, c := int8(p[0]), int8(p[2]), int8(s[0])
					if lo > hi {
						lo, hi = hi, lo
					}
					p = p[2:]
					if c >= lo && c <= hi {
						match = true
					}
				} else if p[0] == s[0] {
					match = true
				}
				p = p[1:]
			}
			if not {
				match = !match
			}
			if !match {
				return false
			}
			s = s[1:]
		case '\\':
			if len(p) >= 2 {
				p = p[1:]
			}
			fallthrough
		default:
			if p[0] != s[0] {
				return false
			}
			s = s[1:]
		}
		p = p[1:]
		if len(s) == 0 {
			for len(p) > 0 && p[0] == '*' {
				p = p[1:]
			}
			break
		}
	}
	return len(p) == 0 && len(s) == 0
}
