// Package assets holds the files embedded in the binary: web UI, icons, model vocabularies.
package assets

import _ "embed"

// CLIPVocab is bpe_simple_vocab_16e6.txt.gz, the byte-level BPE merges of OpenAI CLIP as
// shipped in open_clip (MIT licence, see clip/bpe_simple_vocab_16e6.LICENSE.txt), gzipped.
//
//go:embed clip/bpe_simple_vocab_16e6.txt.gz
var CLIPVocab []byte
