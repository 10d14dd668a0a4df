package core

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gata-contrib/gata/storage"
	"github.com/gata-contrib/gata/storage/keyringtest"
	"github.com/gata-contrib/gata/storage/wallet"
)

// Hardhat's first account: a well-known test mnemonic and its key at m/44'/60'/0'/0/0.
const (
	testMnemonic = "test test test test test test test test test test test junk"
	testKeyHex   = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
	testAddress  = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
	testPass     = "wallet test passphrase"
)

// newWalletCore is a core whose wallet goes to the V3 keystore file (no keyring),
// sealed with a light scrypt cost and testPass; its log goes to the returned buffer.
func newWalletCore(t *testing.T) (*Core, *storage.Store, *syncBuffer) {
	t.Helper()
	c, st := newTestCore(t)
	logs := &syncBuffer{}
	c.log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c.opts.WalletScryptN = wallet.LightScryptN
	c.opts.Passphrase = func() (string, error) { return testPass, nil }
	return c, st, logs
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestWalletCreateConfirm(t *testing.T) {
	ctx := context.Background()
	c, _, logs := newWalletCore(t)
	info, err := c.WalletStatus(ctx)
	if err != nil || info.Exists || info.Where != wallet.WhereFile || info.Pending {
		t.Fatalf("WalletStatus before = %+v, %v", info, err)
	}
	if _, err := c.WalletAddress(ctx); !errors.Is(err, ErrNoWallet) {
		t.Errorf("WalletAddress with none = %v, want ErrNoWallet", err)
	}
	if _, err := c.ConfirmWallet(ctx, nil); !errors.Is(err, ErrNotConfirmed) {
		t.Errorf("ConfirmWallet with nothing waiting = %v, want ErrNotConfirmed", err)
	}
	nw, err := c.CreateWallet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(nw.Words) != wallet.MnemonicWords || len(nw.Confirm) != confirmWords {
		t.Fatalf("CreateWallet = %d words, confirm %v", len(nw.Words), nw.Confirm)
	}
	k, err := wallet.FromMnemonic(strings.Join(nw.Words, " "))
	if err != nil || k.Address().Hex() != nw.Address {
		t.Fatalf("the words give %v, %v; CreateWallet said %s", k, err, nw.Address)
	}
	if info, _ := c.WalletStatus(ctx); info.Exists || !info.Pending {
		t.Errorf("WalletStatus while pending = %+v, want pending, not saved", info)
	}
	if _, err := os.Stat(filepath.Join(c.opts.DataDir, wallet.KeystoreFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the wallet was saved before its confirmation")
	}

	wrong := map[int]string{}
	for _, p := range nw.Confirm {
		wrong[p] = nw.Words[p-1]
	}
	wrong[nw.Confirm[1]] = "zoo" + nw.Words[nw.Confirm[1]-1]
	if _, err := c.ConfirmWallet(ctx, wrong); !errors.Is(err, ErrNotConfirmed) {
		t.Fatalf("ConfirmWallet with a wrong word = %v, want ErrNotConfirmed", err)
	}
	right := map[int]string{}
	for _, p := range nw.Confirm {
		right[p] = "  " + strings.ToUpper(nw.Words[p-1]) + " "
	}
	info, err = c.ConfirmWallet(ctx, right)
	if err != nil {
		t.Fatalf("ConfirmWallet after a wrong try: %v", err)
	}
	if !info.Exists || info.Address != nw.Address || info.Pending || info.Path != filepath.Join(c.opts.DataDir, wallet.KeystoreFile) {
		t.Errorf("WalletStatus after confirm = %+v", info)
	}
	if a, err := c.WalletAddress(ctx); err != nil || a != nw.Address {
		t.Errorf("WalletAddress = %s, %v", a, err)
	}
	if _, err := c.ConfirmWallet(ctx, right); !errors.Is(err, ErrNotConfirmed) {
		t.Errorf("a second ConfirmWallet = %v, want ErrNotConfirmed", err)
	}
	if _, err := c.CreateWallet(ctx); !errors.Is(err, ErrWalletExists) {
		t.Errorf("CreateWallet over a wallet = %v, want ErrWalletExists", err)
	}
	b, _ := os.ReadFile(filepath.Join(c.opts.DataDir, wallet.KeystoreFile))
	if got, err := wallet.FromKeystore(b, testPass); err != nil || got.Address().Hex() != nw.Address {
		t.Errorf("the keystore file does not open with the passphrase: %v", err)
	}
	assertNoSecrets(t, logs.String(), strings.TrimPrefix(k.ExportHex(), "0x"), strings.Join(nw.Words, " "))
}

// assertNoSecrets fails when the log holds the key or any run of three mnemonic words.
func assertNoSecrets(t *testing.T, log, keyHex, mnemonic string) {
	t.Helper()
	if strings.Contains(strings.ToLower(log), strings.ToLower(keyHex)) {
		t.Errorf("the log holds the private key:\n%s", log)
	}
	w := strings.Fields(mnemonic)
	for i := 0; i+3 <= len(w); i++ {
		if strings.Contains(log, strings.Join(w[i:i+3], " ")) {
			t.Errorf("the log holds the mnemonic's words:\n%s", log)
			return
		}
	}
}

func TestWalletImportExport(t *testing.T) {
	ctx := context.Background()
	c, _, logs := newWalletCore(t)
	bad := []WalletImport{
		{},
		{Mnemonic: testMnemonic, PrivateKey: testKeyHex},
		{Mnemonic: "test test test test test test test test test test test test"},
		{PrivateKey: "0x1234"},
	}
	for _, in := range bad {
		if _, err := c.ImportWallet(ctx, in); !errors.Is(err, ErrBadWallet) {
			t.Errorf("ImportWallet(%+v) = %v, want ErrBadWallet", in, err)
		}
	}
	info, err := c.ImportWallet(ctx, WalletImport{Mnemonic: "  " + strings.ToUpper(testMnemonic) + "\n"})
	if err != nil || info.Address != testAddress {
		t.Fatalf("ImportWallet(mnemonic) = %+v, %v; want %s", info, err, testAddress)
	}
	other, _ := wallet.FromHex("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
	if _, err := c.ImportWallet(ctx, WalletImport{PrivateKey: other.ExportHex()}); !errors.Is(err, ErrWalletExists) {
		t.Errorf("ImportWallet over a wallet = %v, want ErrWalletExists", err)
	}
	if a, _ := c.WalletAddress(ctx); a != testAddress {
		t.Errorf("a refused import changed the wallet to %s", a)
	}

	if _, err := c.ExportWallet(ctx, WalletExport{Format: ExportHex}); !errors.Is(err, ErrExportNotConfirmed) {
		t.Errorf("ExportWallet without confirm = %v, want ErrExportNotConfirmed", err)
	}
	if _, err := c.ExportWallet(ctx, WalletExport{Format: "pem", Confirm: true}); !errors.Is(err, ErrBadWallet) {
		t.Errorf("ExportWallet(pem) = %v, want ErrBadWallet", err)
	}
	hexKey, err := c.ExportWallet(ctx, WalletExport{Format: ExportHex, Confirm: true})
	if err != nil || hexKey != testKeyHex {
		t.Errorf("ExportWallet(hex) = %q, %v; want the imported key", hexKey, err)
	}
	for _, pass := range []string{"", "export passphrase"} {
		ks, err := c.ExportWallet(ctx, WalletExport{Format: ExportKeystore, Confirm: true, Passphrase: pass})
		if err != nil {
			t.Fatal(err)
		}
		want := pass
		if want == "" {
			want = testPass
		}
		if k, err := wallet.FromKeystore([]byte(ks), want); err != nil || k.Address().Hex() != testAddress {
			t.Errorf("the exported keystore (passphrase %q) opens as %v, %v", want, k, err)
		}
		if strings.Contains(ks, testKeyHex[2:]) {
			t.Errorf("the exported keystore holds the key in plain text")
		}
	}

	info, err = c.ImportWallet(ctx, WalletImport{PrivateKey: other.ExportHex()[2:], Replace: true})
	if err != nil || info.Address != other.Address().Hex() {
		t.Fatalf("ImportWallet(replace) = %+v, %v", info, err)
	}
	assertNoSecrets(t, logs.String(), testKeyHex[2:], testMnemonic)
	assertNoSecrets(t, logs.String(), other.ExportHex()[2:], "")
}

// Without a passphrase the keystore file can be neither written nor read; with a
// wrong one it is not opened.
func TestWalletLocked(t *testing.T) {
	ctx := context.Background()
	c, st, _ := newWalletCore(t)
	c.opts.Passphrase = nil
	if info, _ := c.WalletStatus(ctx); !info.Locked {
		t.Errorf("WalletStatus without a passphrase = %+v, want locked", info)
	}
	if _, err := c.ImportWallet(ctx, WalletImport{Mnemonic: testMnemonic}); !errors.Is(err, ErrSecretsLocked) {
		t.Fatalf("ImportWallet while locked = %v, want ErrSecretsLocked", err)
	}
	withFileSecrets(t, c)
	if err := c.UnlockSecrets(ctx, testPass); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImportWallet(ctx, WalletImport{Mnemonic: testMnemonic}); err != nil {
		t.Fatalf("ImportWallet after UnlockSecrets: %v", err)
	}

	// Another process on the same data folder with the wrong passphrase.
	c2, err := New(Options{Version: "test", DataDir: c.opts.DataDir, Store: st, WalletScryptN: wallet.LightScryptN,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Passphrase: func() (string, error) { return "wrong", nil }})
	if err != nil {
		t.Fatal(err)
	}
	if a, err := c2.WalletAddress(ctx); err != nil || a != testAddress {
		t.Errorf("WalletAddress needs no passphrase: %s, %v", a, err)
	}
	if _, err := c2.ExportWallet(ctx, WalletExport{Format: ExportHex, Confirm: true}); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("ExportWallet with a wrong passphrase = %v, want ErrWrongPassphrase", err)
	}
}

func TestWalletInKeyring(t *testing.T) {
	ctx := context.Background()
	c, _, _ := newWalletCore(t)
	c.opts.Passphrase = nil
	ring := &keyringtest.Keyring{}
	secrets, err := storage.OpenSecrets(c.opts.DataDir, storage.SecretsOptions{Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	c.opts.Secrets = secrets
	info, err := c.ImportWallet(ctx, WalletImport{PrivateKey: testKeyHex})
	if err != nil {
		t.Fatal(err)
	}
	if info.Where != wallet.WhereKeyring || info.Locked || info.Path != "" {
		t.Errorf("WalletStatus = %+v, want the keyring, unlocked", info)
	}
	if v, _ := ring.Get(storage.SecretsService, wallet.SecretName); "0x"+v != testKeyHex {
		t.Errorf("the keyring does not hold the key")
	}
	if _, err := os.Stat(filepath.Join(c.opts.DataDir, wallet.KeystoreFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a keystore file was written: %v", err)
	}
	if k, err := c.ExportWallet(ctx, WalletExport{Format: ExportHex, Confirm: true}); err != nil || k != testKeyHex {
		t.Errorf("ExportWallet = %q, %v", k, err)
	}
}
