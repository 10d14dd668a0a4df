package core

import (
	"context"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gata-contrib/gata/storage"
)

// fakeUploader records what the core asks of the upload service; Share records the
// share the way the real uploader does for an upload not done yet.
type fakeUploader struct {
	st      *storage.Store
	mu      sync.Mutex
	wakes   int
	shares  []string
	fail    error
	blocked storage.Lease
}

func (f *fakeUploader) Wake() { f.mu.Lock(); f.wakes++; f.mu.Unlock() }

func (f *fakeUploader) Active() int64 { return 0 }

func (f *fakeUploader) Blocked() (storage.Lease, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.blocked, f.blocked.Holder != ""
}

func (f *fakeUploader) Share(ctx context.Context, id int64, address string) error {
	f.mu.Lock()
	f.shares = append(f.shares, address)
	fail := f.fail
	f.mu.Unlock()
	if err := f.st.AddShare(ctx, id, address); err != nil {
		return err
	}
	return fail
}

// submitted makes a wallet and one chat submission, and returns its id.
func submitted(t *testing.T, c *Core, st *storage.Store, battle string) int64 {
	t.Helper()
	ctx := context.Background()
	if _, err := c.WalletAddress(ctx); errors.Is(err, ErrNoWallet) {
		if _, err := c.ImportWallet(ctx, WalletImport{Mnemonic: testMnemonic}); err != nil {
			t.Fatal(err)
		}
	}
	storeBattle(t, st, battle, "A", 0.9)
	res, err := c.Submit(ctx, SubmitChat, SubmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res.ID
}

func TestGreenfieldNetworkSettings(t *testing.T) {
	ctx := context.Background()
	c, st, _ := newWalletCore(t)
	for _, tt := range []struct {
		name    string
		set     map[string]string
		chainID string
		evm     uint64
		err     string // of UpdateSettings or, when set applies, of GreenfieldNetwork
	}{
		{"mainnet by default", nil, "greenfield_1017-1", 1017, ""},
		{"testnet", map[string]string{SettingGreenfieldNetwork: "testnet"}, "greenfield_5600-1", 5600, ""},
		{"custom", map[string]string{SettingGreenfieldNetwork: "custom", SettingGreenfieldChainID: "greenfield_9000-121",
			SettingGreenfieldRPC: "http://127.0.0.1:26750"}, "greenfield_9000-121", 9000, ""},
		{"custom needs an RPC", map[string]string{SettingGreenfieldNetwork: "custom", SettingGreenfieldChainID: "greenfield_9000-121",
			SettingGreenfieldRPC: ""}, "", 0, "needs a chain id and an RPC endpoint"},
		{"bad chain id", map[string]string{SettingGreenfieldChainID: "9000"}, "", 0, "not of the form"},
		{"bad RPC", map[string]string{SettingGreenfieldRPC: "127.0.0.1:26750"}, "", 0, "must start with http"},
		{"unknown network", map[string]string{SettingGreenfieldNetwork: "devnet"}, "", 0, "devnet"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.set != nil {
				if _, err := c.UpdateSettings(ctx, tt.set); err != nil {
					if tt.err == "" || !strings.Contains(err.Error(), tt.err) {
						t.Fatalf("UpdateSettings(%v) = %v, want %q", tt.set, err, tt.err)
					}
					return
				}
			}
			n, err := c.GreenfieldNetwork(ctx)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("GreenfieldNetwork = %+v, %v; want %q", n, err, tt.err)
				}
				return
			}
			if err != nil || n.ChainID != tt.chainID {
				t.Fatalf("GreenfieldNetwork = %+v, %v; want chain %s", n, err, tt.chainID)
			}
			if evm, err := c.greenfieldEVMChainID(ctx); err != nil || evm != tt.evm {
				t.Errorf("EVM chain id = %d, %v; want %d", evm, err, tt.evm)
			}
		})
	}
	// Submissions are signed for the configured network.
	if _, err := c.UpdateSettings(ctx, map[string]string{SettingGreenfieldNetwork: "testnet"}); err != nil {
		t.Fatal(err)
	}
	id := submitted(t, c, st, "b-1")
	sub, err := st.Submission(ctx, id)
	if err != nil || sub.ChainID != 5600 {
		t.Errorf("submission on testnet signed for chain %d (%v), want 5600", sub.ChainID, err)
	}
}

func TestOutboxProgressAndRetry(t *testing.T) {
	ctx := context.Background()
	c, st, _ := newWalletCore(t)
	up := &fakeUploader{st: st}
	c.opts.Uploader = up
	id := submitted(t, c, st, "b-1")
	items, err := c.Outbox(ctx)
	if err != nil || len(items) != 1 {
		t.Fatalf("Outbox = %d items, %v; want the new submission", len(items), err)
	}
	it := items[0]
	if it.SubmissionID != id || it.State != storage.OutboxQueued || it.Percent != 0 || it.Kind != SubmitChat ||
		!strings.HasPrefix(it.Object, "chat/") || !strings.HasSuffix(it.ManifestObject, it.SHA256+".manifest.json") {
		t.Fatalf("outbox item = %+v", it)
	}
	ob, _ := st.OutboxBySubmission(ctx, id)
	if err := st.SetUploadState(ctx, ob.ID, storage.OutboxUploading); err != nil {
		t.Fatal(err)
	}
	if err := st.SetUploadProgress(ctx, ob.ID, ob.Size/4, 2048); err != nil {
		t.Fatal(err)
	}
	after := c.LastEventID()
	c.UploadChanged(ob.ID)
	evs, _ := c.Events(after)
	if len(evs) != 1 || evs[0].Type != EventUpload {
		t.Fatalf("UploadChanged published %+v, want one upload event", evs)
	}
	if got := evs[0].Data.(UploadItem); got.State != storage.OutboxUploading || got.Percent != 100*float64(ob.Size/4)/float64(ob.Size) || got.Speed != 2048 {
		t.Errorf("upload event = %+v", got)
	}

	next := time.Now().Add(time.Hour)
	if err := st.UploadFailed(ctx, ob.ID, "no route to host", next, true); err != nil {
		t.Fatal(err)
	}
	items, _ = c.Outbox(ctx)
	if items[0].State != storage.OutboxFailed || items[0].Error != "no route to host" || items[0].Attempts != 1 {
		t.Fatalf("failed item = %+v", items[0])
	}
	got, err := c.RetryUpload(ctx, id)
	if err != nil || got.State != storage.OutboxQueued || got.Attempts != 0 || !got.NextAttempt.IsZero() {
		t.Fatalf("RetryUpload = %+v, %v; want queued now", got, err)
	}
	if up.wakes != 1 {
		t.Errorf("RetryUpload woke the uploader %d times, want 1", up.wakes)
	}
	if _, err := c.RetryUpload(ctx, 999); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("RetryUpload(999) = %v, want ErrNotFound", err)
	}
}

func TestShareSubmission(t *testing.T) {
	ctx := context.Background()
	c, st, _ := newWalletCore(t)
	a := submitted(t, c, st, "b-1")
	submitted(t, c, st, "b-2")
	const reader = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"
	if _, err := c.ShareSubmission(ctx, a, reader); !errors.Is(err, ErrNoUploader) {
		t.Errorf("ShareSubmission without an uploader = %v, want ErrNoUploader", err)
	}
	up := &fakeUploader{st: st}
	c.opts.Uploader = up
	for _, bad := range []string{"", "0x1234", "9858EfFD232B4033E47d90003D41EC34EcaEda94", "0x9858efFD232B4033E47d90003D41EC34EcaEda94"} {
		if _, err := c.ShareSubmission(ctx, a, bad); !errors.Is(err, ErrBadShare) {
			t.Errorf("ShareSubmission(%q) = %v, want ErrBadShare", bad, err)
		}
	}
	if _, err := c.ShareSubmission(ctx, 999, reader); !errors.Is(err, ErrBadShare) {
		t.Errorf("ShareSubmission of a missing submission = %v, want ErrBadShare", err)
	}
	items, err := c.ShareSubmission(ctx, a, strings.ToLower(reader))
	if err != nil || len(items) != 1 || len(items[0].Shares) != 1 || items[0].Shares[0].Address != reader || items[0].Shares[0].Granted {
		t.Fatalf("ShareSubmission(one) = %+v, %v; want one pending share with the checksummed address", items, err)
	}
	items, err = c.ShareSubmission(ctx, 0, testAddress)
	if err != nil || len(items) != 2 {
		t.Fatalf("ShareSubmission(all) = %d items, %v; want 2", len(items), err)
	}
	up.fail = errors.New("out of gas")
	if _, err := c.ShareSubmission(ctx, 0, reader); err == nil || !strings.Contains(err.Error(), "out of gas") {
		t.Errorf("ShareSubmission with a failing grant = %v, want its error", err)
	}
	if len(up.shares) != 5 {
		t.Errorf("the uploader was asked for %d shares, want 5", len(up.shares))
	}
}

func TestWeiToBNB(t *testing.T) {
	for _, tt := range []struct{ wei, bnb string }{
		{"0", "0"}, {"1", "0.000000000000000001"}, {"1000000000000000000", "1"},
		{"1500000000000000000", "1.5"}, {"1000000000000000000000000", "1000000"},
	} {
		t.Run(tt.wei, func(t *testing.T) {
			w, _ := new(big.Int).SetString(tt.wei, 10)
			if got := weiToBNB(w); got != tt.bnb {
				t.Errorf("weiToBNB(%s) = %s, want %s", tt.wei, got, tt.bnb)
			}
		})
	}
}

func TestUploadsElsewhere(t *testing.T) {
	c, st, _ := newWalletCore(t)
	if got := c.UploadsElsewhere(); got != "" {
		t.Errorf("without an uploader: %q", got)
	}
	up := &fakeUploader{st: st}
	c.opts.Uploader = up
	if got := c.UploadsElsewhere(); got != "" {
		t.Errorf("while this process uploads: %q", got)
	}
	up.mu.Lock()
	up.blocked = storage.Lease{Name: "greenfield.uploader", Holder: "host-b pid 42"}
	up.mu.Unlock()
	want := "Another gata process (host-b pid 42) uploads from this data folder; this one takes over when it stops."
	if got := c.UploadsElsewhere(); got != want {
		t.Errorf("UploadsElsewhere = %q, want %q", got, want)
	}
}
