// Package tokenizer is OpenCLIP's SimpleTokenizer: text to 77 CLIP token ids with the
// byte-level BPE vocabulary embedded in package assets.
//
// The pipeline: Clean (ftfy.fix_text, html.unescape twice, whitespace collapse, Python's
// str.lower), a hand-written scanner for OpenCLIP's regex, byte-level BPE with the first
// 48894 merges, then [SOT] + ids + [EOT] cut to the context length (EOT kept last) and
// padded with 0.
//
// # Which parts of ftfy 6.3 fix_text are reproduced
//
// Matched (fix_text's defaults, applied line by line and repeated until nothing changes):
//   - unescape_html: ";"-terminated named and numeric references, to any depth of
//     escaping, and the upper-cased forms ("&NTILDE;"); skipped on a line holding "<".
//   - fix_encoding, the common case only: a line that is UTF-8 decoded as Latin-1 or
//     Windows-1252 ("Ã©tÃ©" -> "été") is decoded back when the whole line re-encodes
//     to valid UTF-8 with at least one multi-byte sequence.
//   - fix_c1_controls: U+0080..U+009F read as Windows-1252 (U+0085 -> "…").
//   - fix_latin_ligatures: ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ, Ĳ ĳ, ŉ, Ǆ..ǌ, Ǳ..ǳ.
//   - fix_character_width: U+FF01..U+FFEF by NFKC, U+3000 -> space.
//   - uncurl_quotes: U+2018..U+201B and U+02BC -> ', U+201C..U+201F -> ".
//   - fix_line_breaks, remove_terminal_escapes (ESC [ digits ; letter), remove_control_chars
//     (U+0000..U+0008, U+000B, U+000E..U+001F, U+007F, U+206A..U+206F, U+FEFF,
//     U+FFF9..U+FFFC), and NFC normalisation.
//
// Not matched: ftfy's badness heuristic (is_bad) and the other single-byte encodings
// (Windows-1250/1251/1253/1254/1257, ISO-8859-2, MacRoman, cp437) of fix_encoding,
// mixed lines fixed by decode_inconsistent_utf8, restore_byte_a0, replace_lossy_sequences
// and the utf-8-variants (CESU-8) decoder. Text needing those keeps its mojibake, as it
// would without ftfy. Python's Unicode tables may be of a different version than Go's.
//
// Against tokenizer_vectors.json of the shared reference data all 47 vectors give the
// ftfy ids (ids), including the 8 ftfy-dependent ones.
package tokenizer
