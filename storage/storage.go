// Package storage keeps the app's durable state: the SQLite database (settings, jobs,
// and the records later parts add) with embedded numbered migrations, and, in later
// parts, the wallet, signed submissions and the Greenfield outbox.
package storage

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// DBName is the database file's name inside the data dir.
const DBName = "gata.db"

// Store is the app's SQLite database.
type Store struct {
	db   *sql.DB
	path string
}

// Open opens (creating if needed) the database file at path, switches it to WAL with a
// busy timeout, and applies the migrations it has not seen yet.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create database folder: %w", err)
	}
	dsn := "file:" + path + "?_journal_mode=WAL&_busy_timeout=5000&_foreign_keys=on&_synchronous=NORMAL&_txlock=immediate"
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database %q: %w", path, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %q: %w", path, err)
	}
	s := &Store{db: db, path: path}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Path is the database file's path.
func (s *Store) Path() string { return s.path }

// DB exposes the handle for the packages that keep their own tables in this database.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

type migration struct {
	version int
	name    string
	sql     string
}

func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %q: name must start with a positive number and '_'", e.Name())
		}
		b, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration %q: %w", e.Name(), err)
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %q: expected number %d", m.name, i+1)
		}
	}
	return ms, nil
}

// SchemaVersion is the number of the last migration applied.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// LatestSchemaVersion is the number of the last migration this binary knows.
func (s *Store) LatestSchemaVersion() int { return LatestSchemaVersion() }

// LatestSchemaVersion is the number of the last migration this binary knows.
func LatestSchemaVersion() int {
	ms, err := migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	cur, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if cur > len(ms) {
		return fmt.Errorf("database %q has schema version %d, newer than this app knows (%d): update the app", s.path, cur, len(ms))
	}
	for _, m := range ms[cur:] {
		// BEGIN IMMEDIATE (the DSN's _txlock) takes the write lock, so the version read
		// inside the transaction is final: another process opening the same file at the same
		// time waits here and then skips what this one applied.
		action := "apply migration " + m.name
		err := s.withTx(ctx, action, func(tx *sql.Tx) error {
			var v int
			if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
				return fmt.Errorf("%s: %w", action, err)
			}
			if v >= m.version {
				return nil // applied by another process meanwhile
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("%s: %w", action, err)
			}
			if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.version)); err != nil {
				return fmt.Errorf("%s: %w", action, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// ErrNotFound is returned when a record does not exist.
var ErrNotFound = errors.New("not found")

// Setting returns the stored value of a setting, or ErrNotFound.
func (s *Store) Setting(ctx context.Context, key string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, "SELECT value FROM settings WHERE key = ?", key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("read setting %q: %w", key, err)
	}
	return v, nil
}

// Settings returns every stored setting.
func (s *Store) Settings(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	err := eachRow(ctx, s.db, func(sc scanner) error {
		var k, v string
		if err := sc.Scan(&k, &v); err != nil {
			return err
		}
		out[k] = v
		return nil
	}, "SELECT key, value FROM settings")
	if err != nil {
		return nil, fmt.Errorf("read settings: %w", err)
	}
	return out, nil
}

// SetSettings stores several settings in one transaction.
func (s *Store) SetSettings(ctx context.Context, kv map[string]string) error {
	return s.withTx(ctx, "write settings", func(tx *sql.Tx) error {
		now := time.Now().Unix()
		for k, v := range kv {
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO settings(key, value, updated) VALUES(?, ?, ?)
				 ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated = excluded.updated`, k, v, now); err != nil {
				return fmt.Errorf("write setting %q: %w", k, err)
			}
		}
		return nil
	})
}

// IntegrityCheck runs SQLite's quick_check and returns its findings ("ok" when healthy).
func (s *Store) IntegrityCheck(ctx context.Context) ([]string, error) {
	out, err := queryRows(ctx, s.db, scanString, "PRAGMA quick_check")
	if err != nil {
		return nil, fmt.Errorf("check database: %w", err)
	}
	return out, nil
}

// JobRecord is a finished job as the history keeps it.
type JobRecord struct {
	ID       string
	Kind     string
	Title    string
	State    string
	Message  string
	Started  time.Time
	Finished time.Time
}

// RecordJob stores a finished job in the history.
func (s *Store) RecordJob(ctx context.Context, j JobRecord) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT OR REPLACE INTO jobs(id, kind, title, state, message, started, finished) VALUES(?, ?, ?, ?, ?, ?, ?)`,
		j.ID, j.Kind, j.Title, j.State, j.Message, j.Started.UnixMilli(), j.Finished.UnixMilli())
	if err != nil {
		return fmt.Errorf("record job %s: %w", j.ID, err)
	}
	return nil
}

// RecentJobs returns up to limit finished jobs, newest first.
func (s *Store) RecentJobs(ctx context.Context, limit int) ([]JobRecord, error) {
	out, err := queryRows(ctx, s.db, func(sc scanner) (JobRecord, error) {
		var j JobRecord
		var st, fin int64
		if err := sc.Scan(&j.ID, &j.Kind, &j.Title, &j.State, &j.Message, &st, &fin); err != nil {
			return JobRecord{}, err
		}
		j.Started, j.Finished = time.UnixMilli(st), time.UnixMilli(fin)
		return j, nil
	}, `SELECT id, kind, title, state, message, started, finished FROM jobs ORDER BY finished DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("read job history: %w", err)
	}
	return out, nil
}
