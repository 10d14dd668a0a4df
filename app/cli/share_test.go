package cli

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/storage"
)

// withCore gives the recorder a real core on a database file in dir.
func withCore(t *testing.T, r *recorder, dir string) {
	r.env.OpenCore = func(ctx context.Context, g Global) (*core.Core, func() error, error) {
		st, err := storage.Open(ctx, filepath.Join(dir, storage.DBName))
		if err != nil {
			return nil, nil, err
		}
		c, err := core.New(core.Options{Version: "test", DataDir: dir, Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			st.Close()
			return nil, nil, err
		}
		return c, func() error { c.Close(); return st.Close() }, nil
	}
}

func TestShareCommands(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"help worker", []string{"help", "worker"}, 0, "--max-temp 80", ""},
		{"help pool", []string{"help", "pool"}, 0, "gata pool invite", ""},
		{"worker without a pool", []string{"worker"}, 2, "", "worker: --pool is required"},
		{"worker with a bad GPU", []string{"worker", "--pool", "127.0.0.1:4222", "--gpu", "one"}, 2, "", `"one" is not a GPU index`},
		{"pool without a dataset", []string{"pool", "--model", "m"}, 2, "", "pool: name at least one --dataset"},
		{"pool keep-top and min-score", []string{"pool", "--dataset", "d", "--keep-top", "0.3", "--min-score", "0.2"}, 2, "", "not both"},
		{"pool listen and nats", []string{"pool", "--dataset", "d", "--listen", "127.0.0.1:0", "--nats", "nats://127.0.0.1:4222"}, 2, "", "--listen or --nats"},
		{"pool status before a pool", []string{"pool", "status"}, 1, "", "no pool has run in this data folder yet"},
		{"invite to a bad address", []string{"pool", "invite", "--addr", "nowhere"}, 1, "", `pool address "nowhere"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecorder()
			withCore(t, r, t.TempDir())
			code := Run(context.Background(), &r.env, tt.args)
			if code != tt.wantCode || !strings.Contains(r.stdout.String(), tt.wantStdout) || !strings.Contains(r.stderr.String(), tt.wantStderr) {
				t.Errorf("Run(%q) = %d, stdout %q, stderr %q; want %d, %q, %q", tt.args, code, r.stdout.String(), r.stderr.String(),
					tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
		})
	}
}

func TestPoolInviteCommand(t *testing.T) {
	dir := t.TempDir()
	r := newRecorder()
	withCore(t, r, dir)
	if code := Run(context.Background(), &r.env, []string{"pool", "invite", "--name", "alice", "--addr", "pool.example.org:4222", "--json"}); code != 0 {
		t.Fatalf("pool invite = %d, stderr %q", code, r.stderr.String())
	}
	var inv core.Invite
	if err := json.Unmarshal(r.stdout.Bytes(), &inv); err != nil {
		t.Fatalf("pool invite --json printed %q: %v", r.stdout.String(), err)
	}
	if inv.Name != "alice" || !strings.HasPrefix(inv.Token, "gw_") || inv.URL != "nats://"+inv.Token+"@pool.example.org:4222" {
		t.Errorf("invite = %+v", inv)
	}
	r = newRecorder()
	withCore(t, r, dir)
	if code := Run(context.Background(), &r.env, []string{"pool", "invite"}); code != 0 || !strings.Contains(r.stdout.String(), "gata worker --pool nats://gw_") {
		t.Errorf("pool invite = %d, stdout %q", code, r.stdout.String())
	}
}
