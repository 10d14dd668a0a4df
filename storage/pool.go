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

// States of the pool's groups, jobs and results.
const (
	GroupOpen     = "open"
	GroupVerified = "verified"

	JobNew       = "new"
	JobPublished = "published"

	ResultPending   = "pending"
	ResultConfirmed = "confirmed"
	ResultRejected  = "rejected"
)

// PoolGroup is one piece of a run's dataset that the pool hands out and verifies.
type PoolGroup struct {
	ID       string
	Run      int64
	State    string          // GroupOpen or GroupVerified
	Items    json.RawMessage // the pool's own record of the items (refs, canary answers)
	Created  time.Time
	Verified time.Time
}

// PoolJob is one copy of a group handed to workers.
type PoolJob struct {
	ID        string
	Group     string
	Run       int64
	Replica   int    // 0 for the first copy
	State     string // JobNew until published, then JobPublished
	Body      json.RawMessage
	Created   time.Time
	Published time.Time
}

// PoolResult is what a worker returned for a job and the credit it earns.
type PoolResult struct {
	Job       string
	Worker    string // the signer's address
	Group     string
	Run       int64
	Received  time.Time
	State     string // ResultPending, ResultConfirmed or ResultRejected
	Reason    string // why it was rejected
	Credits   int64  // pairs the result scored
	Backend   string
	ComputeMS int64
	Body      json.RawMessage
	Decided   time.Time
}

// PoolWorker is a worker's standing in the pool.
type PoolWorker struct {
	Address          string
	FirstSeen        time.Time
	LastSeen         time.Time
	ConsecutiveValid int64
	Valid            int64
	Invalid          int64
	Backend          string
}

// PoolVerdict settles one result.
type PoolVerdict struct {
	Job    string
	Worker string
	State  string // ResultConfirmed or ResultRejected
	Reason string
}

// PoolDecision is what the pool concluded about a group after a result: the results it
// settled, the workers whose standing changed, the jobs it hands out next, and whether the
// group is now verified. DecidePool applies it in one transaction.
type PoolDecision struct {
	Group    string
	Verified bool
	Verdicts []PoolVerdict
	Workers  []PoolWorker
	NewJobs  []PoolJob
}

// PoolCredit sums one worker's credits.
type PoolCredit struct {
	Worker           string `json:"worker"`
	Pending          int64  `json:"pending"`
	Confirmed        int64  `json:"confirmed"`
	Rejected         int64  `json:"rejected"`
	Results          int64  `json:"results"`
	RejectedResults  int64  `json:"rejected_results"`
	ConsecutiveValid int64  `json:"consecutive_valid"`
	Backend          string `json:"backend,omitempty"`
	// ComputeMS is the compute time the worker reported for its confirmed results.
	ComputeMS int64     `json:"compute_ms"`
	LastSeen  time.Time `json:"last_seen"`
}

// PoolCounts count a run's groups and jobs.
type PoolCounts struct {
	Cursor        int64 `json:"cursor"`
	ReadAll       bool  `json:"read_all"`
	Groups        int64 `json:"groups"`
	Verified      int64 `json:"verified"`
	Jobs          int64 `json:"jobs"`
	Results       int64 `json:"results"`
	Pending       int64 `json:"pending"`
	Rejected      int64 `json:"rejected"`
	Confirmed     int64 `json:"confirmed"`
	Unanswered    int64 `json:"unanswered"`     // jobs of open groups with no result yet
	ConfirmedWork int64 `json:"confirmed_work"` // credits confirmed
}

// PoolCursor returns how many items of the run's sources the pool has already cut into
// groups or recorded, and whether it read them all.
func (s *Store) PoolCursor(ctx context.Context, run int64) (cursor int64, readAll bool, err error) {
	var ra int
	err = s.db.QueryRowContext(ctx, `SELECT cursor, read_all FROM pool_runs WHERE run_id = ?`, run).Scan(&cursor, &ra)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read pool cursor of run %d: %w", run, err)
	}
	return cursor, ra != 0, nil
}

// SetPoolCursor records how far the pool read the run's sources (readAll once it reached
// the end).
func (s *Store) SetPoolCursor(ctx context.Context, run, cursor int64, readAll bool) error {
	return setCursor(ctx, s.db, run, cursor, readAll)
}

func setCursor(ctx context.Context, db execer, run, cursor int64, readAll bool) error {
	ra := 0
	if readAll {
		ra = 1
	}
	_, err := db.ExecContext(ctx, `INSERT INTO pool_runs(run_id, cursor, read_all) VALUES(?, ?, ?)
		ON CONFLICT(run_id) DO UPDATE SET cursor = max(cursor, excluded.cursor), read_all = max(read_all, excluded.read_all)`,
		run, cursor, ra)
	if err != nil {
		return fmt.Errorf("record pool cursor of run %d: %w", run, err)
	}
	return nil
}

// AddPoolGroup stores a new group and its first job and moves the run's cursor to cursor,
// in one transaction, so a restarted pool neither loses nor repeats the group's items.
func (s *Store) AddPoolGroup(ctx context.Context, g PoolGroup, job PoolJob, cursor int64) error {
	if g.Created.IsZero() {
		g.Created = time.Now()
	}
	if g.State == "" {
		g.State = GroupOpen
	}
	action := fmt.Sprintf("add pool group %s", g.ID)
	return s.withTx(ctx, action, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO pool_groups(id, run_id, state, items, created, verified) VALUES(?, ?, ?, ?, ?, ?)`,
			g.ID, g.Run, g.State, rawOr(g.Items, "{}"), millis(g.Created), millis(g.Verified)); err != nil {
			return fmt.Errorf("%s: %w", action, err)
		}
		if err := insertJob(ctx, tx, job); err != nil {
			return err
		}
		return setCursor(ctx, tx, g.Run, cursor, false)
	})
}

func rawOr(b json.RawMessage, def string) string {
	if len(b) == 0 {
		return def
	}
	return string(b)
}

func insertJob(ctx context.Context, db execer, j PoolJob) error {
	if j.Created.IsZero() {
		j.Created = time.Now()
	}
	if j.State == "" {
		j.State = JobNew
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO pool_jobs(id, group_id, run_id, replica, state, body, created, published) VALUES(?, ?, ?, ?, ?, ?, ?, ?)`,
		j.ID, j.Group, j.Run, j.Replica, j.State, rawOr(j.Body, "{}"), millis(j.Created), millis(j.Published)); err != nil {
		return fmt.Errorf("add pool job %s: %w", j.ID, err)
	}
	return nil
}

// MarkPoolJobPublished records that a job is on the jobs stream.
func (s *Store) MarkPoolJobPublished(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE pool_jobs SET state = ?, published = ? WHERE id = ?`,
		JobPublished, time.Now().UnixMilli(), id); err != nil {
		return fmt.Errorf("mark pool job %s published: %w", id, err)
	}
	return nil
}

// PoolGroups returns the run's groups in the given state ("" for all), oldest first.
func (s *Store) PoolGroups(ctx context.Context, run int64, state string) ([]PoolGroup, error) {
	q := `SELECT id, run_id, state, items, created, verified FROM pool_groups WHERE run_id = ?`
	args := []any{run}
	if state != "" {
		q += ` AND state = ?`
		args = append(args, state)
	}
	out, err := queryRows(ctx, s.db, scanPoolGroup, q+` ORDER BY created, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list pool groups of run %d: %w", run, err)
	}
	return out, nil
}

func scanPoolGroup(sc scanner) (PoolGroup, error) {
	var g PoolGroup
	var items string
	var created, verified int64
	if err := sc.Scan(&g.ID, &g.Run, &g.State, &items, &created, &verified); err != nil {
		return PoolGroup{}, err
	}
	g.Items, g.Created, g.Verified = json.RawMessage(items), fromMillis(created), fromMillis(verified)
	return g, nil
}

// PoolJobs returns the jobs of the run's open groups, oldest first.
func (s *Store) PoolJobs(ctx context.Context, run int64) ([]PoolJob, error) {
	out, err := queryRows(ctx, s.db, scanPoolJob, `SELECT j.id, j.group_id, j.run_id, j.replica, j.state, j.body, j.created, j.published
		FROM pool_jobs j JOIN pool_groups g ON g.id = j.group_id
		WHERE j.run_id = ? AND g.state = ? ORDER BY j.created, j.id`, run, GroupOpen)
	if err != nil {
		return nil, fmt.Errorf("list pool jobs of run %d: %w", run, err)
	}
	return out, nil
}

func scanPoolJob(sc scanner) (PoolJob, error) {
	var j PoolJob
	var body string
	var created, published int64
	if err := sc.Scan(&j.ID, &j.Group, &j.Run, &j.Replica, &j.State, &body, &created, &published); err != nil {
		return PoolJob{}, err
	}
	j.Body, j.Created, j.Published = json.RawMessage(body), fromMillis(created), fromMillis(published)
	return j, nil
}

const poolResultColumns = `job_id, worker, group_id, run_id, received, state, reason, credits, backend, compute_ms, body, decided`

func scanPoolResult(sc scanner) (PoolResult, error) {
	var r PoolResult
	var body string
	var received, decided int64
	if err := sc.Scan(&r.Job, &r.Worker, &r.Group, &r.Run, &received, &r.State, &r.Reason, &r.Credits, &r.Backend,
		&r.ComputeMS, &body, &decided); err != nil {
		return PoolResult{}, err
	}
	r.Body, r.Received, r.Decided = json.RawMessage(body), fromMillis(received), fromMillis(decided)
	return r, nil
}

// PoolResultsOf returns the results of a group, in the order they came.
func (s *Store) PoolResultsOf(ctx context.Context, group string) ([]PoolResult, error) {
	return s.poolResults(ctx, `WHERE group_id = ? ORDER BY received, rowid`, group)
}

// PoolRejected returns the newest rejected results, at most limit.
func (s *Store) PoolRejected(ctx context.Context, limit int) ([]PoolResult, error) {
	return s.poolResults(ctx, `WHERE state = ? ORDER BY decided DESC, rowid DESC LIMIT ?`, ResultRejected, limit)
}

func (s *Store) poolResults(ctx context.Context, where string, args ...any) ([]PoolResult, error) {
	out, err := queryRows(ctx, s.db, scanPoolResult, `SELECT `+poolResultColumns+` FROM pool_results `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("list pool results: %w", err)
	}
	return out, nil
}

// AddPoolResult stores a result as it came. It reports false, storing nothing, when the
// ledger already has a result of that worker for that job (a message delivered twice).
func (s *Store) AddPoolResult(ctx context.Context, r PoolResult) (bool, error) {
	if r.Received.IsZero() {
		r.Received = time.Now()
	}
	if r.State == "" {
		r.State = ResultPending
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO pool_results(`+poolResultColumns+`) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(job_id, worker) DO NOTHING`,
		r.Job, r.Worker, r.Group, r.Run, millis(r.Received), r.State, r.Reason, r.Credits, r.Backend, r.ComputeMS,
		rawOr(r.Body, "{}"), millis(r.Decided))
	if err != nil {
		return false, fmt.Errorf("add pool result of %s for job %s: %w", r.Worker, r.Job, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("add pool result of %s for job %s: %w", r.Worker, r.Job, err)
	}
	return n == 1, nil
}

// DecidePool applies a decision in one transaction: results settled, workers' standing,
// new jobs, and the group's state.
func (s *Store) DecidePool(ctx context.Context, d PoolDecision) error {
	action := fmt.Sprintf("decide pool group %s", d.Group)
	return s.withTx(ctx, action, func(tx *sql.Tx) error {
		now := time.Now().UnixMilli()
		for _, v := range d.Verdicts {
			if v.State != ResultConfirmed && v.State != ResultRejected {
				return fmt.Errorf("%s: unknown result state %q", action, v.State)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE pool_results SET state = ?, reason = ?, decided = ? WHERE job_id = ? AND worker = ?`,
				v.State, v.Reason, now, v.Job, v.Worker); err != nil {
				return fmt.Errorf("%s: %w", action, err)
			}
		}
		for _, w := range d.Workers {
			if err := upsertWorker(ctx, tx, w); err != nil {
				return err
			}
		}
		for _, j := range d.NewJobs {
			if err := insertJob(ctx, tx, j); err != nil {
				return err
			}
		}
		if d.Verified {
			if _, err := tx.ExecContext(ctx, `UPDATE pool_groups SET state = ?, verified = ? WHERE id = ?`, GroupVerified, now, d.Group); err != nil {
				return fmt.Errorf("%s: %w", action, err)
			}
		}
		return nil
	})
}

func upsertWorker(ctx context.Context, db execer, w PoolWorker) error {
	now := time.Now()
	if w.FirstSeen.IsZero() {
		w.FirstSeen = now
	}
	if w.LastSeen.IsZero() {
		w.LastSeen = now
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO pool_workers(address, first_seen, last_seen, consecutive_valid, valid, invalid, backend)
		VALUES(?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(address) DO UPDATE SET last_seen = excluded.last_seen, consecutive_valid = excluded.consecutive_valid,
		  valid = excluded.valid, invalid = excluded.invalid, backend = excluded.backend`,
		w.Address, millis(w.FirstSeen), millis(w.LastSeen), w.ConsecutiveValid, w.Valid, w.Invalid, w.Backend); err != nil {
		return fmt.Errorf("record pool worker %s: %w", w.Address, err)
	}
	return nil
}

// PoolWorkers returns every worker the pool has seen.
func (s *Store) PoolWorkers(ctx context.Context) ([]PoolWorker, error) {
	out, err := queryRows(ctx, s.db, func(sc scanner) (PoolWorker, error) {
		var w PoolWorker
		var first, last int64
		if err := sc.Scan(&w.Address, &first, &last, &w.ConsecutiveValid, &w.Valid, &w.Invalid, &w.Backend); err != nil {
			return PoolWorker{}, err
		}
		w.FirstSeen, w.LastSeen = fromMillis(first), fromMillis(last)
		return w, nil
	}, `SELECT address, first_seen, last_seen, consecutive_valid, valid, invalid, backend FROM pool_workers ORDER BY address`)
	if err != nil {
		return nil, fmt.Errorf("list pool workers: %w", err)
	}
	return out, nil
}

// PoolCredits sums the credits of each worker over every run (run 0) or one run, most
// confirmed first.
func (s *Store) PoolCredits(ctx context.Context, run int64) ([]PoolCredit, error) {
	where, args := "", []any{ResultPending, ResultConfirmed, ResultRejected, ResultRejected, ResultConfirmed}
	if run != 0 {
		where = "WHERE r.run_id = ?"
		args = append(args, run)
	}
	out, err := queryRows(ctx, s.db, scanPoolCredit, `SELECT r.worker,
		  SUM(CASE WHEN r.state = ? THEN r.credits ELSE 0 END),
		  SUM(CASE WHEN r.state = ? THEN r.credits ELSE 0 END),
		  SUM(CASE WHEN r.state = ? THEN r.credits ELSE 0 END),
		  COUNT(*),
		  SUM(CASE WHEN r.state = ? THEN 1 ELSE 0 END),
		  SUM(CASE WHEN r.state = ? THEN r.compute_ms ELSE 0 END),
		  COALESCE(w.consecutive_valid, 0), COALESCE(w.backend, ''), COALESCE(w.last_seen, MAX(r.received))
		FROM pool_results r LEFT JOIN pool_workers w ON w.address = r.worker `+where+`
		GROUP BY r.worker ORDER BY 3 DESC, r.worker`, args...)
	if err != nil {
		return nil, fmt.Errorf("sum pool credits: %w", err)
	}
	return out, nil
}

func scanPoolCredit(sc scanner) (PoolCredit, error) {
	var c PoolCredit
	var last int64
	if err := sc.Scan(&c.Worker, &c.Pending, &c.Confirmed, &c.Rejected, &c.Results, &c.RejectedResults, &c.ComputeMS,
		&c.ConsecutiveValid, &c.Backend, &last); err != nil {
		return PoolCredit{}, err
	}
	c.LastSeen = fromMillis(last)
	return c, nil
}

// PoolCounts counts a run's groups, jobs and results.
func (s *Store) PoolCounts(ctx context.Context, run int64) (PoolCounts, error) {
	var c PoolCounts
	var err error
	if c.Cursor, c.ReadAll, err = s.PoolCursor(ctx, run); err != nil {
		return c, err
	}
	q := []struct {
		dst  *int64
		sql  string
		args []any
	}{
		{&c.Groups, `SELECT COUNT(*) FROM pool_groups WHERE run_id = ?`, []any{run}},
		{&c.Verified, `SELECT COUNT(*) FROM pool_groups WHERE run_id = ? AND state = ?`, []any{run, GroupVerified}},
		{&c.Jobs, `SELECT COUNT(*) FROM pool_jobs WHERE run_id = ?`, []any{run}},
		{&c.Results, `SELECT COUNT(*) FROM pool_results WHERE run_id = ?`, []any{run}},
		{&c.Pending, `SELECT COUNT(*) FROM pool_results WHERE run_id = ? AND state = ?`, []any{run, ResultPending}},
		{&c.Rejected, `SELECT COUNT(*) FROM pool_results WHERE run_id = ? AND state = ?`, []any{run, ResultRejected}},
		{&c.Confirmed, `SELECT COUNT(*) FROM pool_results WHERE run_id = ? AND state = ?`, []any{run, ResultConfirmed}},
		{&c.ConfirmedWork, `SELECT COALESCE(SUM(credits), 0) FROM pool_results WHERE run_id = ? AND state = ?`, []any{run, ResultConfirmed}},
		{&c.Unanswered, `SELECT COUNT(*) FROM pool_jobs j JOIN pool_groups g ON g.id = j.group_id
			WHERE j.run_id = ? AND g.state = ? AND NOT EXISTS (SELECT 1 FROM pool_results r WHERE r.job_id = j.id)`, []any{run, GroupOpen}},
	}
	for _, x := range q {
		if err := s.db.QueryRowContext(ctx, x.sql, x.args...).Scan(x.dst); err != nil {
			return c, fmt.Errorf("count pool run %d: %w", run, err)
		}
	}
	return c, nil
}

// AddPoolInvite keeps the sha256 (hex) of a worker credential.
func (s *Store) AddPoolInvite(ctx context.Context, tokenSHA256, name string) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO pool_invites(token_sha256, name, created) VALUES(?, ?, ?)`,
		strings.ToLower(tokenSHA256), name, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("add pool invitation: %w", err)
	}
	return nil
}

// PoolInviteValid reports whether a credential with that sha256 was issued and not revoked.
func (s *Store) PoolInviteValid(ctx context.Context, tokenSHA256 string) (bool, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pool_invites WHERE token_sha256 = ? AND revoked = 0`,
		strings.ToLower(tokenSHA256)).Scan(&n); err != nil {
		return false, fmt.Errorf("check pool invitation: %w", err)
	}
	return n > 0, nil
}

// RevokePoolInvite revokes the credentials issued under a name; it returns how many.
func (s *Store) RevokePoolInvite(ctx context.Context, name string) (int64, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE pool_invites SET revoked = ? WHERE name = ? AND revoked = 0`, time.Now().UnixMilli(), name)
	if err != nil {
		return 0, fmt.Errorf("revoke pool invitation %q: %w", name, err)
	}
	return res.RowsAffected()
}

// SetPoolMeta keeps a fact about the pool.
func (s *Store) SetPoolMeta(ctx context.Context, key, value string) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO pool_meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
		key, value); err != nil {
		return fmt.Errorf("record pool %s: %w", key, err)
	}
	return nil
}

// PoolMeta returns a fact about the pool, "" when it was never set.
func (s *Store) PoolMeta(ctx context.Context, key string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM pool_meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read pool %s: %w", key, err)
	}
	return v, nil
}
