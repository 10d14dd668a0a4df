package wallet

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gata-contrib/gata/storage"
	"github.com/gata-contrib/gata/storage/keyringtest"
)

// askCounter answers a passphrase and counts the questions.
type askCounter struct {
	pass string
	n    atomic.Int32
}

func (a *askCounter) ask() (string, error) { a.n.Add(1); return a.pass, nil }

func fileStore(t *testing.T, dir string, pass *askCounter) *Store {
	t.Helper()
	return NewStore(StoreOptions{Dir: dir, Passphrase: pass.ask, ScryptN: LightScryptN})
}

func TestStoreKeystoreFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	pass := &askCounter{pass: "hunter2 hunter2"}
	s := fileStore(t, dir, pass)
	st, err := s.Status(ctx)
	if err != nil || st.Exists || st.Where != WhereFile || st.Path != filepath.Join(dir, KeystoreFile) {
		t.Fatalf("Status of an empty dir = %+v, %v", st, err)
	}
	if _, err := s.Load(ctx); !errors.Is(err, ErrNoWallet) {
		t.Fatalf("Load with no wallet = %v, want ErrNoWallet", err)
	}
	k := newTestKey(t)
	if err := s.Save(ctx, k, false); err != nil {
		t.Fatalf("Save: %v", err)
	}
	info, err := os.Stat(s.KeystorePath())
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("keystore mode = %v, want 0600", info.Mode().Perm())
	}
	b, _ := os.ReadFile(s.KeystorePath())
	if bytes.Contains(b, []byte(strings.TrimPrefix(k.ExportHex(), "0x"))) {
		t.Fatalf("the keystore file holds the key in plain text")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("dir holds %d entries after Save, want only %s", len(entries), KeystoreFile)
	}

	// Status reads the address without the passphrase.
	pass.n.Store(0)
	s2 := fileStore(t, dir, pass)
	st, err = s2.Status(ctx)
	if err != nil || !st.Exists || st.Address != k.Address() {
		t.Fatalf("Status = %+v, %v; want %s", st, err, k.Address().Hex())
	}
	if n := pass.n.Load(); n != 0 {
		t.Errorf("Status asked for the passphrase %d times", n)
	}
	got, err := s2.Load(ctx)
	if err != nil || got.ExportHex() != k.ExportHex() {
		t.Fatalf("Load = %v, %v; want the saved key", got, err)
	}
	if err := s2.Save(ctx, newTestKey(t), false); !errors.Is(err, ErrExists) {
		t.Errorf("Save over a wallet = %v, want ErrExists", err)
	}

	wrong := fileStore(t, dir, &askCounter{pass: "wrong"})
	if _, err := wrong.Load(ctx); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("Load with a wrong passphrase = %v, want ErrWrongPassphrase", err)
	}
	for _, locked := range []*Store{
		NewStore(StoreOptions{Dir: dir, ScryptN: LightScryptN}),
		fileStore(t, dir, &askCounter{}),
	} {
		if _, err := locked.Load(ctx); !errors.Is(err, ErrLocked) {
			t.Errorf("Load without a passphrase = %v, want ErrLocked", err)
		}
	}
	if err := NewStore(StoreOptions{Dir: t.TempDir()}).Save(ctx, k, false); !errors.Is(err, ErrLocked) {
		t.Errorf("Save without a passphrase = %v, want ErrLocked", err)
	}

	k2 := newTestKey(t)
	if err := s2.Save(ctx, k2, true); err != nil {
		t.Fatalf("Save(replace): %v", err)
	}
	if got, err := s2.Load(ctx); err != nil || got.Address() != k2.Address() {
		t.Errorf("Load after replace = %v, %v; want %s", got, err, k2.Address().Hex())
	}
	if err := s2.Remove(); err != nil {
		t.Fatal(err)
	}
	if st, _ := s2.Status(ctx); st.Exists {
		t.Errorf("Status after Remove = %+v", st)
	}
	if err := s2.Remove(); err != nil {
		t.Errorf("Remove of no wallet = %v", err)
	}
}

func TestStoreKeystoreDamaged(t *testing.T) {
	ctx := context.Background()
	pass := &askCounter{pass: "p"}
	k := newTestKey(t)
	other := newTestKey(t)
	good, err := k.Keystore("p", LightScryptN)
	if err != nil {
		t.Fatal(err)
	}
	// the address field of another key over this key's ciphertext
	swapped := bytes.Replace(good, []byte(strings.ToLower(k.Address().Hex()[2:])), []byte(strings.ToLower(other.Address().Hex()[2:])), 1)
	tests := []struct {
		name     string
		content  []byte
		statusOK bool
		want     string
	}{
		{"not json", []byte("{"), false, "damaged"},
		{"version 1", []byte(`{"address":"` + k.Address().Hex()[2:] + `","version":1}`), false, "version 1"},
		{"bad address", []byte(`{"address":"xyz","version":3}`), false, "damaged"},
		{"huge", bytes.Repeat([]byte(" "), maxKeystore+1), false, "damaged"},
		{"address swapped", swapped, true, "damaged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, KeystoreFile), tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			s := fileStore(t, dir, pass)
			if _, err := s.Status(ctx); (err == nil) != tt.statusOK {
				t.Errorf("Status = %v, want ok %v", err, tt.statusOK)
			}
			if _, err := s.Load(ctx); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestStoreKeyring(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ring := &keyringtest.Keyring{}
	secrets, err := storage.OpenSecrets(dir, storage.SecretsOptions{Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	if secrets.Backend() != storage.BackendKeyring {
		t.Fatalf("Backend = %q, want the keyring", secrets.Backend())
	}
	pass := &askCounter{pass: "never asked"}
	s := NewStore(StoreOptions{Dir: dir, Secrets: secrets, Passphrase: pass.ask, ScryptN: LightScryptN})
	if st, err := s.Status(ctx); err != nil || st.Exists || st.Where != WhereKeyring {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	if _, err := s.Load(ctx); !errors.Is(err, ErrNoWallet) {
		t.Fatalf("Load with no wallet = %v, want ErrNoWallet", err)
	}
	k := newTestKey(t)
	if err := s.Save(ctx, k, false); err != nil {
		t.Fatal(err)
	}
	if v, _ := ring.Get(storage.SecretsService, SecretName); "0x"+v != k.ExportHex() {
		t.Errorf("the keyring item %q does not hold the key", SecretName)
	}
	if _, err := os.Stat(s.KeystorePath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a keystore file was written while the keyring is the store: %v", err)
	}
	st, err := s.Status(ctx)
	if err != nil || !st.Exists || st.Address != k.Address() || st.Where != WhereKeyring {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	if got, err := s.Load(ctx); err != nil || got.ExportHex() != k.ExportHex() {
		t.Fatalf("Load = %v, %v", got, err)
	}
	if err := s.Save(ctx, newTestKey(t), false); !errors.Is(err, ErrExists) {
		t.Errorf("Save over a wallet = %v, want ErrExists", err)
	}
	if n := pass.n.Load(); n != 0 {
		t.Errorf("the keyring path asked for a passphrase %d times", n)
	}
	ring.Set(storage.SecretsService, SecretName, "not hex")
	if _, err := s.Load(ctx); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("Load of a damaged item = %v", err)
	}
	if err := s.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := ring.Get(storage.SecretsService, SecretName); !errors.Is(err, storage.ErrSecretNotFound) {
		t.Errorf("the keyring item is still there after Remove")
	}
}

// A keystore file found in the data dir wins over a keyring that runs now, so the key
// does not vanish when a keyring service appears later.
func TestStoreExistingFileWinsOverKeyring(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	pass := &askCounter{pass: "p"}
	k := newTestKey(t)
	if err := fileStore(t, dir, pass).Save(ctx, k, false); err != nil {
		t.Fatal(err)
	}
	ring := &keyringtest.Keyring{}
	secrets, err := storage.OpenSecrets(dir, storage.SecretsOptions{Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	s := NewStore(StoreOptions{Dir: dir, Secrets: secrets, Passphrase: pass.ask, ScryptN: LightScryptN})
	st, err := s.Status(ctx)
	if err != nil || st.Where != WhereFile || st.Address != k.Address() {
		t.Fatalf("Status = %+v, %v; want the file's wallet", st, err)
	}
	if got, err := s.Load(ctx); err != nil || got.Address() != k.Address() {
		t.Fatalf("Load = %v, %v", got, err)
	}
	if ring.Len() != 0 {
		t.Errorf("the keyring got %d items", ring.Len())
	}
}

// Where secrets go to the encrypted file (no keyring service), the wallet is a V3
// keystore of its own, not an item of the secrets file.
func TestStoreWithFileSecrets(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	pass := &askCounter{pass: "p"}
	secrets, err := storage.OpenSecrets(dir, storage.SecretsOptions{ForceFile: true, Passphrase: pass.ask})
	if err != nil {
		t.Fatal(err)
	}
	s := NewStore(StoreOptions{Dir: dir, Secrets: secrets, Passphrase: pass.ask, ScryptN: LightScryptN})
	k := newTestKey(t)
	if err := s.Save(ctx, k, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, KeystoreFile)); err != nil {
		t.Errorf("no keystore file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, storage.SecretsFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the secrets file was written: %v", err)
	}
	if got, err := FromKeystore(mustRead(t, s.KeystorePath()), "p"); err != nil || got.Address() != k.Address() {
		t.Errorf("the keystore file does not open with the passphrase: %v", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStoreConcurrent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := fileStore(t, dir, &askCounter{pass: "p"})
	k := newTestKey(t)
	if err := s.Save(ctx, k, false); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 4 {
		wg.Go(func() {
			if _, err := s.Status(ctx); err != nil {
				errs <- err
			}
		})
		wg.Go(func() {
			if err := s.Save(ctx, k, true); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got, err := s.Load(ctx); err != nil || got.Address() != k.Address() {
		t.Errorf("Load after concurrent saves = %v, %v", got, err)
	}
}
