package pipeline

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxExpansions caps how many paths one brace pattern may expand to.
const MaxExpansions = 1_000_000

// Expand expands the brace patterns in pattern the way a shell does, in order:
//
//	shards/{00000..00002}.tar  →  shards/00000.tar shards/00001.tar shards/00002.tar
//	{train,val}/{a,b}.csv      →  train/a.csv train/b.csv val/a.csv val/b.csv
//
// A range {A..B} has integer ends (counting down when B < A) or single-letter ends
// ({a..e}); when either integer end has a leading zero, every number is padded to the
// width of the wider end. A list {x,y,z} may hold further braces, and empty items
// ({a,} gives "a" and ""). Braces holding neither a comma nor a range ({x}, {}) are kept
// as they are, like the shell does. Unbalanced braces, a range with other ends, and
// patterns that would give more than MaxExpansions paths are errors. There is no escape
// character, so Windows paths work unchanged.
func Expand(pattern string) ([]string, error) {
	return expandLimit(pattern, MaxExpansions)
}

// expandLimit is Expand with the cap as a parameter (the fuzz target uses a small one).
func expandLimit(pattern string, limit int) ([]string, error) {
	if pattern == "" {
		return nil, fmt.Errorf("expand pattern: empty")
	}
	if err := checkBalanced(pattern); err != nil {
		return nil, fmt.Errorf("expand %q: %w", pattern, err)
	}
	out, err := expandBraces(pattern, limit)
	if err != nil {
		return nil, fmt.Errorf("expand %q: %w", pattern, err)
	}
	return out, nil
}

// checkBalanced reports the first unmatched brace of s.
func checkBalanced(s string) error {
	var open []int
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			open = append(open, i)
		case '}':
			if len(open) == 0 {
				return fmt.Errorf("unmatched '}' at byte %d", i)
			}
			open = open[:len(open)-1]
		}
	}
	if len(open) > 0 {
		return fmt.Errorf("unmatched '{' at byte %d", open[0])
	}
	return nil
}

// expandBraces expands s, whose braces are balanced, into at most limit strings.
func expandBraces(s string, limit int) ([]string, error) {
	start := strings.IndexByte(s, '{')
	if start < 0 {
		return []string{s}, nil
	}
	end := matchingBrace(s, start)
	prefix, inner, suffix := s[:start], s[start+1:end], s[end+1:]

	var alts []string
	parts := splitTopLevel(inner)
	switch {
	case len(parts) > 1:
		for _, p := range parts {
			sub, err := expandBraces(p, limit)
			if err != nil {
				return nil, err
			}
			if len(alts)+len(sub) > limit {
				return nil, fmt.Errorf("more than %d expansions", limit)
			}
			alts = append(alts, sub...)
		}
	case strings.Contains(inner, ".."):
		r, err := expandRange(inner, limit)
		if err != nil {
			return nil, err
		}
		alts = r
	default:
		// {x} or {}: the braces are literal text, but what they hold may still expand.
		sub, err := expandBraces(inner, limit)
		if err != nil {
			return nil, err
		}
		for i := range sub {
			sub[i] = "{" + sub[i] + "}"
		}
		alts = sub
	}

	rest, err := expandBraces(suffix, limit)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 && len(alts) > limit/len(rest) {
		return nil, fmt.Errorf("more than %d expansions", limit)
	}
	out := make([]string, 0, len(alts)*len(rest))
	for _, a := range alts {
		for _, r := range rest {
			out = append(out, prefix+a+r)
		}
	}
	return out, nil
}

// matchingBrace returns the index of the '}' closing the '{' at s[start].
func matchingBrace(s string, start int) int {
	depth := 0
	for i := start; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1 // unreachable: the caller checked the balance
}

// splitTopLevel splits s at the commas outside nested braces.
func splitTopLevel(s string) []string {
	var parts []string
	depth, from := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, s[from:i])
				from = i + 1
			}
		}
	}
	return append(parts, s[from:])
}

// expandRange expands the inside of {A..B}.
func expandRange(inner string, limit int) ([]string, error) {
	lo, hi, ok := strings.Cut(inner, "..")
	if !ok || strings.Contains(hi, "..") {
		return nil, fmt.Errorf("malformed range {%s}: want {A..B}", inner)
	}
	if isLetter(lo) && isLetter(hi) {
		a, b := lo[0], hi[0]
		step := 1
		if b < a {
			step = -1
		}
		var out []string
		for c := int(a); ; c += step {
			out = append(out, string(rune(c)))
			if c == int(b) {
				return out, nil
			}
		}
	}
	a, errA := parseRangeEnd(lo)
	b, errB := parseRangeEnd(hi)
	if errA != nil || errB != nil {
		return nil, fmt.Errorf("malformed range {%s}: the ends must be integers or single letters", inner)
	}
	var n uint64 // the distance, computed without overflow
	if b >= a {
		n = uint64(b) - uint64(a)
	} else {
		n = uint64(a) - uint64(b)
	}
	if n >= uint64(limit) {
		return nil, fmt.Errorf("range {%s} gives more than %d expansions", inner, limit)
	}
	width := 0
	if zeroPadded(lo) || zeroPadded(hi) {
		width = max(len(lo), len(hi))
	}
	step := int64(1)
	if b < a {
		step = -1
	}
	out := make([]string, 0, n+1)
	for v := a; ; v += step {
		out = append(out, padInt(v, width))
		if v == b {
			return out, nil
		}
	}
}

// parseRangeEnd parses one integer end of a range: digits, optionally after a '-'.
func parseRangeEnd(s string) (int64, error) {
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, fmt.Errorf("not an integer: %q", s)
	}
	return strconv.ParseInt(s, 10, 64)
}

// zeroPadded reports whether the integer s is written with a leading zero ("007", "-07").
func zeroPadded(s string) bool {
	s = strings.TrimPrefix(s, "-")
	return len(s) > 1 && s[0] == '0'
}

// padInt formats v with at least width characters, zeros after any minus sign.
func padInt(v int64, width int) string {
	s := strconv.FormatInt(v, 10)
	if len(s) >= width {
		return s
	}
	if v < 0 {
		return "-" + strings.Repeat("0", width-len(s)) + s[1:]
	}
	return strings.Repeat("0", width-len(s)) + s
}

// isLetter reports whether s is one ASCII letter.
func isLetter(s string) bool {
	return len(s) == 1 && (s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z')
}
