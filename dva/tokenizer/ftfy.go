package tokenizer

import (
	"bytes"
	"html"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// fixText is the part of ftfy.fix_text (ftfy 6.3, default settings) described in the
// package documentation. Like ftfy it works line by line and repeats the fixes on a line
// until it stops changing.
func fixText(s string) string {
	if isASCIIPrintable(s) {
		return s
	}
	var sb strings.Builder
	for len(s) > 0 {
		n := strings.IndexByte(s, '\n') + 1
		if n == 0 {
			n = len(s)
		}
		sb.WriteString(fixLine(s[:n]))
		s = s[n:]
	}
	return sb.String()
}

// isASCIIPrintable reports text that no fix changes: printable ASCII without '&' or ESC.
func isASCIIPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x7f || c < 0x20 && c != '\t' && c != '\n' || c == '&' {
			return false
		}
	}
	return true
}

func fixLine(s string) string {
	unescape := !strings.Contains(s, "<")
	for range 16 {
		orig := s
		if unescape {
			s = ftfyUnescape(s)
		}
		s = fixEncoding(s)
		s = fixC1(s)
		s = mapRunes(s, ligature)
		s = mapRunes(s, width)
		s = mapRunes(s, quote)
		s = fixLineBreaks(s)
		s = removeTerminalEscapes(s)
		s = mapRunes(s, control)
		s = norm.NFC.String(s)
		if s == orig {
			break
		}
	}
	return s
}

// mapRunes replaces every rune for which f reports a replacement.
func mapRunes(s string, f func(rune) (string, bool)) string {
	var sb *strings.Builder
	for i, r := range s {
		rep, ok := f(r)
		if !ok {
			if sb != nil {
				sb.WriteRune(r)
			}
			continue
		}
		if sb == nil {
			sb = &strings.Builder{}
			sb.Grow(len(s))
			sb.WriteString(s[:i])
		}
		sb.WriteString(rep)
	}
	if sb == nil {
		return s
	}
	return sb.String()
}

// ftfyUnescape is ftfy's unescape_html: only references matching &#?[0-9A-Za-z]{1,24};
// are replaced, and a numeric one only when it decodes completely.
func ftfyUnescape(s string) string {
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
		j := 1
		if j < len(s) && s[j] == '#' {
			j++
		}
		k := j
		for k < len(s) && k-j < 25 && isAlnum(s[k]) {
			k++
		}
		if k == j || k-j > 24 || k >= len(s) || s[k] != ';' {
			sb.WriteByte('&')
			s = s[1:]
			continue
		}
		ref := s[:k+1]
		sb.WriteString(ftfyEntity(ref))
		s = s[k+1:]
	}
}

func isAlnum(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// ftfyEntity replaces one "&name;" or "&#...;" as ftfy does.
func ftfyEntity(ref string) string {
	if strings.HasPrefix(ref, "&#") {
		out := unescapeHTML(ref)
		if strings.Contains(out, ";") {
			return ref
		}
		return out
	}
	if v, ok := namedEntity(ref); ok {
		return v
	}
	// Upper-cased names of lower-case entities ("&NTILDE;" -> "Ñ"), when the upper-case
	// form is not itself something html.unescape decodes.
	name := ref[1 : len(ref)-1]
	low := strings.ToLower(name)
	if low != name && strings.ToUpper(low) == name && unescapeHTML(ref) == ref {
		if v, ok := namedEntity("&" + low + ";"); ok {
			return pyUpper(v)
		}
	}
	return ref
}

// namedEntity looks up "&name;" exactly in the WHATWG table (no legacy-prefix fallback).
func namedEntity(ref string) (string, bool) {
	out := html.UnescapeString(ref)
	// A miss or a prefix match leaves the final ';' in place; only &semi; decodes to ';'.
	if out == ref || strings.HasSuffix(out, ";") && ref != "&semi;" {
		return "", false
	}
	return out, true
}

func pyUpper(s string) string {
	return strings.ToUpper(strings.ReplaceAll(s, "ß", "SS"))
}

// fixEncoding undoes the common mojibake: UTF-8 bytes decoded as Latin-1 or as
// Windows-1252 (ftfy's "sloppy" variant, where the five undefined bytes map to U+0081,
// U+008D, U+008F, U+0090, U+009D).
func fixEncoding(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	for _, enc := range []func(rune) (byte, bool){encLatin1, encSloppy1252} {
		b := make([]byte, 0, len(s))
		ok := true
		for _, r := range s {
			c, good := enc(r)
			if !good {
				ok = false
				break
			}
			b = append(b, c)
		}
		if !ok {
			continue
		}
		// ftfy switches to its utf-8-variants decoder for these bytes; not reproduced.
		if !utf8.Valid(b) || bytes.IndexByte(b, 0xed) >= 0 || bytes.IndexByte(b, 0xc0) >= 0 {
			continue
		}
		return string(b)
	}
	return s
}

func encLatin1(r rune) (byte, bool) { return byte(r), r < 0x100 }

func encSloppy1252(r rune) (byte, bool) {
	if r < 0x80 || r >= 0xa0 && r < 0x100 {
		return byte(r), true
	}
	for i, c := range cp1252 {
		if c == r {
			return byte(0x80 + i), true
		}
	}
	return 0, false
}

// fixC1 is ftfy's fix_c1_controls: C1 control characters read as Windows-1252.
func fixC1(s string) string {
	return mapRunes(s, func(r rune) (string, bool) {
		if r >= 0x80 && r <= 0x9f {
			return string(cp1252[r-0x80]), true
		}
		return "", false
	})
}

var ligatures = map[rune]string{
	'Ĳ': "IJ", 'ĳ': "ij", 'ŉ': "ʼn",
	'Ǳ': "DZ", 'ǲ': "Dz", 'ǳ': "dz", 'Ǆ': "DŽ", 'ǅ': "Dž", 'ǆ': "dž",
	'Ǉ': "LJ", 'ǈ': "Lj", 'ǉ': "lj", 'Ǌ': "NJ", 'ǋ': "Nj", 'ǌ': "nj",
	'ﬀ': "ff", 'ﬁ': "fi", 'ﬂ': "fl", 'ﬃ': "ffi", 'ﬄ': "ffl", 'ﬅ': "ſt", 'ﬆ': "st",
}

func ligature(r rune) (string, bool) {
	v, ok := ligatures[r]
	return v, ok
}

// width is ftfy's fix_character_width: fullwidth and halfwidth forms to their NFKC
// equivalents, and the ideographic space to a space.
func width(r rune) (string, bool) {
	if r == 0x3000 {
		return " ", true
	}
	if r < 0xff01 || r >= 0xfff0 {
		return "", false
	}
	v := norm.NFKC.String(string(r))
	return v, v != string(r)
}

func quote(r rune) (string, bool) {
	switch {
	case r == 0x2bc || r >= 0x2018 && r <= 0x201b:
		return "'", true
	case r >= 0x201c && r <= 0x201f:
		return "\"", true
	}
	return "", false
}

func fixLineBreaks(s string) string {
	if !strings.ContainsAny(s, "\r\u2028\u2029\u0085") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.NewReplacer("\r", "\n", "\u2028", "\n", "\u2029", "\n", "\u0085", "\n").Replace(s)
}

// removeTerminalEscapes drops ANSI sequences ESC [ (digits or ';')* letter.
func removeTerminalEscapes(s string) string {
	if !strings.Contains(s, "\x1b[") {
		return s
	}
	var sb strings.Builder
	for {
		i := strings.Index(s, "\x1b[")
		if i < 0 {
			sb.WriteString(s)
			return sb.String()
		}
		j := i + 2
		for j < len(s) && (isDigit(s[j]) || s[j] == ';') {
			j++
		}
		if j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z') {
			sb.WriteString(s[:i])
			s = s[j+1:]
			continue
		}
		sb.WriteString(s[:i+1])
		s = s[i+1:]
	}
}

// control is ftfy's remove_control_chars.
func control(r rune) (string, bool) {
	switch {
	case r <= 0x08, r == 0x0b, r >= 0x0e && r <= 0x1f, r == 0x7f,
		r >= 0x206a && r <= 0x206f, r == 0xfeff, r >= 0xfff9 && r <= 0xfffc:
		return "", true
	}
	return "", false
}
