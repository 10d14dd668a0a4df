package pipeline

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Threshold returns the score at or above which the top keepFraction of scores is kept,
// exactly as DataComp's get_threshold computes it: scores sorted best first, the value at
// index int(len(scores) * keepFraction). Items with score >= threshold are kept, so a
// fraction keeps int(n*fraction)+1 items when there are no ties (DataComp's own count), and
// more when scores tie at the threshold. DataComp indexes past the end for a fraction of
// 1; here the index is clamped to the last score, which keeps everything.
//
// keepFraction must lie in (0, 1] and scores must not be empty. scores is not modified.
func Threshold(scores []float32, keepFraction float64) (float32, error) {
	if !(keepFraction > 0 && keepFraction <= 1) {
		return 0, fmt.Errorf("threshold: keep fraction %v is not in (0, 1]", keepFraction)
	}
	if len(scores) == 0 {
		return 0, errors.New("threshold: no scores")
	}
	sorted := slices.Clone(scores)
	slices.Sort(sorted) // ascending; sorted_desc[i] == sorted[n-1-i]
	n := len(sorted)
	i := min(int(float64(n)*keepFraction), n-1)
	return sorted[n-1-i], nil
}

// BasicFilter is DataComp's "basic" filter on captions and image sizes, less its language
// check: DataComp also keeps only captions that fastText's language id calls English, which
// needs a model this package does not carry, so no language is checked here. A zero field
// turns its check off; DefaultBasicFilter has DataComp's values.
type BasicFilter struct {
	// MinWords is the fewest words a caption may have, words split on whitespace as
	// DataComp's Python str.split() does.
	MinWords int `json:"min_words"`
	// MinChars is the fewest characters (Unicode code points) a caption may have.
	MinChars int `json:"min_chars"`
	// MinSide is the fewest pixels either side of the image may have.
	MinSide int `json:"min_side"`
	// MaxAspect is the largest max(w, h) / min(w, h) an image may have.
	MaxAspect float64 `json:"max_aspect"`
}

// DefaultBasicFilter returns DataComp's basic filter: more than 2 words and more than 5
// characters of caption, both sides at least 200 pixels, aspect ratio at most 3.
func DefaultBasicFilter() BasicFilter {
	return BasicFilter{MinWords: 3, MinChars: 6, MinSide: 200, MaxAspect: 3}
}

// Keep reports whether the filter lets the result through.
func (f BasicFilter) Keep(r Result) bool { return f.Refusal(r) == "" }

// Refusal says why the filter refuses the result, or returns "" when it keeps it. A runner
// that filters as it goes records a refusal with ReasonFiltered.
func (f BasicFilter) Refusal(r Result) string {
	if f.MinWords > 0 {
		if n := pythonWords(r.Caption); n < f.MinWords {
			return fmt.Sprintf("caption has %d words, fewer than %d", n, f.MinWords)
		}
	}
	if f.MinChars > 0 {
		if n := utf8.RuneCountInString(r.Caption); n < f.MinChars {
			return fmt.Sprintf("caption has %d characters, fewer than %d", n, f.MinChars)
		}
	}
	if f.MinSide > 0 && (r.Width < f.MinSide || r.Height < f.MinSide) {
		return fmt.Sprintf("image is %d×%d pixels, a side under %d", r.Width, r.Height, f.MinSide)
	}
	if f.MaxAspect > 0 {
		lo, hi := min(r.Width, r.Height), max(r.Width, r.Height)
		if lo <= 0 {
			return fmt.Sprintf("image is %d×%d pixels, no aspect ratio", r.Width, r.Height)
		}
		if a := float64(hi) / float64(lo); a > f.MaxAspect {
			return fmt.Sprintf("image aspect ratio %.2f is over %g", a, f.MaxAspect)
		}
	}
	return ""
}

// pythonWords counts the words Python's str.split() finds in s: runs of characters that
// are not whitespace in Python's sense (Go's unicode.IsSpace plus the separators U+001C to
// U+001F).
func pythonWords(s string) int {
	return len(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
	}))
}

// NoThreshold, as Kept's threshold, keeps every scored result (when min score and filter
// allow).
var NoThreshold = float32(math.Inf(-1))

// Kept is the decision exports make for one result. A person's verdict wins: "reject"
// drops it, "keep" keeps it unless the item failed outright (an error reason other than
// ReasonFiltered: there is no image to keep). Otherwise the result is kept when it was
// scored, its score is at least threshold (NoThreshold when there is none) and at least
// minScore when that is set, and the basic filter, when given, keeps it.
func Kept(r Result, threshold float32, minScore *float32, f *BasicFilter) bool {
	switch r.Verdict {
	case "reject":
		return false
	case "keep":
		return r.Reason == "" || r.Reason == ReasonFiltered
	}
	if !r.Scored() || r.Score < threshold || math.IsNaN(float64(r.Score)) {
		return false
	}
	if minScore != nil && r.Score < *minScore {
		return false
	}
	return f == nil || f.Keep(r)
}
