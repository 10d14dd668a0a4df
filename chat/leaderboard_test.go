package chat_test

import (
	"math"
	"reflect"
	"testing"

	"github.com/gata-contrib/gata/chat"
)

func games(spec ...any) []chat.Comparison {
	var out []chat.Comparison
	for i := 0; i < len(spec); i += 4 {
		for range spec[i+3].(int) {
			out = append(out, chat.Comparison{A: spec[i].(string), B: spec[i+1].(string), Score: spec[i+2].(float64)})
		}
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-6+1e-9*math.Abs(b) }

func TestRatingsHandComputed(t *testing.T) {
	d3 := 400 * math.Log10(3) // strengths 3:1
	d2 := 400 * math.Log10(2)
	d9 := 400 * math.Log10(9)
	tests := []struct {
		name  string
		games []chat.Comparison
		prior float64
		want  map[string]float64
	}{
		{"3 wins to 1", games("a", "b", 1.0, 3, "a", "b", 0.0, 1), 0, map[string]float64{"a": 1000 + d3/2, "b": 1000 - d3/2}},
		{"ties count half", games("a", "b", 1.0, 1, "a", "b", 0.5, 2), 0, map[string]float64{"a": 1000 + d2/2, "b": 1000 - d2/2}},
		{"sides swapped", games("b", "a", 0.0, 3, "b", "a", 1.0, 1), 0, map[string]float64{"a": 1000 + d3/2, "b": 1000 - d3/2}},
		{"cycle is even", games("a", "b", 1.0, 1, "b", "c", 1.0, 1, "c", "a", 1.0, 1), 0, map[string]float64{"a": 1000, "b": 1000, "c": 1000}},
		// 2 wins and a prior of 0.5 virtual games (a quarter win each): 2.25 to 0.25.
		{"prior keeps a clean sweep finite", games("a", "b", 1.0, 2), 0.5, map[string]float64{"a": 1000 + d9/2, "b": 1000 - d9/2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := chat.Ratings(tt.games, chat.RatingOptions{Prior: tt.prior})
			if len(rs) != len(tt.want) {
				t.Fatalf("Ratings = %+v, want %d models", rs, len(tt.want))
			}
			for i, r := range rs {
				if !near(r.Rating, tt.want[r.Model]) || r.Lower != r.Rating || r.Upper != r.Rating {
					t.Errorf("Ratings[%d] = %+v, want rating %.4f", i, r, tt.want[r.Model])
				}
				if i > 0 && rs[i-1].Rating < r.Rating {
					t.Errorf("Ratings not sorted best first: %+v", rs)
				}
			}
		})
	}
	rs := chat.Ratings(games("a", "b", 1.0, 3, "a", "b", 0.0, 1), chat.RatingOptions{})
	if rs[0].Model != "a" || rs[0].Games != 4 || rs[0].Wins != 3 || rs[0].Losses != 1 || rs[1].Wins != 1 {
		t.Errorf("Ratings counts = %+v", rs)
	}
	if chat.Ratings(nil, chat.RatingOptions{}) != nil {
		t.Errorf("Ratings(nil) not nil")
	}
}

func TestRatingsBootstrap(t *testing.T) {
	g := games("a", "b", 1.0, 30, "a", "b", 0.0, 10, "b", "c", 1.0, 20, "b", "c", 0.0, 20, "a", "c", 0.5, 5)
	opts := chat.RatingOptions{Rounds: 200, Seed: 42, Prior: chat.DefaultPrior}
	r1, r2 := chat.Ratings(g, opts), chat.Ratings(g, opts)
	if !reflect.DeepEqual(r1, r2) {
		t.Errorf("the same seed gave different intervals: %+v vs %+v", r1, r2)
	}
	for _, r := range r1 {
		if !(r.Lower < r.Rating && r.Rating < r.Upper) || r.Upper-r.Lower > 400 {
			t.Errorf("interval of %s = [%.1f, %.1f] around %.1f", r.Model, r.Lower, r.Upper, r.Rating)
		}
	}
	if r1[0].Model != "a" {
		t.Errorf("best model = %s, want a", r1[0].Model)
	}
	opts.Seed = 43
	if reflect.DeepEqual(r1, chat.Ratings(g, opts)) {
		t.Errorf("another seed gave the same intervals")
	}
}

func TestPairsOfAThreeModelBattle(t *testing.T) {
	b := exportBattle("B")
	var got []string
	for _, p := range chat.Pairs(b) {
		got = append(got, p.ModelA+" "+p.ModelB+" "+p.Winner)
	}
	want := []string{"p/x p/y model_b", "p/x p/z tie", "p/y p/z model_a"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Pairs = %q, want %q", got, want)
	}
	cs := chat.Comparisons([]*chat.Battle{b, exportBattle(chat.OutcomeBad)})
	if len(cs) != 6 || cs[0].Score != 0 || cs[1].Score != 0.5 || cs[2].Score != 1 || cs[5].Score != 0.5 {
		t.Errorf("Comparisons = %+v", cs)
	}
}
