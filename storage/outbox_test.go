package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// queued records a submission through SaveSubmission with QueueUpload, the way the core
// does, and returns its outbox item.
func queued(t *testing.T, s *Store, n int) OutboxItem {
	t.Helper()
	ctx := context.Background()
	nonce, err := s.TakeNonce(ctx, walletA)
	if err != nil {
		t.Fatalf("TakeNonce: %v", err)
	}
	sub := testSubmission(fmt.Sprintf("%064x", n), walletA, nonce)
	id, err := s.SaveSubmission(ctx, sub, []string{fmt.Sprintf("battle-%d", n)}, QueueUpload(sub))
	if err != nil {
		t.Fatalf("SaveSubmission: %v", err)
	}
	it, err := s.OutboxBySubmission(ctx, id)
	if err != nil {
		t.Fatalf("OutboxBySubmission(%d): %v", id, err)
	}
	return it
}

func TestObjectNames(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	for _, tt := range []struct {
		name     string
		created  time.Time
		object   string
		manifest string
	}{
		{"utc month", time.Date(2026, 3, 9, 12, 0, 0, 0, time.UTC), "chat/2026/03/" + sha + ".jsonl", "chat/2026/03/" + sha + ".manifest.json"},
		{"local time counts as UTC", time.Date(2026, 1, 1, 0, 30, 0, 0, time.FixedZone("CET", 3600)), "chat/2025/12/" + sha + ".jsonl", "chat/2025/12/" + sha + ".manifest.json"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o, m := ObjectNames("chat", sha, tt.created)
			if o != tt.object || m != tt.manifest {
				t.Errorf("ObjectNames = %q, %q; want %q, %q", o, m, tt.object, tt.manifest)
			}
		})
	}
}

func TestEnqueueInSaveSubmission(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	it := queued(t, s, 1)
	sha := fmt.Sprintf("%064x", 1)
	if it.State != OutboxQueued || it.SHA256 != sha || it.Kind != "chat" || it.Size != 100 || it.Records != 2 ||
		it.Object != "chat/2026/01/"+sha+".jsonl" || it.ManifestObject != "chat/2026/01/"+sha+".manifest.json" ||
		it.JSONLPath != "/data/submissions/"+sha+".jsonl" || it.Attempts != 0 || it.Bucket != "" {
		t.Fatalf("queued item = %+v", it)
	}
	// Queuing the same submission again keeps the one item.
	again, err := s.Enqueue(ctx, NewOutboxItem{SubmissionID: it.SubmissionID, SHA256: sha, Kind: "chat", Size: 100,
		JSONLPath: it.JSONLPath, ManifestPath: it.ManifestPath})
	if err != nil || again.ID != it.ID {
		t.Fatalf("Enqueue again = %d, %v; want item %d", again.ID, err, it.ID)
	}
	all, err := s.Outbox(ctx)
	if err != nil || len(all) != 1 {
		t.Fatalf("Outbox = %d items, %v; want 1", len(all), err)
	}
	// A failing queue rolls the submission back (SaveSubmission's transaction).
	nonce, _ := s.TakeNonce(ctx, walletA)
	bad := testSubmission(fmt.Sprintf("%064x", 2), walletA, nonce)
	bad.Kind = "a/b"
	if _, err := s.SaveSubmission(ctx, bad, nil, QueueUpload(bad)); err == nil {
		t.Fatalf("SaveSubmission with kind %q queued; want an error", bad.Kind)
	}
	if subs, _ := s.Submissions(ctx, 10); len(subs) != 1 {
		t.Errorf("a submission whose queuing failed was recorded: %d submissions", len(subs))
	}
	if _, err := s.OutboxItem(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("OutboxItem(999) = %v, want ErrNotFound", err)
	}
}

func TestOutboxStateMachine(t *testing.T) {
	s, path := openTemp(t)
	ctx := context.Background()
	a, b := queued(t, s, 1), queued(t, s, 2)
	now := time.Now()

	it, ok, _, err := s.NextUpload(ctx, now)
	if err != nil || !ok || it.ID != a.ID {
		t.Fatalf("NextUpload = %d, %v, %v; want the oldest, %d", it.ID, ok, err, a.ID)
	}
	if err := s.SetUploadBucket(ctx, a.ID, "gata-x"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUploadState(ctx, a.ID, OutboxUploading); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUploadProgress(ctx, a.ID, 40, 1000); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUploadState(ctx, a.ID, OutboxDone); err == nil {
		t.Errorf("SetUploadState(done) worked; only uploading and sealing may be set")
	}

	// b fails: it waits in queued until its next attempt, and a (in flight) comes first.
	next := now.Add(time.Minute)
	if err := s.UploadFailed(ctx, b.ID, "network down", next, false); err != nil {
		t.Fatal(err)
	}
	// After a crash the process reopens the file and finds a where it was left.
	s.Close()
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	it, ok, _, err = s.NextUpload(ctx, now)
	if err != nil || !ok || it.ID != a.ID || it.State != OutboxUploading || it.BytesSent != 40 || it.Speed != 1000 || it.Bucket != "gata-x" {
		t.Fatalf("after reopen NextUpload = %+v, %v, %v; want a uploading with its progress", it, ok, err)
	}
	if err := s.UploadDone(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	it, ok, due, err := s.NextUpload(ctx, now)
	if err != nil || ok || !due.Equal(next.Truncate(time.Millisecond)) {
		t.Fatalf("NextUpload with only b waiting = %d, %v, next %v, %v; want none due, next %v", it.ID, ok, due, err, next)
	}
	it, ok, _, _ = s.NextUpload(ctx, next)
	if !ok || it.ID != b.ID || it.Attempts != 1 || it.Error != "network down" {
		t.Fatalf("NextUpload at b's time = %+v, %v; want b after 1 failed attempt", it, ok)
	}
	if err := s.UploadFailed(ctx, b.ID, "still down", time.Time{}, true); err != nil {
		t.Fatal(err)
	}
	if _, ok, due, _ := s.NextUpload(ctx, next.Add(time.Hour)); ok || !due.IsZero() {
		t.Fatalf("a failed item is due (%v, next %v); it waits for RetryUpload", ok, due)
	}
	if err := s.RetryUpload(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	it, ok, _, _ = s.NextUpload(ctx, now)
	if !ok || it.ID != b.ID || it.State != OutboxQueued || it.Attempts != 0 || it.Error != "still down" {
		t.Fatalf("after RetryUpload NextUpload = %+v, %v; want b queued with a fresh count and its last error", it, ok)
	}
	done, _ := s.OutboxItem(ctx, a.ID)
	if done.State != OutboxDone || done.BytesSent != done.Size || done.Finished.IsZero() || done.Error != "" {
		t.Errorf("done item = %+v", done)
	}
	if err := s.RetryUpload(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.OutboxItem(ctx, a.ID); again.State != OutboxDone {
		t.Errorf("RetryUpload moved a done item to %s", again.State)
	}
	if err := s.RetryUpload(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("RetryUpload(999) = %v, want ErrNotFound", err)
	}
}

func TestShares(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	a, b := queued(t, s, 1), queued(t, s, 2)
	for _, sh := range []struct {
		id   int64
		addr string
	}{{a.ID, walletB}, {a.ID, walletA}, {b.ID, walletB}, {a.ID, walletB}} {
		if err := s.AddShare(ctx, sh.id, sh.addr); err != nil {
			t.Fatalf("AddShare(%d, %s): %v", sh.id, sh.addr, err)
		}
	}
	if err := s.SetShareResult(ctx, a.ID, walletB, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.SetShareResult(ctx, b.ID, walletB, "out of gas"); err != nil {
		t.Fatal(err)
	}
	// Adding a granted share again leaves it granted.
	if err := s.AddShare(ctx, a.ID, walletB); err != nil {
		t.Fatal(err)
	}
	items, err := s.Outbox(ctx)
	if err != nil || len(items) != 2 {
		t.Fatalf("Outbox = %d, %v", len(items), err)
	}
	got := map[int64][]string{}
	for _, it := range items {
		for _, sh := range it.Shares {
			got[it.ID] = append(got[it.ID], sh.Address+" "+sh.State+" "+sh.Error)
		}
	}
	want := map[int64][]string{
		a.ID: {walletA + " pending ", walletB + " done "},
		b.ID: {walletB + " pending out of gas"},
	}
	for id, w := range want {
		g := got[id]
		if strings.Join(sortedCopy(g), "|") != strings.Join(sortedCopy(w), "|") {
			t.Errorf("shares of %d = %q, want %q", id, g, w)
		}
	}
	if err := s.AddShare(ctx, 999, walletB); err == nil {
		t.Errorf("AddShare on a missing item worked")
	}
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
