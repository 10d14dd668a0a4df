package localnet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// dbUser and dbPassword are the storage providers' database account.
const (
	dbUser     = "gata"
	dbPassword = "gata"
)

// mariaDB is the database server of the storage providers.
type mariaDB struct {
	addr   string // 127.0.0.1:port
	socket string
}

// startMariaDB makes a data folder with mariadb-install-db and runs Debian's mariadbd
// as the current user on 127.0.0.1 and a socket in Dir; no system service is used.
func (n *Network) startMariaDB(ctx context.Context, port int) (mariaDB, error) {
	dir := filepath.Join(n.Dir, "mariadb")
	db := mariaDB{addr: fmt.Sprintf("127.0.0.1:%d", port), socket: filepath.Join(n.Dir, "mariadb.sock")}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return db, err
	}
	me := currentUser()
	if _, err := n.run(ctx, "", "mariadb-install-db", "--no-defaults", "--datadir="+dir, "--user="+me,
		"--auth-root-authentication-method=normal", "--skip-test-db"); err != nil {
		return db, fmt.Errorf("prepare MariaDB (apt-get install mariadb-server): %w", err)
	}
	p, err := n.spawn("mariadb", n.Dir, "mariadbd", "--no-defaults", "--datadir="+dir, "--user="+me,
		"--bind-address=127.0.0.1", fmt.Sprintf("--port=%d", port), "--socket="+db.socket,
		"--pid-file="+filepath.Join(n.Dir, "mariadb.pid"), "--skip-name-resolve",
		"--innodb-buffer-pool-size=64M", "--max-connections=500")
	if err != nil {
		return db, err
	}
	var sql strings.Builder
	for i := range SPs {
		fmt.Fprintf(&sql, "CREATE DATABASE sp_%d; ", i)
	}
	fmt.Fprintf(&sql, "CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s'; GRANT ALL ON *.* TO '%s'@'127.0.0.1';", dbUser, dbPassword, dbUser)
	ready := false
	err = poll(ctx, time.Minute, 200*time.Millisecond, "wait for MariaDB", func() (bool, error) {
		if err := p.exited(); err != nil {
			return false, fatalError{err}
		}
		if _, err := n.run(ctx, "", "mariadb", "--no-defaults", "--socket="+db.socket, "-uroot", "-e", "SELECT 1"); err != nil {
			return false, err
		}
		ready = true
		return true, nil
	})
	if err != nil || !ready {
		return db, err
	}
	if _, err := n.run(ctx, "", "mariadb", "--no-defaults", "--socket="+db.socket, "-uroot", "-e", sql.String()); err != nil {
		return db, fmt.Errorf("create the providers' databases: %w", err)
	}
	return db, nil
}
