package storage

import (
	"context"
	"database/sql"
	"fmt"
)

// scanner is a row to scan: *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// execer runs a statement: the database or a transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// querier runs a query: the database or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// queryRows runs q and returns its rows as scan makes them, in order. Its errors are the
// query's, scan's or the rows' as they are, for the caller to wrap with its action.
func queryRows[T any](ctx context.Context, db querier, scan func(scanner) (T, error), q string, args ...any) ([]T, error) {
	var out []T
	err := eachRow(ctx, db, func(sc scanner) error {
		v, err := scan(sc)
		if err != nil {
			return err
		}
		out = append(out, v)
		return nil
	}, q, args...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eachRow runs q and calls fn with each row, stopping at fn's first error. The rows are
// closed when it returns. Its errors are the query's, fn's or the rows' as they are.
func eachRow(ctx context.Context, db querier, fn func(scanner) error, q string, args ...any) error {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// withTx runs fn in one transaction, committed when fn returns nil and rolled back
// otherwise. fn's error comes back as is (fn wraps it with its own action); a failed begin
// or commit is wrapped with action.
func (s *Store) withTx(ctx context.Context, action string, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", action, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: %w", action, err)
	}
	return nil
}

// scanString scans a row of one text column.
func scanString(sc scanner) (string, error) {
	var v string
	err := sc.Scan(&v)
	return v, err
}
