package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// States of an outbox item, in the order the uploader takes it through them.
const (
	OutboxQueued    = "queued"    // waiting for its (next) attempt
	OutboxUploading = "uploading" // bucket, object and payload
	OutboxSealing   = "sealing"   // waiting for the seal, then tags and the manifest
	OutboxDone      = "done"
	OutboxFailed    = "failed" // gave up after too many attempts; RetryUpload queues it again
)

// States of a share.
const (
	SharePending = "pending" // granted once the upload is done
	ShareDone    = "done"
)

// OutboxItem is one submission on its way to Greenfield.
type OutboxItem struct {
	ID             int64
	SubmissionID   int64
	SHA256         string // hex sha256 of the JSONL file
	Kind           string
	Records        int64
	Size           int64 // bytes of the JSONL file
	JSONLPath      string
	ManifestPath   string
	Bucket         string // "" until the uploader picked the wallet's bucket
	Object         string
	ManifestObject string
	State          string
	Attempts       int // attempts that ended in an error
	NextAttempt    time.Time
	BytesSent      int64
	Speed          float64 // bytes per second of the last upload
	Error          string
	Created        time.Time
	Updated        time.Time
	Finished       time.Time
	Shares         []Share
}

// Share is read access to an outbox item's objects for one address.
type Share struct {
	OutboxID int64
	Address  string
	State    string // SharePending or ShareDone
	Error    string // why the last grant failed
	Created  time.Time
}

// NewOutboxItem is what Enqueue needs to know of a submission.
type NewOutboxItem struct {
	SubmissionID int64
	SHA256       string
	Kind         string
	Records      int64
	Size         int64
	JSONLPath    string
	ManifestPath string
	Created      time.Time // the submission's time; its year and month name the objects
}

// ObjectNames are the Greenfield object names of a submission (DESIGN §5):
// <kind>/<yyyy>/<mm>/<sha256>.jsonl and the .manifest.json beside it. The month is UTC.
func ObjectNames(kind, sha256 string, created time.Time) (object, manifest string) {
	prefix := fmt.Sprintf("%s/%04d/%02d/%s", kind, created.UTC().Year(), int(created.UTC().Month()), sha256)
	return prefix + ".jsonl", prefix + ".manifest.json"
}

// Enqueue queues a submission for upload and returns its outbox item. Queuing the same
// submission again returns the item it already has.
func (s *Store) Enqueue(ctx context.Context, n NewOutboxItem) (OutboxItem, error) {
	if err := enqueue(ctx, s.db, n); err != nil {
		return OutboxItem{}, err
	}
	it, err := s.outboxWhere(ctx, "submission_id = ?", n.SubmissionID)
	if err != nil {
		return OutboxItem{}, fmt.Errorf("queue submission %d: %w", n.SubmissionID, err)
	}
	return it[0], nil
}

// QueueUpload is the SubmissionQueue that queues a submission for upload inside
// SaveSubmission's transaction, so that no submission is recorded without its outbox
// item.
func QueueUpload(sub Submission) SubmissionQueue {
	return func(ctx context.Context, tx *sql.Tx, id int64) error {
		return enqueue(ctx, tx, NewOutboxItem{SubmissionID: id, SHA256: sub.SHA256, Kind: sub.Kind, Records: sub.Records,
			Size: sub.Bytes, JSONLPath: sub.JSONLPath, ManifestPath: sub.ManifestPath, Created: sub.Created})
	}
}

func enqueue(ctx context.Context, db execer, n NewOutboxItem) error {
	if n.SubmissionID <= 0 || n.SHA256 == "" || n.Kind == "" || n.JSONLPath == "" || n.ManifestPath == "" {
		return fmt.Errorf("queue submission %d: submission id, sha256, kind and both files are required", n.SubmissionID)
	}
	if strings.ContainsAny(n.Kind, "/\\") {
		return fmt.Errorf("queue submission %d: kind %q must not contain a slash", n.SubmissionID, n.Kind)
	}
	if n.Created.IsZero() {
		n.Created = time.Now()
	}
	object, manifest := ObjectNames(n.Kind, n.SHA256, n.Created)
	now := time.Now().UnixMilli()
	_, err := db.ExecContext(ctx,
		`INSERT INTO outbox(submission_id, sha256, kind, records, size, jsonl_path, manifest_path,
		                    object, manifest_object, created, updated)
		 VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		 ON CONFLICT(submission_id) DO NOTHING`,
		n.SubmissionID, n.SHA256, n.Kind, n.Records, n.Size, n.JSONLPath, n.ManifestPath, object, manifest, now, now)
	if err != nil {
		return fmt.Errorf("queue submission %d: %w", n.SubmissionID, err)
	}
	return nil
}

const outboxCols = `id, submission_id, sha256, kind, records, size, jsonl_path, manifest_path, bucket,
	object, manifest_object, state, attempts, next_attempt, bytes_sent, speed, error, created, updated, finished`

func (s *Store) outboxWhere(ctx context.Context, where string, args ...any) ([]OutboxItem, error) {
	out, err := queryRows(ctx, s.db, scanOutboxItem, "SELECT "+outboxCols+" FROM outbox WHERE "+where, args...)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, ErrNotFound
	}
	if err := s.attachShares(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

func scanOutboxItem(sc scanner) (OutboxItem, error) {
	var it OutboxItem
	var next, created, updated, finished int64
	if err := sc.Scan(&it.ID, &it.SubmissionID, &it.SHA256, &it.Kind, &it.Records, &it.Size, &it.JSONLPath,
		&it.ManifestPath, &it.Bucket, &it.Object, &it.ManifestObject, &it.State, &it.Attempts, &next,
		&it.BytesSent, &it.Speed, &it.Error, &created, &updated, &finished); err != nil {
		return OutboxItem{}, err
	}
	it.NextAttempt, it.Created, it.Updated, it.Finished = fromMillis(next), fromMillis(created), fromMillis(updated), fromMillis(finished)
	return it, nil
}

func (s *Store) attachShares(ctx context.Context, items []OutboxItem) error {
	byID := make(map[int64]*OutboxItem, len(items))
	for i := range items {
		byID[items[i].ID] = &items[i]
	}
	ids := make([]any, 0, len(items))
	for _, it := range items {
		ids = append(ids, it.ID)
	}
	return eachRow(ctx, s.db, func(sc scanner) error {
		var sh Share
		var created int64
		if err := sc.Scan(&sh.OutboxID, &sh.Address, &sh.State, &sh.Error, &created); err != nil {
			return err
		}
		sh.Created = fromMillis(created)
		if it := byID[sh.OutboxID]; it != nil {
			it.Shares = append(it.Shares, sh)
		}
		return nil
	}, `SELECT outbox_id, address, state, error, created FROM outbox_shares
		WHERE outbox_id IN (?`+strings.Repeat(", ?", len(ids)-1)+`) ORDER BY created, address`, ids...)
}

// Outbox lists every outbox item with its shares, newest first.
func (s *Store) Outbox(ctx context.Context) ([]OutboxItem, error) {
	items, err := s.outboxWhere(ctx, "1 ORDER BY created DESC, id DESC")
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return items, nil
}

// OutboxItem returns one outbox item, or ErrNotFound.
func (s *Store) OutboxItem(ctx context.Context, id int64) (OutboxItem, error) {
	return s.outboxOne(ctx, fmt.Sprintf("outbox item %d", id), "id = ?", id)
}

// OutboxBySubmission returns the outbox item of a submission, or ErrNotFound.
func (s *Store) OutboxBySubmission(ctx context.Context, submissionID int64) (OutboxItem, error) {
	return s.outboxOne(ctx, fmt.Sprintf("outbox item of submission %d", submissionID), "submission_id = ?", submissionID)
}

func (s *Store) outboxOne(ctx context.Context, what, where string, arg any) (OutboxItem, error) {
	items, err := s.outboxWhere(ctx, where, arg)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return OutboxItem{}, fmt.Errorf("%s: %w", what, ErrNotFound)
		}
		return OutboxItem{}, fmt.Errorf("read %s: %w", what, err)
	}
	return items[0], nil
}

// NextUpload returns the oldest item the uploader should work on at now: one left
// uploading or sealing (a process that stopped or died mid-upload), else a queued one
// whose next attempt is due. It also returns when the next queued item falls due (zero
// when none waits). ok is false when nothing is due now.
func (s *Store) NextUpload(ctx context.Context, now time.Time) (it OutboxItem, ok bool, next time.Time, err error) {
	items, err := s.outboxWhere(ctx,
		`state IN ('uploading', 'sealing') OR (state = 'queued' AND next_attempt <= ?)
		 ORDER BY state = 'queued', created, id LIMIT 1`, now.UnixMilli())
	switch {
	case err == nil:
		return items[0], true, time.Time{}, nil
	case !errors.Is(err, ErrNotFound):
		return OutboxItem{}, false, time.Time{}, fmt.Errorf("read outbox: %w", err)
	}
	var ms sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MIN(next_attempt) FROM outbox WHERE state = 'queued'`).Scan(&ms); err != nil {
		return OutboxItem{}, false, time.Time{}, fmt.Errorf("read outbox: %w", err)
	}
	if ms.Valid {
		next = time.UnixMilli(ms.Int64)
	}
	return OutboxItem{}, false, next, nil
}

func (s *Store) updateOutbox(ctx context.Context, id int64, action, set string, args ...any) error {
	args = append(append([]any{time.Now().UnixMilli()}, args...), id)
	res, err := s.db.ExecContext(ctx, "UPDATE outbox SET updated = ?, "+set+" WHERE id = ?", args...)
	if err != nil {
		return fmt.Errorf("%s outbox item %d: %w", action, id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%s outbox item %d: %w", action, id, ErrNotFound)
	}
	return nil
}

// SetUploadState moves an item to uploading or sealing.
func (s *Store) SetUploadState(ctx context.Context, id int64, state string) error {
	if state != OutboxUploading && state != OutboxSealing {
		return fmt.Errorf("set state of outbox item %d: %q is not uploading or sealing", id, state)
	}
	return s.updateOutbox(ctx, id, "set state of", "state = ?", state)
}

// SetUploadBucket records the bucket an item goes to.
func (s *Store) SetUploadBucket(ctx context.Context, id int64, bucket string) error {
	return s.updateOutbox(ctx, id, "set bucket of", "bucket = ?", bucket)
}

// SetUploadProgress records how much of an item's payload was sent and how fast.
func (s *Store) SetUploadProgress(ctx context.Context, id int64, sent int64, speed float64) error {
	return s.updateOutbox(ctx, id, "record progress of", "bytes_sent = ?, speed = ?", sent, speed)
}

// UploadFailed records a failed attempt: the item waits in queued until next, or, when
// final, stops in failed.
func (s *Store) UploadFailed(ctx context.Context, id int64, errText string, next time.Time, final bool) error {
	state := OutboxQueued
	if final {
		state = OutboxFailed
	}
	return s.updateOutbox(ctx, id, "record failure of",
		"state = ?, attempts = attempts + 1, next_attempt = ?, error = ?", state, millis(next), errText)
}

// UploadDone marks an item uploaded, sealed, tagged and its manifest beside it.
func (s *Store) UploadDone(ctx context.Context, id int64) error {
	now := time.Now().UnixMilli()
	return s.updateOutbox(ctx, id, "finish", "state = 'done', error = '', finished = ?, bytes_sent = size", now)
}

// RetryUpload queues a failed (or waiting) item for an attempt now, with a fresh count of
// attempts. A done item stays done.
func (s *Store) RetryUpload(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx,
		`UPDATE outbox SET state = 'queued', attempts = 0, next_attempt = 0, updated = ?
		 WHERE id = ? AND state IN ('queued', 'failed')`, time.Now().UnixMilli(), id)
	if err != nil {
		return fmt.Errorf("retry outbox item %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := s.OutboxItem(ctx, id); err != nil {
			return fmt.Errorf("retry: %w", err)
		}
	}
	return nil
}

// AddShare records that address may read an item's objects. A share already granted
// stays granted.
func (s *Store) AddShare(ctx context.Context, outboxID int64, address string) error {
	now := time.Now().UnixMilli()
	if _, err := s.db.ExecContext(ctx,
		`INSERT INTO outbox_shares(outbox_id, address, created, updated) VALUES(?, ?, ?, ?)
		 ON CONFLICT(outbox_id, address) DO NOTHING`, outboxID, address, now, now); err != nil {
		return fmt.Errorf("share outbox item %d with %s: %w", outboxID, address, err)
	}
	return nil
}

// SetShareResult records the outcome of a grant: done when errText is "", else the share
// stays pending with the error.
func (s *Store) SetShareResult(ctx context.Context, outboxID int64, address, errText string) error {
	state := ShareDone
	if errText != "" {
		state = SharePending
	}
	if _, err := s.db.ExecContext(ctx,
		`UPDATE outbox_shares SET state = ?, error = ?, updated = ? WHERE outbox_id = ? AND address = ?`,
		state, errText, time.Now().UnixMilli(), outboxID, address); err != nil {
		return fmt.Errorf("record share of outbox item %d with %s: %w", outboxID, address, err)
	}
	return nil
}
