package tokenizer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/gata-contrib/gata/assets"
)

// Special ids and the context length of the CLIP text tower.
const (
	SOT           = 49406 // <start_of_text>
	EOT           = 49407 // <end_of_text>
	ContextLength = 77
	// VocabSize is the number of token ids.
	VocabSize = 49408
	numMerges = 49152 - 256 - 2 // merges used: lines 1..48894 of the vocab file
	cacheMax  = 1 << 16         // words kept in the BPE cache
)

// Tokenizer turns text into CLIP token ids. It is safe for concurrent use.
type Tokenizer struct {
	byteID [256]int32         // byte -> id of its stand-in symbol; +256 for the word-final form
	ranks  map[uint64]merge   // (left id, right id) -> merge
	ids    map[string]int32   // token string -> id (for tests and decoding)
	tokens []string           // id -> token string, bytes already mapped back
	mu     sync.RWMutex       // guards cache
	cache  map[string][]int32 // piece -> ids
}

type merge struct {
	rank int32
	id   int32
}

var (
	defaultOnce sync.Once
	defaultTok  *Tokenizer
	defaultErr  error
)

// New returns the tokenizer for the embedded CLIP vocabulary, parsed once per process.
func New() (*Tokenizer, error) {
	defaultOnce.Do(func() {
		defaultTok, defaultErr = parse(assets.CLIPVocab)
	})
	return defaultTok, defaultErr
}

// byteOrder returns the 256 bytes in vocabulary order and the stand-in rune of each:
// printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves, the other
// 68 bytes map, in increasing order, to U+0100, U+0101, …
func byteOrder() (order [256]byte, standIn [256]rune) {
	keep := func(b int) bool {
		return b >= 0x21 && b <= 0x7e || b >= 0xa1 && b <= 0xac || b >= 0xae && b <= 0xff
	}
	n := 0
	for b := 0; b < 256; b++ {
		if keep(b) {
			order[n] = byte(b)
			standIn[b] = rune(b)
			n++
		}
	}
	extra := 0
	for b := 0; b < 256; b++ {
		if !keep(b) {
			order[n] = byte(b)
			standIn[b] = rune(256 + extra)
			extra++
			n++
		}
	}
	return order, standIn
}

// parse reads the gzipped merges file.
func parse(gz []byte) (*Tokenizer, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("read CLIP vocabulary: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read CLIP vocabulary: %w", err)
	}
	t := &Tokenizer{
		ranks: make(map[uint64]merge, numMerges),
		ids:   make(map[string]int32, VocabSize),
		cache: map[string][]int32{},
	}
	order, standIn := byteOrder()
	// vocab: 256 byte symbols, the same with </w>, the merges, the two specials.
	vocab := make([]string, 0, VocabSize)
	decoded := make([]string, 0, VocabSize)
	for _, b := range order {
		vocab = append(vocab, string(standIn[b]))
		decoded = append(decoded, string([]byte{b}))
	}
	for i := 0; i < 256; i++ {
		vocab = append(vocab, vocab[i]+"</w>")
		decoded = append(decoded, decoded[i]+"</w>")
	}
	for i, b := range order {
		t.byteID[b] = int32(i)
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1024), 1<<20)
	sc.Scan() // header line "#version: 0.2"
	type pair struct{ a, b string }
	merges := make([]pair, 0, numMerges)
	for len(merges) < numMerges && sc.Scan() {
		a, b, ok := strings.Cut(sc.Text(), " ")
		if !ok || a == "" || b == "" || strings.Contains(b, " ") {
			return nil, fmt.Errorf("read CLIP vocabulary: bad merge line %d: %q", len(merges)+2, sc.Text())
		}
		merges = append(merges, pair{a, b})
		vocab = append(vocab, a+b)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read CLIP vocabulary: %w", err)
	}
	if len(merges) != numMerges {
		return nil, fmt.Errorf("read CLIP vocabulary: %d merges, want %d", len(merges), numMerges)
	}
	vocab = append(vocab, "<start_of_text>", "<end_of_text>")
	// Later duplicates win, as in a Python dict comprehension.
	for i, s := range vocab {
		t.ids[s] = int32(i)
	}
	unmap := map[rune]byte{}
	for b := 0; b < 256; b++ {
		unmap[standIn[b]] = byte(b)
	}
	for i := 512; i < len(vocab); i++ {
		s := vocab[i]
		if i < 512+numMerges {
			var out []byte
			w := strings.TrimSuffix(s, "</w>")
			for _, r := range w {
				out = append(out, unmap[r])
			}
			if len(w) < len(s) {
				out = append(out, "</w>"...)
			}
			decoded = append(decoded, string(out))
		} else {
			decoded = append(decoded, s)
		}
	}
	t.tokens = decoded
	for rank, m := range merges {
		a, okA := t.ids[m.a]
		b, okB := t.ids[m.b]
		if !okA || !okB {
			continue // a merge of a symbol that can never occur
		}
		t.ranks[uint64(a)<<32|uint64(b)] = merge{rank: int32(rank), id: t.ids[m.a+m.b]}
	}
	return t, nil
}

// Encode returns exactly ContextLength ids: SOT, the text's tokens, EOT, zeros. Longer
// texts are cut so that EOT is the last id.
func (t *Tokenizer) Encode(text string) []int32 { return t.EncodeContext(text, ContextLength) }

// EncodeContext is Encode for a context of n ids (n >= 2).
func (t *Tokenizer) EncodeContext(text string, n int) []int32 {
	if n < 2 {
		n = 2
	}
	out := make([]int32, 0, n)
	out = append(out, SOT)
	for _, piece := range split(Clean(text)) {
		if len(out) >= n {
			break
		}
		out = append(out, t.piece(piece)...)
	}
	if len(out) >= n {
		out = out[:n-1]
	}
	out = append(out, EOT)
	for len(out) < n {
		out = append(out, 0)
	}
	return out
}

// Tokens returns the ids of text without SOT, EOT, truncation or padding.
func (t *Tokenizer) Tokens(text string) []int32 {
	var out []int32
	for _, piece := range split(Clean(text)) {
		out = append(out, t.piece(piece)...)
	}
	return out
}

// Decode turns ids back into text: "</w>" becomes a space, SOT is dropped and decoding
// stops at EOT (what follows is padding).
func (t *Tokenizer) Decode(ids []int32) string {
	var sb strings.Builder
	for _, id := range ids {
		if id == EOT {
			break
		}
		if id < 0 || id == SOT || int(id) >= len(t.tokens) {
			continue
		}
		sb.WriteString(t.tokens[id])
	}
	return strings.TrimSpace(strings.ReplaceAll(strings.ToValidUTF8(sb.String(), "\uFFFD"), "</w>", " "))
}

// piece returns the ids of one regex piece.
func (t *Tokenizer) piece(p string) []int32 {
	switch p {
	case "<start_of_text>":
		return []int32{SOT}
	case "<end_of_text>":
		return []int32{EOT}
	}
	t.mu.RLock()
	ids, ok := t.cache[p]
	t.mu.RUnlock()
	if ok {
		return ids
	}
	ids = t.bpe(p)
	t.mu.Lock()
	if len(t.cache) >= cacheMax {
		clear(t.cache)
	}
	t.cache[p] = ids
	t.mu.Unlock()
	return ids
}

// bpe merges the byte symbols of p, lowest rank first, every occurrence left to right.
func (t *Tokenizer) bpe(p string) []int32 {
	if p == "" {
		return nil
	}
	w := make([]int32, len(p))
	for i := 0; i < len(p); i++ {
		w[i] = t.byteID[p[i]]
	}
	w[len(w)-1] += 256 // word-final form
	for len(w) > 1 {
		best := merge{rank: -1}
		var bestKey uint64
		for i := 0; i+1 < len(w); i++ {
			k := uint64(w[i])<<32 | uint64(w[i+1])
			if m, ok := t.ranks[k]; ok && (best.rank < 0 || m.rank < best.rank) {
				best, bestKey = m, k
			}
		}
		if best.rank < 0 {
			break
		}
		a, b := int32(bestKey>>32), int32(bestKey&0xffffffff)
		out := w[:0:0]
		for i := 0; i < len(w); {
			if i+1 < len(w) && w[i] == a && w[i+1] == b {
				out = append(out, best.id)
				i += 2
			} else {
				out = append(out, w[i])
				i++
			}
		}
		w = out
	}
	return w
}
