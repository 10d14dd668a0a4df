package core

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sync"

	"github.com/gata-contrib/gata/dva/pipeline"
	"github.com/gata-contrib/gata/storage"
)

// ReviewStore is what the review screens need of the store; storage.Store satisfies it.
type ReviewStore interface {
	ReviewPage(ctx context.Context, run int64, q storage.ReviewQuery) ([]storage.DVAResult, int, error)
	SetVerdict(ctx context.Context, run int64, source, key, verdict string) error
	Scores(ctx context.Context, run int64) ([]float32, error)
	Result(ctx context.Context, run int64, source, key string) (storage.DVAResult, error)
}

// Verdicts a person gives a pair on the review screen; "" clears it.
const (
	VerdictKeep   = storage.VerdictKeep
	VerdictReject = storage.VerdictReject
)

// Review orders of ReviewQuery.Order.
const (
	OrderScoreDesc = storage.OrderScoreDesc
	OrderScoreAsc  = storage.OrderScoreAsc
	OrderKey       = storage.OrderKey
)

// ErrNoItem is returned for a pair the run does not have.
var ErrNoItem = errors.New("no such item in the run")

// ReviewQuery selects a page of a run's pairs for the review screens.
type ReviewQuery struct {
	Order    string   `json:"order,omitempty"`     // OrderScoreDesc (default), OrderScoreAsc, OrderKey
	MinScore *float64 `json:"min_score,omitempty"` // inclusive bounds on the score
	MaxScore *float64 `json:"max_score,omitempty"`
	Verdict  string   `json:"verdict,omitempty"` // "", "keep", "reject" or "none" (no verdict yet)
	Failed   bool     `json:"failed,omitempty"`  // the failed items instead of the scored ones
	Reason   string   `json:"reason,omitempty"`  // with Failed: of this reason only
	Offset   int      `json:"offset,omitempty"`
	Limit    int      `json:"limit,omitempty"` // at most 1000; 0 means 50
}

// ReviewItem is one pair as the review screens show it.
type ReviewItem struct {
	Source  string            `json:"source"`
	Key     string            `json:"key"`
	UID     string            `json:"uid"`
	URL     string            `json:"url,omitempty"`
	Caption string            `json:"caption"`
	Score   float32           `json:"score"`
	Width   int               `json:"width"`
	Height  int               `json:"height"`
	Reason  string            `json:"reason,omitempty"`
	Error   string            `json:"error,omitempty"`
	Verdict string            `json:"verdict,omitempty"`
	Extra   map[string]string `json:"extra,omitempty"`
}

// ReviewPage is a page of pairs and how many match the query in all.
type ReviewPage struct {
	Items  []ReviewItem `json:"items"`
	Total  int          `json:"total"`
	Offset int          `json:"offset"`
}

func (c *Core) reviewStore() (ReviewStore, error) {
	rs, ok := c.store.(ReviewStore)
	if !ok {
		return nil, errors.New("this store keeps no run results")
	}
	return rs, nil
}

// Review returns a page of a run's pairs, sorted and filtered as asked.
func (c *Core) Review(ctx context.Context, run int64, q ReviewQuery) (ReviewPage, error) {
	rs, err := c.reviewStore()
	if err != nil {
		return ReviewPage{}, err
	}
	if _, err := c.runInfo(ctx, c.store, run); err != nil {
		return ReviewPage{}, err
	}
	switch q.Order {
	case "", OrderScoreDesc, OrderScoreAsc, OrderKey:
	default:
		return ReviewPage{}, &FieldError{Key: "order", Reason: fmt.Sprintf("%q is not %s, %s or %s", q.Order, OrderScoreDesc, OrderScoreAsc, OrderKey)}
	}
	if q.Offset < 0 || q.Limit < 0 {
		return ReviewPage{}, &FieldError{Key: "offset", Reason: "offset and limit must not be negative"}
	}
	rows, total, err := rs.ReviewPage(ctx, run, storage.ReviewQuery{Order: q.Order, MinScore: q.MinScore, MaxScore: q.MaxScore,
		Verdict: q.Verdict, Failed: q.Failed, Reason: q.Reason, Offset: q.Offset, Limit: q.Limit})
	if err != nil {
		return ReviewPage{}, fmt.Errorf("review run %d: %w", run, err)
	}
	page := ReviewPage{Items: make([]ReviewItem, 0, len(rows)), Total: total, Offset: q.Offset}
	for _, r := range rows {
		page.Items = append(page.Items, ReviewItem{Source: r.Source, Key: r.Key, UID: r.UID, URL: r.URL, Caption: r.Caption,
			Score: r.Score, Width: r.Width, Height: r.Height, Reason: r.Reason, Error: r.Error, Verdict: r.Verdict, Extra: r.Extra})
	}
	return page, nil
}

// SetVerdict records a person's verdict on one pair ("keep", "reject", or "" to clear it).
// It wins over the machine's threshold the next time the run is exported.
func (c *Core) SetVerdict(ctx context.Context, run int64, source, key, verdict string) error {
	rs, err := c.reviewStore()
	if err != nil {
		return err
	}
	err = rs.SetVerdict(ctx, run, source, key, verdict)
	switch {
	case errors.Is(err, storage.ErrBadVerdict):
		return &FieldError{Key: "verdict", Reason: err.Error()}
	case errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("verdict on %s of run %d: %w", key, run, ErrNoItem)
	case err != nil:
		return fmt.Errorf("verdict on %s of run %d: %w", key, run, err)
	}
	c.bus.publish(EventVerdict, VerdictChange{Run: run, Source: source, Key: key, Verdict: verdict})
	return nil
}

// EventVerdict is published when a pair's verdict changes; its data is a VerdictChange.
const EventVerdict = "verdict"

// VerdictChange is the data of an EventVerdict.
type VerdictChange struct {
	Run     int64  `json:"run"`
	Source  string `json:"source"`
	Key     string `json:"key"`
	Verdict string `json:"verdict"`
}

// ScoreDistribution is the histogram of a run's scores, for the review screens' threshold.
type ScoreDistribution struct {
	Total  int       `json:"total"` // scored pairs
	Min    float32   `json:"min"`
	Max    float32   `json:"max"`
	Edges  []float32 `json:"edges"`  // len(Counts)+1 bin edges, from Min to Max
	Counts []int     `json:"counts"` // pairs per bin; the last bin includes Max
}

// scoreCache keeps the sorted scores of the run last asked about: dragging a threshold
// asks many times in a row.
type scoreCache struct {
	mu     sync.Mutex
	run    int64
	sorted []float32 // ascending
}

// sortedScores returns the run's scores in ascending order, from the cache when the run's
// number of scored pairs has not changed.
func (c *Core) sortedScores(ctx context.Context, run int64) ([]float32, error) {
	rs, err := c.reviewStore()
	if err != nil {
		return nil, err
	}
	info, err := c.runInfo(ctx, c.store, run)
	if err != nil {
		return nil, err
	}
	c.scores.mu.Lock()
	defer c.scores.mu.Unlock()
	if c.scores.run == run && int64(len(c.scores.sorted)) == info.Scored && c.scores.sorted != nil {
		return c.scores.sorted, nil
	}
	s, err := rs.Scores(ctx, run)
	if err != nil {
		return nil, fmt.Errorf("scores of run %d: %w", run, err)
	}
	slices.Sort(s)
	c.scores.run, c.scores.sorted = run, s
	return s, nil
}

// ScoreDistribution returns the histogram of a run's scores in the given number of bins
// (1 to 200) between the lowest and the highest score.
func (c *Core) ScoreDistribution(ctx context.Context, run int64, bins int) (ScoreDistribution, error) {
	if bins < 1 || bins > 200 {
		return ScoreDistribution{}, &FieldError{Key: "bins", Reason: fmt.Sprintf("%d is not from 1 to 200", bins)}
	}
	s, err := c.sortedScores(ctx, run)
	if err != nil {
		return ScoreDistribution{}, err
	}
	d := ScoreDistribution{Total: len(s), Counts: make([]int, bins), Edges: make([]float32, bins+1)}
	if len(s) == 0 {
		return d, nil
	}
	d.Min, d.Max = s[0], s[len(s)-1]
	width := float64(d.Max-d.Min) / float64(bins)
	for i := range d.Edges {
		d.Edges[i] = d.Min + float32(width*float64(i))
	}
	d.Edges[bins] = d.Max
	for _, v := range s {
		i := bins - 1
		if width > 0 {
			i = min(int(float64(v-d.Min)/width), bins-1)
		}
		d.Counts[i]++
	}
	return d, nil
}

// Keep is what a threshold keeps of a run.
type Keep struct {
	Threshold float32 `json:"threshold"`
	Kept      int     `json:"kept"`     // scored pairs with a score >= Threshold
	Total     int     `json:"total"`    // scored pairs
	Fraction  float64 `json:"fraction"` // Kept / Total: the top-k fraction the threshold implies
}

// KeepAt says how many of a run's scored pairs a threshold keeps (score >= threshold) and
// which top-k fraction that is. Human verdicts are not counted here; exports apply them.
func (c *Core) KeepAt(ctx context.Context, run int64, threshold float64) (Keep, error) {
	if math.IsNaN(threshold) || threshold < -1 || threshold > 1 {
		return Keep{}, &FieldError{Key: "threshold", Reason: fmt.Sprintf("%v is not in [-1, 1]", threshold)}
	}
	s, err := c.sortedScores(ctx, run)
	if err != nil {
		return Keep{}, err
	}
	t := float32(threshold)
	i, _ := slices.BinarySearch(s, t) // first index with s[i] >= t
	k := Keep{Threshold: t, Kept: len(s) - i, Total: len(s)}
	if k.Total > 0 {
		k.Fraction = float64(k.Kept) / float64(k.Total)
	}
	return k, nil
}

// ThresholdFor returns the threshold that keeps the top fraction of a run's scores, as the
// run's export computes it (DataComp's keep-top).
func (c *Core) ThresholdFor(ctx context.Context, run int64, fraction float64) (Keep, error) {
	s, err := c.sortedScores(ctx, run)
	if err != nil {
		return Keep{}, err
	}
	t, err := pipeline.Threshold(s, fraction)
	if err != nil {
		return Keep{}, &FieldError{Key: "keep_top", Reason: err.Error()}
	}
	return c.KeepAt(ctx, run, float64(t))
}

// ReviewImage returns the image file of one pair of a run, read again from its source, and
// its content type.
func (c *Core) ReviewImage(ctx context.Context, run int64, source, key string) ([]byte, string, error) {
	rs, err := c.reviewStore()
	if err != nil {
		return nil, "", err
	}
	info, err := c.runInfo(ctx, c.store, run)
	if err != nil {
		return nil, "", err
	}
	r, err := rs.Result(ctx, run, source, key)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, "", fmt.Errorf("image %s of run %d: %w", key, run, ErrNoItem)
	}
	if err != nil {
		return nil, "", err
	}
	img, err := c.runImages(info)
	if err != nil {
		return nil, "", err
	}
	data, _, err := img(ctx, fromStorage(r))
	if err != nil {
		return nil, "", fmt.Errorf("image %s of run %d: %w", key, run, err)
	}
	return data, http.DetectContentType(data), nil
}

// runImages returns an image reader over a run's sources, opening them once per run.
func (c *Core) runImages(info RunInfo) (pipeline.ImageFunc, error) {
	c.images.mu.Lock()
	defer c.images.mu.Unlock()
	if c.images.run == info.ID && c.images.fn != nil {
		return c.images.fn, nil
	}
	var srcs []pipeline.Source
	opts := pipeline.SourceOptions{Fetch: pipeline.FetchOptions{Version: c.opts.Version}}
	for _, s := range info.Sources {
		ss, err := pipeline.Open(s, opts)
		if err != nil {
			return nil, fmt.Errorf("open the sources of run %d: %w", info.ID, err)
		}
		srcs = append(srcs, ss...)
	}
	f := pipeline.NewFetcher(opts.Fetch)
	c.images.run, c.images.fn = info.ID, pipeline.SourceImages(srcs, f.Fetch)
	return c.images.fn, nil
}

// imageCache keeps the image reader of the run last reviewed.
type imageCache struct {
	mu  sync.Mutex
	run int64
	fn  pipeline.ImageFunc
}
