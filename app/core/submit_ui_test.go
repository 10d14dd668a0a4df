package core

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
)

// closedRPC is an RPC endpoint on a loopback port nothing listens on.
func closedRPC(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestUpload(t *testing.T) {
	ctx := context.Background()
	c, st, _ := newWalletCore(t)
	id := submitted(t, c, st, "b-1")
	it, err := c.Upload(ctx, id)
	if err != nil || it.SubmissionID != id || it.State != "queued" || it.Size == 0 {
		t.Errorf("Upload(%d) = %+v, %v; want the queued upload", id, it, err)
	}
	if _, err := c.Upload(ctx, id+100); !errors.Is(err, ErrNoUpload) {
		t.Errorf("Upload of a missing submission = %v, want ErrNoUpload", err)
	}
}

func TestAccount(t *testing.T) {
	ctx := context.Background()
	c, _, _ := newWalletCore(t)
	a := c.Account(ctx)
	if a.Network.Name != "mainnet" || a.EVMChainID != 1017 || a.Address != "" || a.Status != nil || !strings.Contains(a.Error, ErrNoWallet.Error()) {
		t.Errorf("Account without a wallet = %+v; want mainnet and why there is no account", a)
	}
	if _, err := c.ImportWallet(ctx, WalletImport{Mnemonic: testMnemonic}); err != nil {
		t.Fatal(err)
	}
	rpc := closedRPC(t)
	if _, err := c.UpdateSettings(ctx, map[string]string{SettingGreenfieldNetwork: "custom", SettingGreenfieldChainID: "greenfield_9000-121", SettingGreenfieldRPC: rpc}); err != nil {
		t.Fatal(err)
	}
	a = c.Account(ctx)
	if a.Network.ChainID != "greenfield_9000-121" || a.Network.RPC != rpc || a.EVMChainID != 9000 || a.Address != testAddress ||
		a.Bucket != "gata-"+strings.ToLower(testAddress[2:]) || a.Status != nil {
		t.Errorf("Account on an unreachable network = %+v", a)
	}
	if !strings.Contains(a.Error, "connect to Greenfield") || !strings.Contains(a.Error, rpc) || strings.Contains(a.Error, "\n") {
		t.Errorf("Account error = %q, want the failed connection in one line", a.Error)
	}
	if _, err := c.UpdateSettings(ctx, map[string]string{SettingGreenfieldRPC: ""}); err != nil {
		t.Fatal(err)
	}
	if a = c.Account(ctx); !strings.Contains(a.NetworkError, "needs a chain id and an RPC endpoint") || a.Address != "" {
		t.Errorf("Account of a custom network without an RPC = %+v", a)
	}
}
