package storage

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", DBName)
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestOpenCreatesWALDatabaseAtLatestSchema(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file not created: %v", err)
	}
	var mode string
	if err := s.DB().QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
	var busy int
	if err := s.DB().QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy); err != nil {
		t.Fatal(err)
	}
	if busy != 5000 {
		t.Errorf("busy_timeout = %d, want 5000", busy)
	}
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v != LatestSchemaVersion() || v < 1 {
		t.Errorf("SchemaVersion() = %d, want %d", v, LatestSchemaVersion())
	}
	check, err := s.IntegrityCheck(ctx)
	if err != nil || len(check) != 1 || check[0] != "ok" {
		t.Errorf("IntegrityCheck() = %v, %v; want [ok]", check, err)
	}
}

func TestSettingsPersistAcrossReopen(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	if _, err := s.Setting(ctx, "ui.theme"); err != ErrNotFound {
		t.Fatalf("Setting(missing) err = %v, want ErrNotFound", err)
	}
	if err := s.SetSettings(ctx, map[string]string{"ui.theme": "dark", "log.level": "debug"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSettings(ctx, map[string]string{"ui.theme": "light"}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	all, err := s2.Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"ui.theme": "light", "log.level": "debug"}
	for k, v := range want {
		if all[k] != v {
			t.Errorf("Settings()[%q] = %q, want %q", k, all[k], v)
		}
	}
	if len(all) != len(want) {
		t.Errorf("Settings() has %d entries, want %d: %v", len(all), len(want), all)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	if _, err := s.DB().ExecContext(ctx, "PRAGMA user_version = 999"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := Open(ctx, path)
	if err == nil || !strings.Contains(err.Error(), "newer than this app knows") {
		t.Fatalf("Open(newer schema) err = %v, want a 'newer than this app knows' error", err)
	}
}

func TestOpenRejectsNonDatabaseFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), DBName)
	if err := os.WriteFile(path, []byte(strings.Repeat("not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), path); err == nil {
		t.Fatal("Open(garbage file) succeeded, want an error")
	}
}

func TestJobHistory(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	base := time.UnixMilli(1_700_000_000_000)
	for i, st := range []string{"done", "failed", "cancelled"} {
		j := JobRecord{ID: string(rune('a' + i)), Kind: "check", Title: "Check", State: st,
			Started: base, Finished: base.Add(time.Duration(i) * time.Second)}
		if err := s.RecordJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.RecentJobs(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].State != "cancelled" || got[1].State != "failed" {
		t.Fatalf("RecentJobs(2) = %+v, want cancelled then failed", got)
	}
	if !got[0].Finished.Equal(base.Add(2 * time.Second)) {
		t.Errorf("Finished = %v, want %v", got[0].Finished, base.Add(2*time.Second))
	}
}

func TestConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func(i int) {
			var err error
			for k := 0; k < 25 && err == nil; k++ {
				err = s.SetSettings(ctx, map[string]string{"k": string(rune('a' + i))})
			}
			errs <- err
		}(i)
	}
	for i := 0; i < 8; i++ {
		if err := <-errs; err != nil {
			t.Errorf("concurrent SetSettings: %v", err)
		}
	}
}

// Two processes may open a new database file at the same moment (the window and a command
// line run): each must come up at the latest schema, neither applying a migration twice.
func TestOpenConcurrentlyMigratesOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gata.db")
	const n = 6
	errs := make(chan error, n)
	stores := make(chan *Store, n)
	for range n {
		go func() {
			s, err := Open(ctx, path)
			errs <- err
			stores <- s
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Open: %v", err)
		}
		if s := <-stores; s != nil {
			v, err := s.SchemaVersion(ctx)
			if err != nil || v != LatestSchemaVersion() {
				t.Errorf("schema version %d, %v; want %d", v, err, LatestSchemaVersion())
			}
			s.Close()
		}
	}
}
