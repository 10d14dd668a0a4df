package pipeline

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func TestThreshold(t *testing.T) {
	tests := []struct {
		name     string
		scores   []float32
		fraction float64
		want     float32
		wantKept int
	}{
		// sorted best first: .9 .8 .7 .6 .5 .4 .3 .2 .1 .0; int(10*0.3) = 3 → .6, four kept
		// (DataComp's own off-by-one: the value at index n, inclusive).
		{"top 30% of ten", []float32{.5, .1, .9, .3, .7, .0, .8, .2, .6, .4}, 0.3, .6, 4},
		{"fraction 1 keeps all", []float32{.5, .1, .9}, 1.0, .1, 3},
		{"tiny fraction keeps the best", []float32{.5, .1, .9}, 0.01, .9, 1},
		{"one score", []float32{.25}, 0.5, .25, 1},
		{"one score, fraction 1", []float32{.25}, 1, .25, 1},
		// int(4*0.5) = 2 → sorted .8 .5 .5 .1 → .5, and the tie keeps both
		{"ties at the threshold", []float32{.5, .8, .1, .5}, 0.5, .5, 3},
		{"all equal", []float32{.3, .3, .3, .3, .3}, 0.2, .3, 5},
		{"negative scores", []float32{-.2, -.5, -.1, -.9}, 0.25, -.2, 2},
		// 100*0.29 = 28.999999999999996 → index 28 (float64 arithmetic, as in Python) → 71
		{"float rounding of n*fraction", hundred(), 0.29, 71, 29},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.scores)
			got, err := Threshold(in, tt.fraction)
			if err != nil {
				t.Fatalf("Threshold(%v, %v): %v", tt.scores, tt.fraction, err)
			}
			if got != tt.want {
				t.Errorf("Threshold(%v, %v) = %v, want %v", tt.scores, tt.fraction, got, tt.want)
			}
			kept := 0
			for _, s := range tt.scores {
				if s >= got {
					kept++
				}
			}
			if kept != tt.wantKept {
				t.Errorf("Threshold(%v, %v) keeps %d, want %d", tt.scores, tt.fraction, kept, tt.wantKept)
			}
			if !slices.Equal(in, tt.scores) {
				t.Errorf("Threshold modified its input: %v", in)
			}
		})
	}
}

func hundred() []float32 {
	s := make([]float32, 100)
	for i := range s {
		s[i] = float32((i * 37) % 100) // 0..99, shuffled
	}
	return s
}

func TestThresholdErrors(t *testing.T) {
	for _, f := range []float64{0, -0.1, 1.0001, math.NaN(), math.Inf(1)} {
		if _, err := Threshold([]float32{.1, .2}, f); err == nil {
			t.Errorf("Threshold(fraction %v) succeeded, want an error", f)
		}
	}
	if _, err := Threshold(nil, 0.5); err == nil {
		t.Error("Threshold(no scores) succeeded, want an error")
	}
}

func TestBasicFilter(t *testing.T) {
	f := DefaultBasicFilter()
	ok := Result{Caption: "a red bicycle", Width: 200, Height: 600}
	tests := []struct {
		name    string
		r       Result
		keep    bool
		because string
	}{
		{"three words, 200 by 600", ok, true, ""},
		{"two words", Result{Caption: "red bicycle", Width: 300, Height: 300}, false, "2 words"},
		{"words split on any whitespace", Result{Caption: "red\tbig\nbicycle", Width: 300, Height: 300}, true, ""},
		{"no-break space separates words as in Python", Result{Caption: "red\u00a0big\u00a0bicycle", Width: 300, Height: 300}, true, ""},
		{"U+001F separates words as in Python", Result{Caption: "red\x1fbig\x1fbicycle", Width: 300, Height: 300}, true, ""},
		{"three words but five characters", Result{Caption: "a b c", Width: 300, Height: 300}, false, "5 characters"},
		{"six characters", Result{Caption: "a b cd", Width: 300, Height: 300}, true, ""},
		{"characters are code points", Result{Caption: "é é é", Width: 300, Height: 300}, false, "5 characters"},
		{"side of 199", Result{Caption: ok.Caption, Width: 199, Height: 300}, false, "under 200"},
		{"aspect just over 3", Result{Caption: ok.Caption, Width: 200, Height: 601}, false, "aspect ratio"},
		{"aspect 3 wide", Result{Caption: ok.Caption, Width: 900, Height: 300}, true, ""},
		{"not decoded", Result{Caption: ok.Caption}, false, "under 200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := f.Keep(tt.r); got != tt.keep {
				t.Errorf("Keep(%q %dx%d) = %v, want %v", tt.r.Caption, tt.r.Width, tt.r.Height, got, tt.keep)
			}
			if why := f.Refusal(tt.r); !strings.Contains(why, tt.because) || (tt.because == "") != (why == "") {
				t.Errorf("Refusal(%q %dx%d) = %q, want it to say %q", tt.r.Caption, tt.r.Width, tt.r.Height, why, tt.because)
			}
		})
	}
	if !(BasicFilter{}).Keep(Result{}) {
		t.Error("the zero BasicFilter refused an empty result; every check should be off")
	}
	if (BasicFilter{MaxAspect: 2}).Keep(Result{Width: 10, Height: 0}) {
		t.Error("an aspect check kept an image with a zero side")
	}
}

func TestKept(t *testing.T) {
	f := DefaultBasicFilter()
	min := func(v float32) *float32 { return &v }
	good := Result{Caption: "a red bicycle", Width: 300, Height: 300, Score: 0.3}
	with := func(mod func(*Result)) Result { r := good; mod(&r); return r }
	tests := []struct {
		name      string
		r         Result
		threshold float32
		minScore  *float32
		filter    *BasicFilter
		want      bool
	}{
		{"at the threshold", good, 0.3, nil, nil, true},
		{"under the threshold", good, 0.31, nil, nil, false},
		{"no threshold", good, NoThreshold, nil, nil, true},
		{"under the min score", good, NoThreshold, min(0.35), nil, false},
		{"at the min score", good, NoThreshold, min(0.3), nil, true},
		{"both must hold", good, 0.1, min(0.4), nil, false},
		{"refused by the filter", with(func(r *Result) { r.Caption = "bike" }), NoThreshold, nil, &f, false},
		{"passes the filter", good, NoThreshold, nil, &f, true},
		{"failed items are not kept", with(func(r *Result) { r.Reason = ReasonCorrupt }), NoThreshold, nil, nil, false},
		{"NaN score", with(func(r *Result) { r.Score = float32(math.NaN()) }), NoThreshold, nil, nil, false},
		{"reject wins over the score", with(func(r *Result) { r.Verdict = "reject" }), NoThreshold, nil, nil, false},
		{"keep wins over the threshold", with(func(r *Result) { r.Verdict = "keep" }), 0.9, min(0.9), &f, true},
		{"keep wins over the filter", with(func(r *Result) { r.Verdict = "keep"; r.Reason = ReasonFiltered }), NoThreshold, nil, &f, true},
		{"keep cannot keep a failed item", with(func(r *Result) { r.Verdict = "keep"; r.Reason = ReasonNotFound }), NoThreshold, nil, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Kept(tt.r, tt.threshold, tt.minScore, tt.filter); got != tt.want {
				t.Errorf("Kept(%+v, %v, %v, %v) = %v, want %v", tt.r, tt.threshold, tt.minScore, tt.filter, got, tt.want)
			}
		})
	}
}
