package chat

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
)

// Arena's winner values, used by the pairs, the leaderboard and the Arena export.
const (
	WinnerA       = "model_a"
	WinnerB       = "model_b"
	WinnerTie     = "tie"
	WinnerBothBad = "tie (bothbad)"
)

// Pair is one pairwise outcome of a voted battle.
type Pair struct {
	A, B       *Side
	ModelA     string
	ModelB     string
	Winner     string // WinnerA, WinnerB, WinnerTie or WinnerBothBad
	BattleID   string
	VoteReason string
}

// Pairs splits a voted battle into one outcome per pair of columns (A–B, A–C, B–C, …)
// whose answers all arrived. The winning column beats each other column; a pair
// without the winner is a tie (the vote ranks neither above the other); a tie vote
// ties every pair, an all-bad vote makes every pair "tie (bothbad)".
func Pairs(b *Battle) []Pair {
	if b.Vote == nil {
		return nil
	}
	var out []Pair
	for i := range b.Sides {
		for j := i + 1; j < len(b.Sides); j++ {
			x, y := &b.Sides[i], &b.Sides[j]
			if !answered(x, len(b.Prompts)) || !answered(y, len(b.Prompts)) {
				continue
			}
			p := Pair{A: x, B: y, ModelA: x.Model, ModelB: y.Model, BattleID: b.ID, VoteReason: b.Vote.Reason}
			switch b.Vote.Outcome {
			case x.Column:
				p.Winner = WinnerA
			case y.Column:
				p.Winner = WinnerB
			case OutcomeBad:
				p.Winner = WinnerBothBad
			default:
				p.Winner = WinnerTie
			}
			out = append(out, p)
		}
	}
	return out
}

func answered(s *Side, turns int) bool {
	if len(s.Answers) != turns || turns == 0 {
		return false
	}
	for _, a := range s.Answers {
		if !a.OK() {
			return false
		}
	}
	return true
}

// Comparison is one game for the ratings: Score 1 when A won, 0 when B won, 0.5 a tie.
type Comparison struct {
	A, B  string
	Score float64
}

// Comparisons turns voted battles into games (both kinds of tie count half).
func Comparisons(battles []*Battle) []Comparison {
	var out []Comparison
	for _, b := range battles {
		for _, p := range Pairs(b) {
			c := Comparison{A: p.ModelA, B: p.ModelB, Score: 0.5}
			switch p.Winner {
			case WinnerA:
				c.Score = 1
			case WinnerB:
				c.Score = 0
			}
			out = append(out, c)
		}
	}
	return out
}

// Rating is one model's place on the leaderboard.
type Rating struct {
	Model string
	// Rating is on Arena's Elo scale: 1000 + 400·log10(strength), the strengths'
	// geometric mean being 1 (so the models average 1000).
	Rating float64
	// Lower and Upper bound the bootstrap 95% interval (equal to Rating without rounds).
	Lower, Upper float64
	Games        int
	Wins, Ties   int
	Losses       int
}

// RatingOptions tune Ratings.
type RatingOptions struct {
	// Rounds is the number of bootstrap resamples for the intervals (0: none).
	Rounds int
	// Seed seeds the resampling, so the same votes give the same intervals.
	Seed uint64
	// Prior adds that many virtual ties to every pair of models that met, so a model
	// that never lost gets a finite rating; 0 is the plain maximum-likelihood fit.
	Prior float64
}

// DefaultPrior is the Prior the leaderboard uses.
const DefaultPrior = 0.5

// eloScale turns a natural-log strength into Elo points: 400/ln 10.
const eloScale = 400 / math.Ln10

// Ratings fits a Bradley–Terry model to the games with Hunter's MM algorithm (ties
// count half a win to each side) and, with Rounds, bootstraps 95% intervals. The
// result is sorted best first.
func Ratings(games []Comparison, opts RatingOptions) []Rating {
	models, idx := modelIndex(games)
	if len(models) == 0 {
		return nil
	}
	point := fitBT(games, idx, len(models), opts.Prior)
	out := make([]Rating, len(models))
	for i, m := range models {
		out[i] = Rating{Model: m, Rating: point[i], Lower: point[i], Upper: point[i]}
	}
	for _, g := range games {
		a, b := &out[idx[g.A]], &out[idx[g.B]]
		a.Games++
		b.Games++
		switch g.Score {
		case 1:
			a.Wins++
			b.Losses++
		case 0:
			b.Wins++
			a.Losses++
		default:
			a.Ties++
			b.Ties++
		}
	}
	if opts.Rounds > 0 {
		rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x5851f42d4c957f2d))
		samples := make([][]float64, len(models))
		sample := make([]Comparison, len(games))
		for r := 0; r < opts.Rounds; r++ {
			seen := make([]bool, len(models))
			for k := range sample {
				sample[k] = games[rng.IntN(len(games))]
				seen[idx[sample[k].A]], seen[idx[sample[k].B]] = true, true
			}
			fit := fitBT(sample, idx, len(models), opts.Prior)
			for i := range models {
				if seen[i] {
					samples[i] = append(samples[i], fit[i])
				}
			}
		}
		for i := range out {
			if len(samples[i]) > 0 {
				sort.Float64s(samples[i])
				out[i].Lower, out[i].Upper = quantile(samples[i], 0.025), quantile(samples[i], 0.975)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Rating > out[j].Rating })
	return out
}

func modelIndex(games []Comparison) ([]string, map[string]int) {
	idx := map[string]int{}
	var models []string
	for _, g := range games {
		for _, m := range []string{g.A, g.B} {
			if _, ok := idx[m]; !ok {
				idx[m] = len(models)
				models = append(models, m)
			}
		}
	}
	slices.Sort(models)
	for i, m := range models {
		idx[m] = i
	}
	return models, idx
}

// fitBT returns the Elo-scale ratings of the n models; models without games in this
// sample keep 1000.
func fitBT(games []Comparison, idx map[string]int, n int, prior float64) []float64 {
	games2 := make([][]float64, n) // games2[i][j]: games between i and j
	wins := make([][]float64, n)   // wins[i][j]: i's wins over j, ties half
	for i := range games2 {
		games2[i], wins[i] = make([]float64, n), make([]float64, n)
	}
	for _, g := range games {
		a, b := idx[g.A], idx[g.B]
		if a == b {
			continue
		}
		games2[a][b]++
		games2[b][a]++
		wins[a][b] += g.Score
		wins[b][a] += 1 - g.Score
	}
	if prior > 0 {
		for i := range n {
			for j := range n {
				if i != j && games2[i][j] > 0 {
					games2[i][j] += prior
					wins[i][j] += prior / 2
				}
			}
		}
	}
	w := make([]float64, n)
	active := make([]bool, n)
	for i := range n {
		for j := range n {
			w[i] += wins[i][j]
			active[i] = active[i] || games2[i][j] > 0
		}
	}
	p := make([]float64, n)
	for i := range p {
		p[i] = 1
	}
	next := make([]float64, n)
	for iter := 0; iter < 10000; iter++ {
		for i := range n {
			if !active[i] {
				next[i] = 1
				continue
			}
			den := 0.0
			for j := range n {
				if games2[i][j] > 0 {
					den += games2[i][j] / (p[i] + p[j])
				}
			}
			next[i] = math.Max(w[i]/den, 1e-12)
		}
		// Fix the scale: the active models' geometric mean is 1.
		logSum, k := 0.0, 0
		for i := range n {
			if active[i] {
				logSum += math.Log(next[i])
				k++
			}
		}
		g := math.Exp(logSum / float64(max(k, 1)))
		change := 0.0
		for i := range n {
			if active[i] {
				next[i] /= g
			}
			change = math.Max(change, math.Abs(math.Log(next[i]/p[i])))
		}
		p, next = next, p
		if change < 1e-10 {
			break
		}
	}
	out := make([]float64, n)
	for i := range p {
		out[i] = 1000 + eloScale*math.Log(p[i])
	}
	return out
}

// quantile of sorted xs by linear interpolation.
func quantile(xs []float64, q float64) float64 {
	pos := q * float64(len(xs)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(xs)-1)
	return xs[lo] + (pos-float64(lo))*(xs[hi]-xs[lo])
}
