package storage

import (
	"context"
	"fmt"
	"time"
)

// Lease is who holds a lease and until when.
type Lease struct {
	Name    string
	Holder  string
	Expires time.Time
}

// TakeLease gives the lease name to holder until now+ttl when it is free, expired, or
// holder's already (a renewal). It returns the lease as it stands after: held by holder
// when ok, else by the other process that holds it.
func (s *Store) TakeLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (l Lease, ok bool, err error) {
	_, err = s.db.ExecContext(ctx, `INSERT INTO leases (name, holder, expires) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires
		WHERE leases.holder = excluded.holder OR leases.expires <= ?`,
		name, holder, millis(now.Add(ttl)), millis(now))
	if err != nil {
		return Lease{}, false, fmt.Errorf("take lease %s: %w", name, err)
	}
	var exp int64
	l.Name = name
	if err := s.db.QueryRowContext(ctx, `SELECT holder, expires FROM leases WHERE name = ?`, name).Scan(&l.Holder, &exp); err != nil {
		return Lease{}, false, fmt.Errorf("read lease %s: %w", name, err)
	}
	l.Expires = fromMillis(exp)
	return l, l.Holder == holder, nil
}

// ReleaseLease ends holder's lease name, so another process may take it at once. A lease
// holder does not hold is left alone.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM leases WHERE name = ? AND holder = ?`, name, holder); err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}
