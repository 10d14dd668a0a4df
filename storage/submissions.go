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

var (
	// ErrAlreadySubmitted is returned by SaveSubmission when an item it carries was
	// submitted before.
	ErrAlreadySubmitted = errors.New("item submitted already")
	// ErrNonceNotTaken is returned by SaveSubmission for a nonce TakeNonce never gave
	// out for that wallet, or one a submission used already.
	ErrNonceNotTaken = errors.New("nonce not taken from this wallet's counter, or used already")
)

// Submission is a signed submission as recorded: the manifest's fields, the manifest
// itself and where both files are.
type Submission struct {
	ID           int64
	Kind         string
	SHA256       string // hex sha256 of the JSONL file
	Records      int64
	Bytes        int64
	Created      time.Time // whole seconds, as the manifest signs it
	Nonce        uint64
	Submitter    string // EIP-55 address
	ChainID      uint64
	Manifest     json.RawMessage // the manifest file's content
	JSONLPath    string
	ManifestPath string
	Recorded     time.Time // set by SaveSubmission
}

// SubmissionQueue runs inside SaveSubmission's transaction with the new submission's
// id: the outbox puts the submission's upload row in there, so that a submission is
// never recorded without being queued (nor queued without being recorded).
type SubmissionQueue func(ctx context.Context, tx *sql.Tx, id int64) error

// TakeNonce gives out the wallet's next nonce (1 for a wallet never seen) and moves its
// counter on, so the nonce is never given out again, even when what it was taken for
// is not saved (a dry run, a crash before SaveSubmission).
func (s *Store) TakeNonce(ctx context.Context, address string) (uint64, error) {
	if address == "" {
		return 0, errors.New("take nonce: no wallet address")
	}
	var n int64
	err := s.db.QueryRowContext(ctx,
		`INSERT INTO wallet_nonces(address, next, updated) VALUES(?, 2, ?)
		 ON CONFLICT(address) DO UPDATE SET next = next + 1, updated = excluded.updated
		 RETURNING next - 1`, address, time.Now().UnixMilli()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("take nonce of %s: %w", address, err)
	}
	return uint64(n), nil
}

// SaveSubmission records a signed submission and marks items (of sub.Kind) submitted,
// in one transaction with queue (nil: none). The nonce must have come from TakeNonce
// for sub.Submitter and not be used by another submission (ErrNonceNotTaken); an item
// submitted before fails the whole call with ErrAlreadySubmitted. It returns the id.
func (s *Store) SaveSubmission(ctx context.Context, sub Submission, items []string, queue SubmissionQueue) (int64, error) {
	action := fmt.Sprintf("record submission %s", sub.SHA256)
	fail := func(err error) error { return fmt.Errorf("%s: %w", action, err) }
	if sub.Kind == "" || sub.SHA256 == "" || sub.Submitter == "" || sub.JSONLPath == "" || sub.ManifestPath == "" || len(sub.Manifest) == 0 {
		return 0, fail(errors.New("kind, sha256, submitter, manifest and both paths are required"))
	}
	var id int64
	err := s.withTx(ctx, action, func(tx *sql.Tx) error {
		var next int64
		err := tx.QueryRowContext(ctx, `SELECT next FROM wallet_nonces WHERE address = ?`, sub.Submitter).Scan(&next)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && sub.Nonce >= uint64(next)) || sub.Nonce == 0 {
			return fail(fmt.Errorf("nonce %d of %s: %w", sub.Nonce, sub.Submitter, ErrNonceNotTaken))
		}
		if err != nil {
			return fail(err)
		}
		now := time.Now()
		res, err := tx.ExecContext(ctx,
			`INSERT INTO submissions(kind, sha256, records, bytes, created, nonce, submitter, chain_id, manifest,
			                         jsonl_path, manifest_path, recorded)
			 VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			sub.Kind, sub.SHA256, sub.Records, sub.Bytes, sub.Created.Unix(), int64(sub.Nonce), sub.Submitter, int64(sub.ChainID),
			string(sub.Manifest), sub.JSONLPath, sub.ManifestPath, now.UnixMilli())
		if err != nil {
			if strings.Contains(err.Error(), "submissions.submitter") {
				return fail(fmt.Errorf("nonce %d of %s: %w", sub.Nonce, sub.Submitter, ErrNonceNotTaken))
			}
			return fail(err)
		}
		if id, err = res.LastInsertId(); err != nil {
			return fail(err)
		}
		for _, it := range items {
			if _, err := tx.ExecContext(ctx, `INSERT INTO submission_items(kind, item, submission_id) VALUES(?, ?, ?)`, sub.Kind, it, id); err != nil {
				if strings.Contains(err.Error(), "UNIQUE") {
					return fail(fmt.Errorf("%s %q: %w", sub.Kind, it, ErrAlreadySubmitted))
				}
				return fail(err)
			}
		}
		if queue != nil {
			if err := queue(ctx, tx, id); err != nil {
				return fail(fmt.Errorf("queue for upload: %w", err))
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return id, nil
}

// SubmittedItems returns the items of kind that a recorded submission carries.
func (s *Store) SubmittedItems(ctx context.Context, kind string) (map[string]bool, error) {
	out := map[string]bool{}
	err := eachRow(ctx, s.db, func(sc scanner) error {
		var it string
		if err := sc.Scan(&it); err != nil {
			return err
		}
		out[it] = true
		return nil
	}, `SELECT item FROM submission_items WHERE kind = ?`, kind)
	if err != nil {
		return nil, fmt.Errorf("read submitted %s items: %w", kind, err)
	}
	return out, nil
}

const submissionCols = `id, kind, sha256, records, bytes, created, nonce, submitter, chain_id, manifest, jsonl_path, manifest_path, recorded`

func scanSubmission(sc scanner) (Submission, error) {
	var sub Submission
	var created, nonce, chain, recorded int64
	var manifest string
	if err := sc.Scan(&sub.ID, &sub.Kind, &sub.SHA256, &sub.Records, &sub.Bytes, &created, &nonce, &sub.Submitter, &chain,
		&manifest, &sub.JSONLPath, &sub.ManifestPath, &recorded); err != nil {
		return Submission{}, err
	}
	sub.Created, sub.Nonce, sub.ChainID = time.Unix(created, 0), uint64(nonce), uint64(chain)
	sub.Manifest, sub.Recorded = json.RawMessage(manifest), fromMillis(recorded)
	return sub, nil
}

// Submission returns one recorded submission, or an error wrapping ErrNotFound.
func (s *Store) Submission(ctx context.Context, id int64) (Submission, error) {
	sub, err := scanSubmission(s.db.QueryRowContext(ctx, `SELECT `+submissionCols+` FROM submissions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Submission{}, fmt.Errorf("read submission %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Submission{}, fmt.Errorf("read submission %d: %w", id, err)
	}
	return sub, nil
}

// Submissions returns up to limit recorded submissions, newest first.
func (s *Store) Submissions(ctx context.Context, limit int) ([]Submission, error) {
	out, err := queryRows(ctx, s.db, scanSubmission, `SELECT `+submissionCols+` FROM submissions ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("read submissions: %w", err)
	}
	return out, nil
}
