package chat

import (
	"fmt"
	"hash/fnv"
	"math"
	"regexp"
	"strings"
	"time"
	"unicode"
)

// DefaultQualityThreshold is the score below which a battle stays local: it is kept
// but left out of exports and submissions unless the user says otherwise.
const DefaultQualityThreshold = 0.5

// ReadingWordsPerSecond is the fastest skim we credit: a vote sooner than the answers'
// words at this rate, counted from their first token, was cast without reading them.
// (Careful reading is 4–5 words/s; 15 leaves room for fast readers and short answers.)
const ReadingWordsPerSecond = 15.0

// SameSideVotes is how many votes in a row, this one included, with the same outcome
// count as always picking the same side.
const SameSideVotes = 10

// RecentTopics is how many of the user's latest prompts the diversity signal compares with.
const RecentTopics = 20

// LowDiversity is the diversity below which a prompt counts as one more on the same
// topics (once there are at least five recent prompts).
const LowDiversity = 0.3

// MaxPromptRunes is the longest prompt that is not spam by its length alone.
const MaxPromptRunes = 8000

// Signal names a reason a battle's quality is lowered.
type Signal string

// The quality signals.
const (
	SignalIdentityLeak Signal = "identity_leak" // an answer names a model or vendor (blind battles)
	SignalFastVote     Signal = "fast_vote"     // voted faster than the answers could be read
	SignalSameSide     Signal = "same_side"     // the same outcome SameSideVotes times in a row
	SignalDuplicate    Signal = "duplicate"     // the prompt repeats an earlier one
	SignalLowDiversity Signal = "low_diversity" // the prompt is close to the recent topics
	SignalSpam         Signal = "spam"          // repetition, keyboard mash, odd length
)

// Reason is one signal that lowered a score, with what was found.
type Reason struct {
	Signal  Signal  `json:"signal"`
	Detail  string  `json:"detail"`
	Penalty float64 `json:"penalty"` // in (0, 1]: the score is multiplied by 1 - Penalty
}

// Quality is a battle's quality: the product of (1 - penalty) over its reasons, in [0, 1].
type Quality struct {
	Score   float64  `json:"score"`
	Reasons []Reason `json:"reasons,omitempty"`
	// Diversity is how far the prompt is from the user's recent topics: 1 is a new
	// topic, 0 the same words as before.
	Diversity float64 `json:"diversity"`
}

// Passes says whether the score reaches the threshold.
func (q Quality) Passes(threshold float64) bool { return q.Score >= threshold }

// QualityHistory is what the user did before this battle.
type QualityHistory struct {
	// Prompts are the user's earlier prompts, oldest first.
	Prompts []string
	// Outcomes are the user's earlier vote outcomes ("A", "tie", …), oldest first.
	Outcomes []string
}

// Assess scores a battle against the user's history. The vote signals apply once the
// battle has a vote; the identity signal only to blind battles.
func Assess(b *Battle, h QualityHistory) Quality {
	var rs []Reason
	last := len(b.Prompts) - 1
	if b.Blind && last >= 0 {
		for _, s := range b.Sides {
			for _, a := range s.Answers {
				if name, ok := IdentityLeak(a.Text); ok {
					rs = append(rs, Reason{SignalIdentityLeak, fmt.Sprintf("column %s names %q", s.Column, name), 1})
					break
				}
			}
		}
	}
	if b.Vote != nil && last >= 0 {
		if need, had, fast := FastVote(b); fast {
			p := 0.4
			if had < need/2 {
				p = 0.8
			}
			rs = append(rs, Reason{SignalFastVote, fmt.Sprintf("voted %.1fs after the answers began; reading them takes %.1fs", had.Seconds(), need.Seconds()), p})
		}
		if SameSide(append(append([]string(nil), h.Outcomes...), b.Vote.Outcome), SameSideVotes) {
			rs = append(rs, Reason{SignalSameSide, fmt.Sprintf("the last %d votes were all %q", SameSideVotes, b.Vote.Outcome), 0.5})
		}
	}
	div := 1.0
	if last >= 0 {
		prompt := b.Prompts[last]
		earlier := append(append([]string(nil), h.Prompts...), b.Prompts[:last]...)
		if sim, exact := Duplicate(prompt, earlier); exact {
			rs = append(rs, Reason{SignalDuplicate, "the same prompt as an earlier one", 1})
		} else if sim >= 0.7 {
			rs = append(rs, Reason{SignalDuplicate, fmt.Sprintf("a near copy of an earlier prompt (similarity %.2f)", sim), 0.8})
		}
		recent := earlier[max(0, len(earlier)-RecentTopics):]
		div = Diversity(prompt, recent)
		if len(recent) >= 5 && div < LowDiversity {
			rs = append(rs, Reason{SignalLowDiversity, fmt.Sprintf("close to your recent topics (diversity %.2f)", div), 0.2})
		}
		for _, why := range Spam(prompt) {
			rs = append(rs, Reason{SignalSpam, why.Detail, why.Penalty})
		}
	}
	score := 1.0
	for _, r := range rs {
		score *= 1 - r.Penalty
	}
	return Quality{Score: math.Max(0, score), Reasons: rs, Diversity: div}
}

// identityRE matches model and vendor names as whole words, any case.
var identityRE = regexp.MustCompile(`(?i)\b(openai|chatgpt|gpt|claude|anthropic|gemini|gemma|bard|google|deepmind|llama|meta|mistral|mixtral|deepseek|qwen|alibaba|grok|xai|microsoft|cohere|kimi|moonshot|baidu|zhipu|chatglm|nemotron)\b`)

// IdentityLeak returns the first model or vendor name the text mentions.
func IdentityLeak(text string) (string, bool) {
	m := identityRE.FindString(text)
	return m, m != ""
}

// FastVote compares the time the user had to read the latest answers (from their first
// token to the vote) with the time reading their words takes at ReadingWordsPerSecond.
func FastVote(b *Battle) (need, had time.Duration, fast bool) {
	if b.Vote == nil || len(b.Prompts) == 0 {
		return 0, 0, false
	}
	turn := len(b.Prompts) - 1
	var first time.Time
	words := 0
	for _, s := range b.Sides {
		if turn >= len(s.Answers) {
			continue
		}
		a := s.Answers[turn]
		words += len(tokens(a.Text))
		start := a.FirstToken
		if start.IsZero() {
			start = a.Started
		}
		if !start.IsZero() && (first.IsZero() || start.Before(first)) {
			first = start
		}
	}
	if first.IsZero() || words == 0 {
		return 0, 0, false
	}
	need = time.Duration(float64(words) / ReadingWordsPerSecond * float64(time.Second))
	had = b.Vote.At.Sub(first)
	return need, had, had < need
}

// SameSide says whether the last n outcomes are all the same.
func SameSide(outcomes []string, n int) bool {
	if n <= 1 || len(outcomes) < n {
		return false
	}
	tail := outcomes[len(outcomes)-n:]
	for _, o := range tail {
		if o != tail[0] {
			return false
		}
	}
	return true
}

// tokens splits text into lower-case words: runs of letters and digits, and each
// Han, kana or Hangul character on its own (those scripts put no spaces between words).
func tokens(text string) []string {
	var out []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			out = append(out, string(cur))
			cur = cur[:0]
		}
	}
	for _, r := range strings.ToLower(text) {
		switch {
		case unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul):
			flush()
			out = append(out, string(r))
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			cur = append(cur, r)
		default:
			flush()
		}
	}
	flush()
	return out
}

// MinHashSize is the number of hash functions in a MinHash signature.
const MinHashSize = 128

// MinHash is a signature of a text's word 3-shingles (single words for shorter texts):
// the share of equal slots of two signatures estimates the Jaccard similarity of
// their shingle sets.
type MinHash [MinHashSize]uint64

// NewMinHash signs text.
func NewMinHash(text string) MinHash {
	var sig MinHash
	for i := range sig {
		sig[i] = math.MaxUint64
	}
	toks := tokens(text)
	k := 3
	if len(toks) < k {
		k = 1
	}
	for i := 0; i+k <= len(toks); i++ {
		h := fnv.New64a()
		h.Write([]byte(strings.Join(toks[i:i+k], " ")))
		base := h.Sum64()
		for j := range sig {
			if v := splitmix(base ^ uint64(j)*0x9e3779b97f4a7c15); v < sig[j] {
				sig[j] = v
			}
		}
	}
	return sig
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// Similarity estimates the Jaccard similarity of the two signed texts.
func (m MinHash) Similarity(o MinHash) float64 {
	if m[0] == math.MaxUint64 || o[0] == math.MaxUint64 {
		return 0 // an empty text is like nothing
	}
	same := 0
	for i := range m {
		if m[i] == o[i] {
			same++
		}
	}
	return float64(same) / MinHashSize
}

// Duplicate returns the highest similarity of prompt to an earlier one and whether
// one is the same once case, spacing and punctuation are ignored.
func Duplicate(prompt string, earlier []string) (best float64, exact bool) {
	norm := strings.Join(tokens(prompt), " ")
	if norm == "" {
		return 0, false
	}
	sig := NewMinHash(prompt)
	for _, e := range earlier {
		if strings.Join(tokens(e), " ") == norm {
			return 1, true
		}
		best = math.Max(best, sig.Similarity(NewMinHash(e)))
	}
	return best, false
}

// stopwords are left out of topics (read only).
var stopwords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`the a an and or but if of to in on at for with by from as is are was were be been
		it its this that these those i you he she we they me my your our their what which who whom how why when where
		do does did can could would should will shall may might must not no yes so than then there here about into
		please tell give write explain show make some any all more most very just also like get`) {
		m[w] = true
	}
	return m
}()

func topicBag(text string) map[string]float64 {
	bag := map[string]float64{}
	for _, t := range tokens(text) {
		if !stopwords[t] && (len([]rune(t)) >= 3 || !isLatin(t)) {
			bag[t]++
		}
	}
	return bag
}

func isLatin(s string) bool {
	for _, r := range s {
		if r > unicode.MaxLatin1 {
			return false
		}
	}
	return true
}

// Diversity is 1 minus the cosine similarity of the prompt's content words to those
// of the recent prompts taken together; 1 when there are none to compare with.
func Diversity(prompt string, recent []string) float64 {
	p := topicBag(prompt)
	if len(p) == 0 || len(recent) == 0 {
		return 1
	}
	centroid := map[string]float64{}
	for _, r := range recent {
		bag := topicBag(r)
		norm := 0.0
		for _, v := range bag {
			norm += v * v
		}
		for w, v := range bag {
			centroid[w] += v / math.Sqrt(norm)
		}
	}
	dot, np, nc := 0.0, 0.0, 0.0
	for w, v := range p {
		dot += v * centroid[w]
		np += v * v
	}
	for _, v := range centroid {
		nc += v * v
	}
	if nc == 0 {
		return 1
	}
	return math.Max(0, 1-dot/math.Sqrt(np*nc))
}

// Spam lists what makes the prompt look like spam or gibberish; none for a fair prompt.
func Spam(prompt string) []Reason {
	text := strings.TrimSpace(prompt)
	runes := []rune(text)
	toks := tokens(text)
	var rs []Reason
	add := func(detail string, p float64) { rs = append(rs, Reason{SignalSpam, detail, p}) }
	switch {
	case len(toks) == 0:
		add("no words", 1)
		return rs
	case len(runes) > MaxPromptRunes:
		add(fmt.Sprintf("longer than %d characters", MaxPromptRunes), 0.5)
	case len(toks) < 2 && len(runes) < 12:
		add("too short to tell models apart", 0.4)
	}
	if len(toks) >= 6 {
		counts := map[string]int{}
		top := 0
		for _, t := range toks {
			counts[t]++
			top = max(top, counts[t])
		}
		grams := map[string]bool{}
		for i := 0; i+3 <= len(toks); i++ {
			grams[strings.Join(toks[i:i+3], " ")] = true
		}
		if float64(top) > 0.5*float64(len(toks)) || float64(len(grams)) < 0.4*float64(len(toks)-2) {
			add("repeats itself", 0.8)
		}
	}
	if run := longestRun(runes); run >= 8 {
		add(fmt.Sprintf("one character %d times in a row", run), 0.6)
	}
	if len(runes) >= 16 {
		if h := entropy(runes); h < 2.5 {
			add(fmt.Sprintf("few distinct characters (%.1f bits each)", h), 0.7)
		}
	}
	mash, latin := 0, 0
	for _, t := range toks {
		if !isLatin(t) || len(t) < 4 || strings.IndexFunc(t, unicode.IsDigit) >= 0 {
			continue
		}
		latin++
		if mashed(t) {
			mash++
		}
	}
	if latin > 0 && mash*2 >= latin && mash >= 1 {
		add("looks like keyboard mash", 0.8)
	}
	return rs
}

func longestRun(rs []rune) int {
	best, n := 0, 0
	for i, r := range rs {
		if i > 0 && r == rs[i-1] && !unicode.IsSpace(r) {
			n++
		} else {
			n = 1
		}
		best = max(best, n)
	}
	return best
}

func entropy(rs []rune) float64 {
	counts := map[rune]float64{}
	for _, r := range rs {
		counts[unicode.ToLower(r)]++
	}
	h := 0.0
	for _, c := range counts {
		p := c / float64(len(rs))
		h -= p * math.Log2(p)
	}
	return h
}

var keyboardRows = []string{"qwertyuiop", "asdfghjkl", "zxcvbnm", "1234567890"}

// mashed says whether a Latin word looks typed at random: no vowel, six consonants in
// a row, or four neighbouring keys of one keyboard row.
func mashed(w string) bool {
	vowels, run, worst := 0, 0, 0
	for _, r := range w {
		if strings.ContainsRune("aeiouyàáâäèéêëìíîïòóôöùúûü", r) {
			vowels++
			run = 0
		} else {
			run++
			worst = max(worst, run)
		}
	}
	if vowels == 0 || worst >= 6 {
		return true
	}
	for _, row := range keyboardRows {
		rev := reverse(row)
		for i := 0; i+4 <= len(w); i++ {
			if strings.Contains(row, w[i:i+4]) || strings.Contains(rev, w[i:i+4]) {
				return true
			}
		}
	}
	return false
}

func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}
