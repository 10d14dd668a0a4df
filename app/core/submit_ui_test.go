package core

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

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
	if a.Network.Name != "mainnet" || a.EVMChainID != 1017 || a.Address != "" || a.Status != nil || a.Error != "no wallet yet" {
		t.Errorf("Account without a wallet = %+v; want mainnet and why there is no account", a)
	}
	if _, err := c.ImportWallet(ctx, WalletImport{Mnemonic: testMnemonic}); err != nil {
		t.Fatal(err)
	}
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // nothing listens on its port now
	rpc := dead.URL
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

func TestUploadItemLabels(t *testing.T) {
	pending := UploadShare{Address: "0xA"}
	for _, tt := range []struct {
		name               string
		it                 UploadItem
		label, errLine, sh string
		waiting, retryable bool
	}{
		{"queued", UploadItem{State: "queued"}, "queued", "", "granted once the upload is done", false, false},
		{"waiting after a failure", UploadItem{State: "queued", Attempts: 2, Error: "dial tcp:\n  refused"}, "retrying", "dial tcp: refused", "granted once the upload is done", true, true},
		{"uploading", UploadItem{State: "uploading", Attempts: 1, Error: "old"}, "uploading", "old", "granted once the upload is done", false, false},
		{"failed", UploadItem{State: "failed", Attempts: 8, Error: "gave up"}, "failed", "gave up", "granted once the upload is done", false, true},
		{"done", UploadItem{State: "done", Error: "an old error"}, "done", "", "not granted yet", false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			it := tt.it
			if got := it.StateLabel(); got != tt.label {
				t.Errorf("StateLabel = %q, want %q", got, tt.label)
			}
			if got := it.ErrorLine(); got != tt.errLine {
				t.Errorf("ErrorLine = %q, want %q", got, tt.errLine)
			}
			if got := it.ShareState(pending); got != tt.sh {
				t.Errorf("ShareState(pending) = %q, want %q", got, tt.sh)
			}
			if it.Waiting() != tt.waiting || it.CanRetry() != tt.retryable {
				t.Errorf("Waiting, CanRetry = %v, %v; want %v, %v", it.Waiting(), it.CanRetry(), tt.waiting, tt.retryable)
			}
			if got := it.ShareState(UploadShare{Granted: true}); got != "can read it" {
				t.Errorf("ShareState(granted) = %q", got)
			}
			if got := it.ShareState(UploadShare{Error: "out of\ngas"}); got != "not granted: out of gas" {
				t.Errorf("ShareState(failed) = %q", got)
			}
		})
	}
}
