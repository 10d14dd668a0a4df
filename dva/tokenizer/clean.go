package tokenizer

import (
	"html"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Clean is OpenCLIP's "lower" clean step: ftfy.fix_text (the parts listed in the package
// documentation), html.unescape twice, strip, collapse runs of Unicode whitespace to one
// space, and Python's full Unicode lower-casing. Invalid UTF-8 bytes become U+FFFD first.
func Clean(s string) string {
	if !utf8.ValidString(s) {
		var sb strings.Builder
		for _, r := range s { // one U+FFFD per bad byte
			sb.WriteRune(r)
		}
		s = sb.String()
	}
	s = fixText(s)
	s = unescapeHTML(unescapeHTML(s))
	s = strings.Join(strings.FieldsFunc(s, isSpace), " ")
	return lower(s)
}

// lower is Python's str.lower: full case mapping, where İ (U+0130) becomes i + U+0307
// and Σ becomes ς at the end of a word (Final_Sigma), σ elsewhere.
func lower(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(s)
	}
	var sb strings.Builder
	sb.Grow(len(s))
	for i, r := range s {
		switch r {
		case 'İ':
			sb.WriteString("i\u0307")
		case 'Σ':
			if finalSigma(s, i) {
				sb.WriteRune('ς')
			} else {
				sb.WriteRune('σ')
			}
		default:
			sb.WriteRune(unicode.ToLower(r))
		}
	}
	return sb.String()
}

// finalSigma tests the Final_Sigma condition for the Σ at byte i: a cased letter before
// it (skipping case-ignorable characters) and none after it.
func finalSigma(s string, i int) bool {
	before := false
	for j := i; j > 0; {
		r, n := utf8.DecodeLastRuneInString(s[:j])
		j -= n
		if caseIgnorable(r) {
			continue
		}
		before = cased(r)
		break
	}
	if !before {
		return false
	}
	for j := i + len("Σ"); j < len(s); {
		r, n := utf8.DecodeRuneInString(s[j:])
		j += n
		if caseIgnorable(r) {
			continue
		}
		return !cased(r)
	}
	return true
}

func cased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) ||
		unicode.Is(unicode.Other_Lowercase, r) || unicode.Is(unicode.Other_Uppercase, r)
}

// caseIgnorable approximates the Case_Ignorable property: Mn, Me, Cf, Lm, Sk and the
// word-break MidLetter, MidNumLet and Single_Quote characters.
func caseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', '^', '`', 0xb7, 0x387, 0x55f, 0x5f4, 0x2018, 0x2019, 0x2024, 0x2027,
		0xfe13, 0xfe52, 0xfe55, 0xff07, 0xff0e, 0xff1a:
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}

// unescapeHTML is Python's html.unescape: numeric references with the HTML5 rules for
// invalid code points, named references (with or without ';', longest legacy prefix).
func unescapeHTML(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	var sb strings.Builder
	for {
		i := strings.IndexByte(s, '&')
		if i < 0 {
			sb.WriteString(s)
			return sb.String()
		}
		sb.WriteString(s[:i])
		s = s[i:]
		rep, n := charref(s)
		if n == 0 {
			sb.WriteByte('&')
			s = s[1:]
			continue
		}
		sb.WriteString(rep)
		s = s[n:]
	}
}

// charref matches Python's &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?) at the
// start of s and returns the replacement and the length matched (0: no match).
func charref(s string) (string, int) {
	if len(s) < 2 {
		return "", 0
	}
	if s[1] == '#' {
		hex := len(s) > 2 && (s[2] == 'x' || s[2] == 'X')
		start := 2
		if hex {
			start = 3
		}
		j := start
		for j < len(s) && (isDigit(s[j]) || hex && isHex(s[j])) {
			j++
		}
		if j == start {
			return "", 0
		}
		digits := s[start:j]
		if j < len(s) && s[j] == ';' {
			j++
		}
		base := 10
		if hex {
			base = 16
		}
		num, err := strconv.ParseUint(digits, base, 32)
		if err != nil || num > 0x10ffff {
			return "\uFFFD", j
		}
		return numericRef(rune(num)), j
	}
	// named: up to 32 characters other than \t \n \f space < & # ;
	j := 1
	count := 0
	for j < len(s) && count < 32 {
		r, n := utf8.DecodeRuneInString(s[j:])
		if r == '\t' || r == '\n' || r == '\f' || r == ' ' || r == '<' || r == '&' || r == '#' || r == ';' {
			break
		}
		j += n
		count++
	}
	if count == 0 {
		return "", 0
	}
	if j < len(s) && s[j] == ';' {
		j++
	}
	// Go's html package holds the same WHATWG table and, for a single reference, the
	// same exact-then-longest-legacy-prefix rule; the rest of the match (no '&' in it)
	// passes through unchanged.
	return html.UnescapeString(s[:j]), j
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isHex(c byte) bool   { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// cp1252 maps bytes 0x80..0x9f to the Windows-1252 characters; undefined ones to themselves.
var cp1252 = [32]rune{
	0x20ac, 0x81, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8d, 0x017d, 0x8f,
	0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x9d, 0x017e, 0x0178,
}

// numericRef applies Python's html.unescape rules to a numeric reference.
func numericRef(r rune) string {
	switch {
	case r == 0:
		return "\uFFFD"
	case r == 0x0d:
		return "\r"
	case r >= 0x80 && r <= 0x9f:
		return string(cp1252[r-0x80])
	case r >= 0xd800 && r <= 0xdfff:
		return "\uFFFD"
	case r >= 0x1 && r <= 0x8, r == 0xb, r >= 0xe && r <= 0x1f, r == 0x7f,
		r >= 0xfdd0 && r <= 0xfdef, r&0xfffe == 0xfffe:
		return ""
	}
	return string(r)
}
