package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

const (
	walletA = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
	walletB = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"
)

func testSubmission(sha, submitter string, nonce uint64) Submission {
	return Submission{Kind: "chat", SHA256: sha, Records: 2, Bytes: 100, Created: time.Unix(1767225600, 0), Nonce: nonce,
		Submitter: submitter, ChainID: 5600, Manifest: []byte(`{"schema":"gata.submission/v1"}`),
		JSONLPath: "/data/submissions/" + sha + ".jsonl", ManifestPath: "/data/submissions/" + sha + ".manifest.json"}
}

func TestTakeNonce(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	for i, want := range []uint64{1, 2, 3} {
		if n, err := s.TakeNonce(ctx, walletA); err != nil || n != want {
			t.Fatalf("TakeNonce #%d = %d, %v; want %d", i, n, err, want)
		}
	}
	if n, err := s.TakeNonce(ctx, walletB); err != nil || n != 1 {
		t.Errorf("TakeNonce of another wallet = %d, %v; want 1", n, err)
	}
	if _, err := s.TakeNonce(ctx, ""); err == nil {
		t.Errorf("TakeNonce(\"\") = nil error")
	}
}

// Nonces taken at the same time by several connections are all different.
func TestTakeNonceConcurrent(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10 {
				n, err := s.TakeNonce(ctx, walletA)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[n] {
					t.Errorf("nonce %d given out twice", n)
				}
				seen[n] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 80 {
		t.Errorf("%d distinct nonces, want 80", len(seen))
	}
}

func TestSaveSubmission(t *testing.T) {
	s, path := openTemp(t)
	ctx := context.Background()
	n, _ := s.TakeNonce(ctx, walletA)
	sub := testSubmission("aa", walletA, n)
	id, err := s.SaveSubmission(ctx, sub, []string{"b1", "b2"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Submission(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	sub.ID, sub.Recorded = id, got.Recorded
	if got.Recorded.IsZero() || fmt.Sprint(got) != fmt.Sprint(sub) {
		t.Errorf("Submission(%d) = %+v, want %+v", id, got, sub)
	}
	items, err := s.SubmittedItems(ctx, "chat")
	if err != nil || len(items) != 2 || !items["b1"] || !items["b2"] {
		t.Errorf("SubmittedItems = %v, %v", items, err)
	}
	if dva, _ := s.SubmittedItems(ctx, "dva"); len(dva) != 0 {
		t.Errorf("SubmittedItems(dva) = %v", dva)
	}

	// survives a reopen
	s.Close()
	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	list, err := s2.Submissions(ctx, 10)
	if err != nil || len(list) != 1 || list[0].SHA256 != "aa" {
		t.Fatalf("Submissions after reopen = %+v, %v", list, err)
	}
	if _, err := s2.Submission(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("Submission(999) = %v, want ErrNotFound", err)
	}
	if n, _ := s2.TakeNonce(ctx, walletA); n != 2 {
		t.Errorf("TakeNonce after reopen = %d, want 2", n)
	}
}

func TestSaveSubmissionRefuses(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	n1, _ := s.TakeNonce(ctx, walletA)
	n2, _ := s.TakeNonce(ctx, walletA)
	if _, err := s.SaveSubmission(ctx, testSubmission("aa", walletA, n1), []string{"b1"}, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		sub   Submission
		items []string
		want  error
	}{
		{"replayed nonce", testSubmission("bb", walletA, n1), nil, ErrNonceNotTaken},
		{"nonce never taken", testSubmission("bb", walletA, n2+1), nil, ErrNonceNotTaken},
		{"nonce 0", testSubmission("bb", walletA, 0), nil, ErrNonceNotTaken},
		{"wallet without nonces", testSubmission("bb", walletB, 1), nil, ErrNonceNotTaken},
		{"item submitted before", testSubmission("bb", walletA, n2), []string{"b2", "b1"}, ErrAlreadySubmitted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.SaveSubmission(ctx, tt.sub, tt.items, nil); !errors.Is(err, tt.want) {
				t.Errorf("SaveSubmission = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := s.SaveSubmission(ctx, testSubmission("aa", walletA, n2), nil, nil); err == nil {
		t.Errorf("SaveSubmission of the same sha256 again = nil error")
	}
	bad := testSubmission("cc", walletA, n2)
	bad.JSONLPath = ""
	if _, err := s.SaveSubmission(ctx, bad, nil, nil); err == nil {
		t.Errorf("SaveSubmission without a path = nil error")
	}
	// nothing of the refused calls was kept: b2 is free, n2 still usable
	if items, _ := s.SubmittedItems(ctx, "chat"); len(items) != 1 {
		t.Errorf("SubmittedItems after refusals = %v, want only b1", items)
	}
	if _, err := s.SaveSubmission(ctx, testSubmission("bb", walletA, n2), []string{"b2"}, nil); err != nil {
		t.Errorf("SaveSubmission with the second nonce: %v", err)
	}
}

// The queue runs in the submission's transaction: when it fails, nothing is recorded.
func TestSaveSubmissionQueue(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	if _, err := s.DB().ExecContext(ctx, `CREATE TABLE test_queue (submission_id INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	n, _ := s.TakeNonce(ctx, walletA)
	boom := errors.New("boom")
	_, err := s.SaveSubmission(ctx, testSubmission("aa", walletA, n), []string{"b1"}, func(ctx context.Context, tx *sql.Tx, id int64) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO test_queue VALUES (?)`, id); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("SaveSubmission with a failing queue = %v, want boom", err)
	}
	var rows int
	s.DB().QueryRowContext(ctx, `SELECT (SELECT count(*) FROM submissions) + (SELECT count(*) FROM submission_items) + (SELECT count(*) FROM test_queue)`).Scan(&rows)
	if rows != 0 {
		t.Fatalf("%d rows kept after a failed queue, want 0", rows)
	}
	id, err := s.SaveSubmission(ctx, testSubmission("aa", walletA, n), []string{"b1"}, func(ctx context.Context, tx *sql.Tx, id int64) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO test_queue VALUES (?)`, id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var queued int64
	if err := s.DB().QueryRowContext(ctx, `SELECT submission_id FROM test_queue`).Scan(&queued); err != nil || queued != id {
		t.Errorf("queued %d, %v; want %d", queued, err, id)
	}
}

func TestSubmissionsOrder(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	for i := range 3 {
		n, _ := s.TakeNonce(ctx, walletA)
		if _, err := s.SaveSubmission(ctx, testSubmission(fmt.Sprint(i), walletA, n), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.Submissions(ctx, 2)
	if err != nil || len(list) != 2 || list[0].SHA256 != "2" || list[1].SHA256 != "1" {
		t.Errorf("Submissions(2) = %+v, %v; want the newest two", list, err)
	}
}
