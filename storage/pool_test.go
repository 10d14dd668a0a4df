package storage

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
)

func openTestStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), DBName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestPoolLedger walks a group through the ledger on a real database file: cut, a result
// delivered twice, a check by a second worker, the decision, the credits, and a reopen.
func TestPoolLedger(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, DBName)
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	run := newRun(t, s)
	g := PoolGroup{ID: "g1", Run: run, Items: json.RawMessage(`{"items":[{"key":"a"},{"key":"b"}]}`)}
	j0 := PoolJob{ID: "g1-0", Group: "g1", Run: run, Body: json.RawMessage(`{"job":{"id":"g1-0"}}`)}
	if err := s.AddPoolGroup(ctx, g, j0, 12); err != nil {
		t.Fatal(err)
	}
	// The same group again fails whole: the cursor stays.
	if err := s.AddPoolGroup(ctx, g, PoolJob{ID: "g1-x", Group: "g1", Run: run}, 99); err == nil {
		t.Fatal("AddPoolGroup of an existing group succeeded")
	}
	if c, all, err := s.PoolCursor(ctx, run); err != nil || c != 12 || all {
		t.Fatalf("PoolCursor = %d, %v, %v; want 12, false", c, all, err)
	}
	if err := s.SetPoolCursor(ctx, run, 5, false); err != nil { // never backwards
		t.Fatal(err)
	}
	if c, _, _ := s.PoolCursor(ctx, run); c != 12 {
		t.Errorf("cursor moved back to %d", c)
	}
	jobs, err := s.PoolJobs(ctx, run)
	if err != nil || len(jobs) != 1 || jobs[0].State != JobNew {
		t.Fatalf("PoolJobs = %+v, %v", jobs, err)
	}
	if err := s.MarkPoolJobPublished(ctx, "g1-0"); err != nil {
		t.Fatal(err)
	}

	r1 := PoolResult{Job: "g1-0", Worker: "0xA", Group: "g1", Run: run, Credits: 2, Backend: "cpu", ComputeMS: 40, Body: json.RawMessage(`{}`)}
	for i, want := range []bool{true, false} {
		ok, err := s.AddPoolResult(ctx, r1)
		if err != nil || ok != want {
			t.Fatalf("AddPoolResult #%d = %v, %v; want %v", i+1, ok, err, want)
		}
	}
	j1 := PoolJob{ID: "g1-1", Group: "g1", Run: run, Replica: 1, Body: json.RawMessage(`{}`)}
	if err := s.DecidePool(ctx, PoolDecision{Group: "g1", NewJobs: []PoolJob{j1}}); err != nil {
		t.Fatal(err)
	}
	counts, err := s.PoolCounts(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	if counts.Groups != 1 || counts.Jobs != 2 || counts.Pending != 1 || counts.Unanswered != 1 || counts.Verified != 0 {
		t.Errorf("counts before the check = %+v", counts)
	}
	r2 := r1
	r2.Job, r2.Worker = "g1-1", "0xB"
	if _, err := s.AddPoolResult(ctx, r2); err != nil {
		t.Fatal(err)
	}
	r3 := r1
	r3.Job, r3.Worker, r3.Credits = "g1-1", "0xC", 1
	if _, err := s.AddPoolResult(ctx, r3); err != nil {
		t.Fatal(err)
	}
	err = s.DecidePool(ctx, PoolDecision{Group: "g1", Verified: true,
		Verdicts: []PoolVerdict{{Job: "g1-0", Worker: "0xA", State: ResultConfirmed}, {Job: "g1-1", Worker: "0xB", State: ResultConfirmed},
			{Job: "g1-1", Worker: "0xC", State: ResultRejected, Reason: "canary: wrong"}},
		Workers: []PoolWorker{{Address: "0xA", ConsecutiveValid: 1, Valid: 1}, {Address: "0xB", ConsecutiveValid: 1, Valid: 1},
			{Address: "0xC", Invalid: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DecidePool(ctx, PoolDecision{Group: "g1", Verdicts: []PoolVerdict{{Job: "g1-0", Worker: "0xA", State: "maybe"}}}); err == nil {
		t.Error("DecidePool with an unknown state succeeded")
	}
	s.Close()

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	open, err := s.PoolGroups(ctx, run, GroupOpen)
	if err != nil || len(open) != 0 {
		t.Errorf("open groups after the decision = %+v, %v", open, err)
	}
	if jobs, _ := s.PoolJobs(ctx, run); len(jobs) != 0 {
		t.Errorf("PoolJobs lists %d jobs of verified groups", len(jobs))
	}
	credits, err := s.PoolCredits(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][3]int64{"0xA": {0, 2, 0}, "0xB": {0, 2, 0}, "0xC": {0, 0, 1}}
	if len(credits) != 3 {
		t.Fatalf("PoolCredits = %+v", credits)
	}
	for _, c := range credits {
		if w := want[c.Worker]; [3]int64{c.Pending, c.Confirmed, c.Rejected} != w {
			t.Errorf("credits of %s = pending %d confirmed %d rejected %d, want %v", c.Worker, c.Pending, c.Confirmed, c.Rejected, w)
		}
	}
	rej, err := s.PoolRejected(ctx, 10)
	if err != nil || len(rej) != 1 || rej[0].Reason != "canary: wrong" || rej[0].Decided.IsZero() {
		t.Errorf("PoolRejected = %+v, %v", rej, err)
	}
	ws, err := s.PoolWorkers(ctx)
	if err != nil || len(ws) != 3 || ws[2].Invalid != 1 {
		t.Errorf("PoolWorkers = %+v, %v", ws, err)
	}
	counts, _ = s.PoolCounts(ctx, run)
	if counts.Verified != 1 || counts.Confirmed != 2 || counts.Rejected != 1 || counts.ConfirmedWork != 4 || counts.Unanswered != 0 {
		t.Errorf("counts after = %+v", counts)
	}
}

func TestPoolInvitesAndMeta(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	if err := s.AddPoolInvite(ctx, "ABCD", "alice"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		sum  string
		want bool
	}{{"abcd", true}, {"ABCD", true}, {"ffff", false}} {
		if ok, err := s.PoolInviteValid(ctx, tt.sum); err != nil || ok != tt.want {
			t.Errorf("PoolInviteValid(%s) = %v, %v; want %v", tt.sum, ok, err, tt.want)
		}
	}
	if n, err := s.RevokePoolInvite(ctx, "alice"); err != nil || n != 1 {
		t.Errorf("RevokePoolInvite = %d, %v", n, err)
	}
	if ok, _ := s.PoolInviteValid(ctx, "abcd"); ok {
		t.Error("a revoked credential is still valid")
	}
	if v, err := s.PoolMeta(ctx, "url"); err != nil || v != "" {
		t.Errorf("PoolMeta of a missing key = %q, %v", v, err)
	}
	for _, v := range []string{"nats://127.0.0.1:4222", "nats://127.0.0.1:5222"} {
		if err := s.SetPoolMeta(ctx, "url", v); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.PoolMeta(ctx, "url"); got != v {
			t.Errorf("PoolMeta = %q, want %q", got, v)
		}
	}
}
