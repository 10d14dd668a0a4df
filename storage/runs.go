package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// States of a DVA run.
const (
	RunRunning   = "running"
	RunPaused    = "paused"
	RunDone      = "done"
	RunFailed    = "failed"
	RunCancelled = "cancelled"
)

// Verdicts a person can give an item on the review screen; "" is none.
const (
	VerdictKeep   = "keep"
	VerdictReject = "reject"
)

// ErrBadVerdict is returned by SetVerdict for a verdict other than "", "keep" or "reject".
var ErrBadVerdict = errors.New("verdict must be empty, keep or reject")

// DVARun is one batch scoring run of the Data Validation Agent.
type DVARun struct {
	ID       int64
	Created  time.Time
	Updated  time.Time
	Finished time.Time // zero while the run has not finished
	State    string    // one of RunRunning, RunPaused, RunDone, RunFailed, RunCancelled
	Sources  []string
	Model    string
	// ModelSHA256 is the hex sha256 of the model's weights file.
	ModelSHA256 string
	// Options are the run's options as the caller encodes them (a JSON object); empty is {}.
	Options json.RawMessage
	OutDir  string
	Message string
}

// DVAResult is one item's outcome in a run. It mirrors dva/pipeline.Result field for field
// (storage imports nothing of dva; the app converts between the two).
type DVAResult struct {
	Source  string
	Key     string
	UID     string
	URL     string
	Caption string
	Score   float32 // meaningful only when Reason is ""
	Width   int
	Height  int
	Reason  string // "" when scored
	Error   string
	Extra   map[string]string
	Verdict string // "", VerdictKeep or VerdictReject
}

// ResultRef names one item of a run.
type ResultRef struct {
	Source string
	Key    string
}

func validState(s string) bool {
	switch s {
	case RunRunning, RunPaused, RunDone, RunFailed, RunCancelled:
		return true
	}
	return false
}

func validVerdict(v string) bool { return v == "" || v == VerdictKeep || v == VerdictReject }

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// CreateRun stores a new run and returns its id. Created and Updated default to now and
// State to RunRunning.
func (s *Store) CreateRun(ctx context.Context, r DVARun) (int64, error) {
	now := time.Now()
	if r.Created.IsZero() {
		r.Created = now
	}
	if r.Updated.IsZero() {
		r.Updated = r.Created
	}
	if r.State == "" {
		r.State = RunRunning
	}
	if !validState(r.State) {
		return 0, fmt.Errorf("create run: unknown state %q", r.State)
	}
	if r.Sources == nil {
		r.Sources = []string{}
	}
	sources, err := json.Marshal(r.Sources)
	if err != nil {
		return 0, fmt.Errorf("create run: encode sources: %w", err)
	}
	opts := "{}"
	if len(r.Options) > 0 {
		if !json.Valid(r.Options) {
			return 0, fmt.Errorf("create run: options are not valid JSON")
		}
		opts = string(r.Options)
	}
	res, err := s.db.ExecContext(ctx,
		`INSERT INTO dva_runs(created, updated, finished, state, sources, model, model_sha256, options, out_dir, message)
		 VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		millis(r.Created), millis(r.Updated), millis(r.Finished), r.State, string(sources),
		r.Model, r.ModelSHA256, opts, r.OutDir, r.Message)
	if err != nil {
		return 0, fmt.Errorf("create run: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("create run: %w", err)
	}
	return id, nil
}

const runColumns = `id, created, updated, finished, state, sources, model, model_sha256, options, out_dir, message`

func scanRun(sc scanner) (DVARun, error) {
	var r DVARun
	var created, updated, finished int64
	var sources, opts string
	if err := sc.Scan(&r.ID, &created, &updated, &finished, &r.State, &sources, &r.Model,
		&r.ModelSHA256, &opts, &r.OutDir, &r.Message); err != nil {
		return DVARun{}, err
	}
	r.Created, r.Updated, r.Finished = fromMillis(created), fromMillis(updated), fromMillis(finished)
	if err := json.Unmarshal([]byte(sources), &r.Sources); err != nil {
		return DVARun{}, fmt.Errorf("decode sources of run %d: %w", r.ID, err)
	}
	r.Options = json.RawMessage(opts)
	return r, nil
}

// Run returns the run with the id, or an error wrapping ErrNotFound.
func (s *Store) Run(ctx context.Context, id int64) (DVARun, error) {
	r, err := scanRun(s.db.QueryRowContext(ctx, `SELECT `+runColumns+` FROM dva_runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return DVARun{}, fmt.Errorf("read run %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return DVARun{}, fmt.Errorf("read run %d: %w", id, err)
	}
	return r, nil
}

// Runs returns up to limit runs, newest first.
func (s *Store) Runs(ctx context.Context, limit int) ([]DVARun, error) {
	out, err := queryRows(ctx, s.db, scanRun,
		`SELECT `+runColumns+` FROM dva_runs ORDER BY created DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("read runs: %w", err)
	}
	return out, nil
}

// UpdateRun sets a run's state and message and stamps it updated now; a non-zero finished
// is stored as the time it finished (a zero one clears it, as when a run resumes).
func (s *Store) UpdateRun(ctx context.Context, id int64, state, message string, finished time.Time) error {
	if !validState(state) {
		return fmt.Errorf("update run %d: unknown state %q", id, state)
	}
	res, err := s.db.ExecContext(ctx,
		`UPDATE dva_runs SET state = ?, message = ?, finished = ?, updated = ? WHERE id = ?`,
		state, message, millis(finished), time.Now().UnixMilli(), id)
	if err != nil {
		return fmt.Errorf("update run %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("update run %d: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("update run %d: %w", id, ErrNotFound)
	}
	return nil
}

// finishedChunk bounds the keys bound to one lookup query, well under SQLite's limit on
// host parameters.
const finishedChunk = 500

// Finished reports, for each ref, whether the run has a result for it, scored or failed.
// It asks one primary-key query per source and chunk of keys, not one per ref.
func (s *Store) Finished(ctx context.Context, run int64, refs []ResultRef) ([]bool, error) {
	out := make([]bool, len(refs))
	// Group positions by source, then by key (a ref may repeat).
	bySource := map[string]map[string][]int{}
	var order []string
	for i, r := range refs {
		keys, ok := bySource[r.Source]
		if !ok {
			keys = map[string][]int{}
			bySource[r.Source] = keys
			order = append(order, r.Source)
		}
		keys[r.Key] = append(keys[r.Key], i)
	}
	args := make([]any, 0, finishedChunk+2)
	for _, src := range order {
		keys := bySource[src]
		list := make([]string, 0, len(keys))
		for k := range keys {
			list = append(list, k)
		}
		for len(list) > 0 {
			n := min(len(list), finishedChunk)
			chunk := list[:n]
			list = list[n:]
			args = append(args[:0], run, src)
			for _, k := range chunk {
				args = append(args, k)
			}
			q := `SELECT key FROM dva_results WHERE run_id = ? AND source = ? AND key IN (?` +
				strings.Repeat(", ?", len(chunk)-1) + `)`
			err := eachRow(ctx, s.db, func(sc scanner) error {
				var k string
				if err := sc.Scan(&k); err != nil {
					return err
				}
				for _, i := range keys[k] {
					out[i] = true
				}
				return nil
			}, q, args...)
			if err != nil {
				return nil, fmt.Errorf("look up finished items of run %d: %w", run, err)
			}
		}
	}
	return out, nil
}

// SaveResults stores results of a run in one transaction. A result for an item the run
// already has replaces the stored one only when that one failed (a retry), and the stored
// verdict stays; a result for an item already scored is ignored.
func (s *Store) SaveResults(ctx context.Context, run int64, rs []DVAResult) error {
	if len(rs) == 0 {
		return nil
	}
	action := fmt.Sprintf("save results of run %d", run)
	return s.withTx(ctx, action, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx,
			`INSERT INTO dva_results(run_id, source, key, uid, url, caption, score, width, height, reason, error, extra, verdict, verdict_at)
			 VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			 ON CONFLICT(run_id, source, key) DO UPDATE SET
			   uid = excluded.uid, url = excluded.url, caption = excluded.caption, score = excluded.score,
			   width = excluded.width, height = excluded.height, reason = excluded.reason,
			   error = excluded.error, extra = excluded.extra
			 WHERE dva_results.reason != ''`)
		if err != nil {
			return fmt.Errorf("%s: %w", action, err)
		}
		defer stmt.Close()
		now := time.Now().UnixMilli()
		for _, r := range rs {
			if !validVerdict(r.Verdict) {
				return fmt.Errorf("save result %s/%s of run %d: %w", r.Source, r.Key, run, ErrBadVerdict)
			}
			extra := "{}"
			if len(r.Extra) > 0 {
				b, err := json.Marshal(r.Extra)
				if err != nil {
					return fmt.Errorf("save result %s/%s of run %d: encode extra: %w", r.Source, r.Key, run, err)
				}
				extra = string(b)
			}
			var verdictAt int64
			if r.Verdict != "" {
				verdictAt = now
			}
			score := float64(r.Score)
			if r.Reason != "" {
				score = 0
			}
			if _, err := stmt.ExecContext(ctx, run, r.Source, r.Key, r.UID, r.URL, r.Caption, score,
				r.Width, r.Height, r.Reason, r.Error, extra, r.Verdict, verdictAt); err != nil {
				return fmt.Errorf("save result %s/%s of run %d: %w", r.Source, r.Key, run, err)
			}
		}
		return nil
	})
}

// ClearFailed deletes the run's failed results, all of them or only those of the given
// reasons, so that resuming the run tries those items again. It returns how many it deleted.
func (s *Store) ClearFailed(ctx context.Context, run int64, reasons ...string) (int64, error) {
	q := `DELETE FROM dva_results WHERE run_id = ? AND reason != ''`
	args := []any{run}
	if len(reasons) > 0 {
		q += ` AND reason IN (?` + strings.Repeat(", ?", len(reasons)-1) + `)`
		for _, r := range reasons {
			args = append(args, r)
		}
	}
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("clear failed results of run %d: %w", run, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("clear failed results of run %d: %w", run, err)
	}
	return n, nil
}

const resultColumns = `source, key, uid, url, caption, score, width, height, reason, error, extra, verdict`

func scanResult(sc scanner) (DVAResult, error) {
	var r DVAResult
	var score float64
	var extra string
	if err := sc.Scan(&r.Source, &r.Key, &r.UID, &r.URL, &r.Caption, &score, &r.Width, &r.Height,
		&r.Reason, &r.Error, &extra, &r.Verdict); err != nil {
		return DVAResult{}, err
	}
	r.Score = float32(score)
	if extra != "" && extra != "{}" {
		if err := json.Unmarshal([]byte(extra), &r.Extra); err != nil {
			return DVAResult{}, fmt.Errorf("decode extra of %s/%s: %w", r.Source, r.Key, err)
		}
	}
	return r, nil
}

// EachResult calls fn for every result of the run in (source, key) order, reading them
// from the database as it goes. An error from fn stops it and is returned as is.
func (s *Store) EachResult(ctx context.Context, run int64, fn func(DVAResult) error) error {
	var fnErr error // fn's error, returned unwrapped
	err := eachRow(ctx, s.db, func(sc scanner) error {
		r, err := scanResult(sc)
		if err != nil {
			return err
		}
		fnErr = fn(r)
		return fnErr
	}, `SELECT `+resultColumns+` FROM dva_results WHERE run_id = ? ORDER BY source, key`, run)
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("read results of run %d: %w", run, err)
	}
	return nil
}

// RunCounts returns how many results of the run were scored and how many failed, by reason.
func (s *Store) RunCounts(ctx context.Context, run int64) (scored int64, byReason map[string]int64, err error) {
	byReason = map[string]int64{}
	err = eachRow(ctx, s.db, func(sc scanner) error {
		var reason string
		var n int64
		if err := sc.Scan(&reason, &n); err != nil {
			return err
		}
		if reason == "" {
			scored = n
		} else {
			byReason[reason] = n
		}
		return nil
	}, `SELECT reason, COUNT(*) FROM dva_results WHERE run_id = ? GROUP BY reason`, run)
	if err != nil {
		return 0, nil, fmt.Errorf("count results of run %d: %w", run, err)
	}
	return scored, byReason, nil
}

// Scores returns the scores of the run's scored results, in no particular order.
func (s *Store) Scores(ctx context.Context, run int64) ([]float32, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx,
		`SELECT COUNT(*) FROM dva_results WHERE run_id = ? AND reason = ''`, run).Scan(&n); err != nil {
		return nil, fmt.Errorf("read scores of run %d: %w", run, err)
	}
	out := make([]float32, 0, n)
	err := eachRow(ctx, s.db, func(sc scanner) error {
		var v float64
		if err := sc.Scan(&v); err != nil {
			return err
		}
		out = append(out, float32(v))
		return nil
	}, `SELECT score FROM dva_results WHERE run_id = ? AND reason = ''`, run)
	if err != nil {
		return nil, fmt.Errorf("read scores of run %d: %w", run, err)
	}
	return out, nil
}

// Orders of a review page.
const (
	OrderScoreDesc = "score_desc" // best first (the default)
	OrderScoreAsc  = "score_asc"  // worst first
	OrderKey       = "key"        // by source, then key
)

// VerdictNone, as ReviewQuery.Verdict, selects the items nobody has judged yet.
const VerdictNone = "none"

// ReviewQuery selects a page of a run's results for the review screen.
type ReviewQuery struct {
	Order string // OrderScoreDesc (when empty), OrderScoreAsc or OrderKey
	// MinScore and MaxScore, when set, bound the score (both inclusive). Scores are float32,
	// so the bounds are rounded to float32 first: MaxScore 0.6 includes a score of 0.6.
	MinScore, MaxScore *float64
	// Verdict filters by verdict: "" any, VerdictKeep, VerdictReject or VerdictNone.
	Verdict string
	// Failed lists failed items instead of scored ones (score bounds then do not apply);
	// Reason narrows them to one reason.
	Failed bool
	Reason string
	Offset int
	Limit  int // at most 1000; 0 means 50
}

// ReviewPage returns one page of the run's results as q selects and orders them, and the
// number of results the filters match across all pages.
func (s *Store) ReviewPage(ctx context.Context, run int64, q ReviewQuery) ([]DVAResult, int, error) {
	where := []string{"run_id = ?"}
	args := []any{run}
	switch {
	case !q.Failed:
		where = append(where, "reason = ''")
		if q.MinScore != nil {
			where = append(where, "score >= ?")
			args = append(args, float64(float32(*q.MinScore)))
		}
		if q.MaxScore != nil {
			where = append(where, "score <= ?")
			args = append(args, float64(float32(*q.MaxScore)))
		}
	case q.Reason != "":
		where = append(where, "reason = ?")
		args = append(args, q.Reason)
	default:
		where = append(where, "reason != ''")
	}
	switch q.Verdict {
	case "":
	case VerdictKeep, VerdictReject:
		where = append(where, "verdict = ?")
		args = append(args, q.Verdict)
	case VerdictNone:
		where = append(where, "verdict = ''")
	default:
		return nil, 0, fmt.Errorf("review run %d: unknown verdict filter %q", run, q.Verdict)
	}
	var order string
	switch q.Order {
	case "", OrderScoreDesc:
		order = "score DESC, rowid DESC"
	case OrderScoreAsc:
		order = "score ASC, rowid ASC"
	case OrderKey:
		order = "source, key"
	default:
		return nil, 0, fmt.Errorf("review run %d: unknown order %q", run, q.Order)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 1000)
	cond := strings.Join(where, " AND ")

	var total int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM dva_results WHERE `+cond, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("review run %d: %w", run, err)
	}
	out, err := queryRows(ctx, s.db, scanResult,
		`SELECT `+resultColumns+` FROM dva_results WHERE `+cond+` ORDER BY `+order+` LIMIT ? OFFSET ?`,
		append(args, limit, max(q.Offset, 0))...)
	if err != nil {
		return nil, 0, fmt.Errorf("review run %d: %w", run, err)
	}
	return out, total, nil
}

// Result returns one item of a run, or ErrNotFound.
func (s *Store) Result(ctx context.Context, run int64, source, key string) (DVAResult, error) {
	row := s.db.QueryRowContext(ctx,
		`SELECT `+resultColumns+` FROM dva_results WHERE run_id = ? AND source = ? AND key = ?`, run, source, key)
	r, err := scanResult(row)
	if errors.Is(err, sql.ErrNoRows) {
		return DVAResult{}, fmt.Errorf("result %s/%s of run %d: %w", source, key, run, ErrNotFound)
	}
	if err != nil {
		return DVAResult{}, fmt.Errorf("result %s/%s of run %d: %w", source, key, run, err)
	}
	return r, nil
}

// SetVerdict records a person's verdict on one item ("" clears it). A verdict other than
// "", "keep" or "reject" gives ErrBadVerdict; an item the run does not have, ErrNotFound.
func (s *Store) SetVerdict(ctx context.Context, run int64, source, key, verdict string) error {
	if !validVerdict(verdict) {
		return fmt.Errorf("set verdict %q: %w", verdict, ErrBadVerdict)
	}
	var at int64
	if verdict != "" {
		at = time.Now().UnixMilli()
	}
	res, err := s.db.ExecContext(ctx,
		`UPDATE dva_results SET verdict = ?, verdict_at = ? WHERE run_id = ? AND source = ? AND key = ?`,
		verdict, at, run, source, key)
	if err != nil {
		return fmt.Errorf("set verdict of %s/%s in run %d: %w", source, key, run, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("set verdict of %s/%s in run %d: %w", source, key, run, err)
	} else if n == 0 {
		return fmt.Errorf("set verdict of %s/%s in run %d: %w", source, key, run, ErrNotFound)
	}
	return nil
}
