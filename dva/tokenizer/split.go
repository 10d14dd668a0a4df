package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// split cuts cleaned text into pieces as OpenCLIP's regex does, matched case-insensitively
// with the leftmost alternative winning:
//
//	<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//
// Anything else (whitespace) is skipped.
func split(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		if n := matchLiteral(s[i:]); n > 0 {
			out = append(out, s[i:i+n])
			i += n
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case unicode.IsLetter(r):
			j := i + size
			for j < len(s) {
				r, n := utf8.DecodeRuneInString(s[j:])
				if !unicode.IsLetter(r) {
					break
				}
				j += n
			}
			out = append(out, s[i:j])
			i = j
		case unicode.IsNumber(r):
			out = append(out, s[i:i+size])
			i += size
		case isSpace(r) || r == 0x345:
			// U+0345 (combining ypogegrammeni) folds to a letter, so under IGNORECASE
			// it matches neither [\p{L}] nor [^\s\p{L}\p{N}]: the regex skips it.
			i += size
		default:
			j := i + size
			for j < len(s) {
				r, n := utf8.DecodeRuneInString(s[j:])
				if unicode.IsLetter(r) || unicode.IsNumber(r) || isSpace(r) || r == 0x345 {
					break
				}
				j += n
			}
			out = append(out, s[i:j])
			i = j
		}
	}
	return out
}

// literals are the alternatives tried before the character classes, in order.
var literals = []string{"<start_of_text>", "<end_of_text>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"}

// matchLiteral returns the byte length of the first literal alternative that s starts
// with, compared case-insensitively (simple case folding, as the regex module's
// IGNORECASE does: "'ſ" matches "'s"), or 0.
func matchLiteral(s string) int {
	if s == "" || (s[0] != '<' && s[0] != '\'') {
		return 0
	}
	for _, lit := range literals {
		if n := foldPrefix(s, lit); n > 0 {
			return n
		}
	}
	return 0
}

// foldPrefix reports how many bytes of s match the ASCII literal lit under simple case
// folding, or 0 when s does not start with it.
func foldPrefix(s, lit string) int {
	i := 0
	for _, want := range lit {
		if i >= len(s) {
			return 0
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r != want && !foldEq(r, want) {
			return 0
		}
		i += n
	}
	return i
}

func foldEq(r, want rune) bool {
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f == want {
			return true
		}
	}
	return false
}

// isSpace is Python's str.isspace for one character: Unicode White_Space plus the
// information separators U+001C..U+001F.
func isSpace(r rune) bool {
	return unicode.IsSpace(r) || r >= 0x1c && r <= 0x1f
}
