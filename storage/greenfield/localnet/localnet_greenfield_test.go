//go:build greenfield

package localnet

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestStart brings a network up, checks that it runs on 127.0.0.1 with funded keys, and
// stops it.
func TestStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	n, err := Start(ctx, Options{Log: os.Stderr})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer n.Stop()
	if len(n.Keys) != 2 || len(n.Addrs) != 2 || len(n.SP) != SPs {
		t.Fatalf("Start gave %d keys, %d addresses, %d providers; want 2, 2, %d", len(n.Keys), len(n.Addrs), len(n.SP), SPs)
	}
	for i, k := range n.Keys {
		if len(k) != 64 {
			t.Errorf("key %d = %d hex digits, want 64", i, len(k))
		}
	}
	h, err := n.Height(ctx)
	if err != nil || h <= upgradeHeight {
		t.Errorf("Height = %d, %v; want > %d", h, err, upgradeHeight)
	}
	dir := n.Dir
	if err := n.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("Stop left %s behind (%v)", dir, err)
	}
	if _, err := n.Height(ctx); err == nil {
		t.Errorf("the chain still answers after Stop")
	}
}
