package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gata-contrib/gata/app/core"
)

// maxRunBody bounds the JSON body of a run or verdict request.
const maxRunBody = 1 << 20

// runID reads the {id} of a run route; anything but a positive number is no run.
func runID(r *http.Request) (int64, error) {
	v := r.PathValue("id")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("run %q: %w", v, core.ErrNoRun)
	}
	return id, nil
}

// decodeBody reads a JSON object into v; an empty body leaves v as it is.
func decodeBody(w http.ResponseWriter, r *http.Request, what string, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRunBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && err != io.EOF {
		return fmt.Errorf("read %s: want a JSON object: %w", what, readError(err))
	}
	return nil
}

func (h *handlers) listRuns(w http.ResponseWriter, r *http.Request) {
	runs, err := h.core.Runs(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, runs)
}

// startRun takes a core.RunRequest as JSON and answers with the run's job.
func (h *handlers) startRun(w http.ResponseWriter, r *http.Request) {
	var req core.RunRequest
	if err := decodeBody(w, r, "run request", &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	h.run(w, r, req)
}

func (h *handlers) run(w http.ResponseWriter, r *http.Request, req core.RunRequest) {
	j, err := h.core.StartRun(r.Context(), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, j)
}

func (h *handlers) getRun(w http.ResponseWriter, r *http.Request) {
	id, err := runID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	s, err := h.core.RunSummary(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (h *handlers) pauseRun(w http.ResponseWriter, r *http.Request)  { h.setPaused(w, r, true) }
func (h *handlers) resumeRun(w http.ResponseWriter, r *http.Request) { h.setPaused(w, r, false) }

func (h *handlers) setPaused(w http.ResponseWriter, r *http.Request, paused bool) {
	id, err := runID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.core.PauseRun(id, paused); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, core.RunPaused{Run: id, Paused: h.core.RunIsPaused(id)})
}

// continueRun goes on with a stopped run, or exports a run again; an optional JSON body
// sets a new keep_top or min_score (nothing is scored again) or basic_filter.
func (h *handlers) continueRun(w http.ResponseWriter, r *http.Request) { h.resume(w, r, false) }

// retryRun is continueRun that first tries the run's failed items again.
func (h *handlers) retryRun(w http.ResponseWriter, r *http.Request) { h.resume(w, r, true) }

func (h *handlers) resume(w http.ResponseWriter, r *http.Request, retry bool) {
	id, err := runID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var body struct {
		KeepTop     float64  `json:"keep_top"`
		MinScore    *float64 `json:"min_score"`
		BasicFilter bool     `json:"basic_filter"`
	}
	if err := decodeBody(w, r, "run request", &body); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	h.run(w, r, core.RunRequest{Resume: id, RetryFailed: retry, KeepTop: body.KeepTop, MinScore: body.MinScore, BasicFilter: body.BasicFilter})
}

// queryFloat reads an optional number from the query; nil when absent.
func queryFloat(q url.Values, name string) (*float64, error) {
	v := strings.TrimSpace(q.Get(name))
	if v == "" {
		return nil, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return nil, &core.FieldError{Key: name, Reason: fmt.Sprintf("%s %q is not a number", name, v)}
	}
	return &f, nil
}

// queryInt reads an optional whole number from the query; def when absent.
func queryInt(q url.Values, name string, def int) (int, error) {
	v := strings.TrimSpace(q.Get(name))
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, &core.FieldError{Key: name, Reason: fmt.Sprintf("%s %q is not a whole number", name, v)}
	}
	return n, nil
}

// getReview answers a page of a run's pairs: ?order=score_desc|score_asc|key, min, max,
// verdict=keep|reject|none, failed=true, reason, offset, limit.
func (h *handlers) getReview(w http.ResponseWriter, r *http.Request) {
	id, err := runID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	rq := core.ReviewQuery{Order: q.Get("order"), Verdict: q.Get("verdict"), Reason: q.Get("reason"), Failed: q.Get("failed") == "true"}
	var errs [4]error
	rq.MinScore, errs[0] = queryFloat(q, "min")
	rq.MaxScore, errs[1] = queryFloat(q, "max")
	rq.Offset, errs[2] = queryInt(q, "offset", 0)
	rq.Limit, errs[3] = queryInt(q, "limit", 0)
	if err := errors.Join(errs[:]...); err != nil {
		h.fail(w, r, err)
		return
	}
	p, err := h.core.Review(r.Context(), id, rq)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// defaultBins is how many bars the review screen's histogram has unless ?bins= says.
const defaultBins = 40

func (h *handlers) getDistribution(w http.ResponseWriter, r *http.Request) {
	id, err := runID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	bins, err := queryInt(r.URL.Query(), "bins", defaultBins)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	d, err := h.core.ScoreDistribution(r.Context(), id, bins)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// getKeep says what ?threshold= keeps of a run, or which threshold ?keep_top= implies.
func (h *handlers) getKeep(w http.ResponseWriter, r *http.Request) {
	id, err := runID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	t, terr := queryFloat(q, "threshold")
	f, ferr := queryFloat(q, "keep_top")
	if err := errors.Join(terr, ferr); err != nil {
		h.fail(w, r, err)
		return
	}
	var k core.Keep
	switch {
	case t != nil:
		k, err = h.core.KeepAt(r.Context(), id, *t)
	case f != nil:
		k, err = h.core.ThresholdFor(r.Context(), id, *f)
	default:
		err = &core.FieldError{Key: "threshold", Reason: "give a threshold or a keep_top fraction"}
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, k)
}

// getImage streams the image of one pair (?source=&key=) as its source holds it.
func (h *handlers) getImage(w http.ResponseWriter, r *http.Request) {
	id, err := runID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	data, typ, err := h.core.ReviewImage(r.Context(), id, q.Get("source"), q.Get("key"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", typ)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Header().Set("Cache-Control", "private, max-age=3600")
	w.Write(data)
}

// verdictRequest is the body of POST /api/runs/{id}/verdict.
type verdictRequest struct {
	Source  string `json:"source"`
	Key     string `json:"key"`
	Verdict string `json:"verdict"` // "keep", "reject" or "" to clear it
}

func (h *handlers) postVerdict(w http.ResponseWriter, r *http.Request) {
	id, err := runID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var v verdictRequest
	if err := decodeBody(w, r, "verdict", &v); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := h.core.SetVerdict(r.Context(), id, v.Source, v.Key, v.Verdict); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// maxListedRuns is how many runs the batch runs card lists.
const maxListedRuns = 20

// runRow is one run in the batch runs card.
type runRow struct {
	core.RunSummary
	Job    *core.JobInfo // the run's newest job, if it ran in this session
	Live   bool          // that job is running
	Paused bool
}

// Badge is the state the card shows: a live run may be paused; a run recorded as running
// with no job behind it was interrupted.
func (r runRow) Badge() string {
	switch {
	case r.Live && r.Paused:
		return "paused"
	case !r.Live && r.State == "running":
		return "interrupted"
	}
	return r.State
}

// FailedTotal is the number of failed items, all reasons together.
func (r runRow) FailedTotal() int64 {
	var n int64
	for _, c := range r.Failed {
		n += c
	}
	return n
}

// FailedText lists the failed items by reason ("corrupt 1, not_found 2").
func (r runRow) FailedText() string {
	var parts []string
	for _, reason := range slices.Sorted(maps.Keys(r.Failed)) {
		parts = append(parts, fmt.Sprintf("%s %d", reason, r.Failed[reason]))
	}
	return strings.Join(parts, ", ")
}

// runsPage is what the batch runs card shows.
type runsPage struct {
	Runs        []runRow
	More        int    // runs not listed
	Unavailable string // why the runs could not be read
}

func (h *handlers) runsPage(r *http.Request) *runsPage {
	p := &runsPage{}
	runs, err := h.core.Runs(r.Context())
	if err != nil {
		p.Unavailable = err.Error()
		return p
	}
	if len(runs) > maxListedRuns {
		p.More, runs = len(runs)-maxListedRuns, runs[:maxListedRuns]
	}
	jobs := h.core.ListJobs() // newest first
	for _, ri := range runs {
		s, err := h.core.RunSummary(r.Context(), ri.ID)
		if err != nil {
			s = core.RunSummary{RunInfo: ri}
		}
		row := runRow{RunSummary: s}
		subject := strconv.FormatInt(ri.ID, 10)
		if i := slices.IndexFunc(jobs, func(j core.JobInfo) bool { return j.Kind == "dva.run" && j.Subject == subject }); i >= 0 {
			row.Job = &jobs[i]
			row.Live = jobs[i].State == core.JobRunning
			row.Paused = row.Live && h.core.RunIsPaused(ri.ID)
		}
		p.Runs = append(p.Runs, row)
	}
	return p
}

func (h *handlers) uiRuns(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, "validate-runs", h.runsPage(r))
}

// reviewView is what the review screen's partial shows: the run; the page script loads
// its pairs and histogram from the JSON API.
type reviewView struct {
	Run     core.RunSummary
	Reasons []string // the reasons items failed for, sorted
	Live    bool     // a job of the run is running
}

func (h *handlers) uiReview(w http.ResponseWriter, r *http.Request) {
	id, err := runID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	s, err := h.core.RunSummary(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	v := reviewView{Run: s, Reasons: slices.Sorted(maps.Keys(s.Failed))}
	subject := strconv.FormatInt(id, 10)
	for _, j := range h.core.ListJobs() {
		v.Live = v.Live || j.Kind == "dva.run" && j.Subject == subject && j.State == core.JobRunning
	}
	h.render(w, r, "review", v)
}
