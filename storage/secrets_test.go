package storage

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zalando/go-keyring"
)

const testPass = "correct horse battery staple"

// passCounter answers pass and counts how often it was asked.
type passCounter struct {
	pass string
	n    atomic.Int32
}

func (p *passCounter) ask() (string, error) {
	p.n.Add(1)
	return p.pass, nil
}

// openFileSecrets opens the encrypted-file backend in dir with a cheap key derivation.
func openFileSecrets(t *testing.T, dir string, pass *passCounter) *Secrets {
	t.Helper()
	s, err := OpenSecrets(dir, SecretsOptions{Passphrase: pass.ask, ForceFile: true, scryptLogN: minScryptLogN})
	if err != nil {
		t.Fatalf("OpenSecrets(%q): %v", dir, err)
	}
	if got := s.Backend(); got != BackendFile {
		t.Fatalf("Backend() = %q, want %q", got, BackendFile)
	}
	return s
}

func mustSet(t *testing.T, s *Secrets, name, value string) {
	t.Helper()
	if err := s.Set(name, value); err != nil {
		t.Fatalf("Set(%q): %v", name, err)
	}
}

func wantValue(t *testing.T, s *Secrets, name, want string) {
	t.Helper()
	got, err := s.Get(context.Background(), name)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	if got != want {
		t.Fatalf("Get(%q) = %q, want %q", name, got, want)
	}
}

func wantNotFound(t *testing.T, s *Secrets, name string) {
	t.Helper()
	if _, err := s.Get(context.Background(), name); !errors.Is(err, ErrSecretNotFound) {
		t.Fatalf("Get(%q) error = %v, want ErrSecretNotFound", name, err)
	}
}

// oneLine fails when err's message spans lines or contains any of the secrets.
func oneLine(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("error = nil, want an error")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error %q spans lines", msg)
	}
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			t.Errorf("error %q contains a secret", msg)
		}
	}
}

func TestSecretsFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	pass := &passCounter{pass: testPass}
	s := openFileSecrets(t, dir, pass)

	wantNotFound(t, s, "chat.provider.openai")
	if pass.n.Load() != 0 {
		t.Errorf("Get of a missing secret with no file asked for the passphrase")
	}
	if err := s.Delete("chat.provider.openai"); err != nil {
		t.Errorf("Delete of a missing secret with no file: %v", err)
	}

	mustSet(t, s, "chat.provider.openai", "sk-first")
	wantValue(t, s, "chat.provider.openai", "sk-first")
	mustSet(t, s, "chat.provider.openai", "sk-second")
	wantValue(t, s, "chat.provider.openai", "sk-second")
	mustSet(t, s, "chat.provider.anthropic", "sk-ant-\x00 unicode ✓ and spaces")
	wantValue(t, s, "chat.provider.anthropic", "sk-ant-\x00 unicode ✓ and spaces")

	if err := s.Delete("chat.provider.openai"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantNotFound(t, s, "chat.provider.openai")
	wantValue(t, s, "chat.provider.anthropic", "sk-ant-\x00 unicode ✓ and spaces")
	if err := s.Delete("chat.provider.openai"); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if n := pass.n.Load(); n != 1 {
		t.Errorf("passphrase asked %d times, want 1", n)
	}
}

func TestSecretsFilePersistsAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s := openFileSecrets(t, dir, &passCounter{pass: testPass})
	mustSet(t, s, "a", "value-a")
	mustSet(t, s, "b", "value-b")
	if err := s.Delete("b"); err != nil {
		t.Fatalf("Delete: %v", err)
	}

	pass := &passCounter{pass: testPass}
	s2 := openFileSecrets(t, dir, pass)
	wantNotFound(t, s2, "b")
	if n := pass.n.Load(); n != 0 {
		t.Errorf("Get of a missing name asked for the passphrase %d times, want 0", n)
	}
	wantValue(t, s2, "a", "value-a")
	wantValue(t, s2, "a", "value-a")
	mustSet(t, s2, "c", "value-c")
	if n := pass.n.Load(); n != 1 {
		t.Errorf("passphrase asked %d times after reopen, want 1", n)
	}
	// A value set by one Secrets is seen by another on the same file.
	wantValue(t, s, "c", "value-c")

	// Delete never needs the passphrase.
	s3, err := OpenSecrets(dir, SecretsOptions{ForceFile: true})
	if err != nil {
		t.Fatalf("OpenSecrets without a passphrase: %v", err)
	}
	if err := s3.Delete("c"); err != nil {
		t.Fatalf("Delete without a passphrase: %v", err)
	}
	wantNotFound(t, s, "c")
}

func TestSecretsFileWrongPassphrase(t *testing.T) {
	dir := t.TempDir()
	mustSet(t, openFileSecrets(t, dir, &passCounter{pass: testPass}), "wallet.key", "0xdeadbeefcafe")
	path := filepath.Join(dir, SecretsFileName)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	wrong := &passCounter{pass: "not the passphrase"}
	s := openFileSecrets(t, dir, wrong)
	_, err = s.Get(context.Background(), "wallet.key")
	if !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("Get with a wrong passphrase: error = %v, want ErrWrongPassphrase", err)
	}
	oneLine(t, err, "not the passphrase", "0xdeadbeefcafe")
	err = s.Set("other", "new-value")
	if !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("Set with a wrong passphrase: error = %v, want ErrWrongPassphrase", err)
	}
	oneLine(t, err, "not the passphrase", "new-value")
	if n := wrong.n.Load(); n != 2 {
		t.Errorf("wrong passphrase asked %d times, want 2 (it must not be cached)", n)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("the file changed after a wrong passphrase")
	}

	// The user retries with the right one: nothing was lost.
	wrong.pass = testPass
	wantValue(t, s, "wallet.key", "0xdeadbeefcafe")
}

func TestSecretsFileLocked(t *testing.T) {
	dir := t.TempDir()
	mustSet(t, openFileSecrets(t, dir, &passCounter{pass: testPass}), "k", "v1")

	tests := []struct {
		name string
		ask  func() (string, error)
		want error
	}{
		{"no passphrase func", nil, ErrLocked},
		{"empty passphrase", func() (string, error) { return "", nil }, ErrLocked},
		{"prompt fails", func() (string, error) { return "", errPrompt }, errPrompt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := OpenSecrets(dir, SecretsOptions{Passphrase: tt.ask, ForceFile: true})
			if err != nil {
				t.Fatalf("OpenSecrets: %v", err)
			}
			_, err = s.Get(context.Background(), "k")
			if !errors.Is(err, tt.want) {
				t.Errorf("Get error = %v, want %v", err, tt.want)
			}
			oneLine(t, err, "v1")
			if err := s.Set("k2", "v2"); !errors.Is(err, tt.want) {
				t.Errorf("Set error = %v, want %v", err, tt.want)
			}
		})
	}

	// A new file cannot be created without a passphrase either.
	s, err := OpenSecrets(t.TempDir(), SecretsOptions{ForceFile: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set("k", "v"); !errors.Is(err, ErrLocked) {
		t.Errorf("Set on a new file without a passphrase: error = %v, want ErrLocked", err)
	}
}

var errPrompt = errors.New("no terminal to prompt on")

func TestSecretsFileMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := openFileSecrets(t, dir, &passCounter{pass: testPass})
	mustSet(t, s, "k", "v")
	path := filepath.Join(dir, SecretsFileName)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		if got := info.Mode().Perm(); got != 0o600 {
			t.Errorf("mode of %s = %v, want 0600", path, got)
		}
		// A file loosened by hand is tightened again on open.
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		openFileSecrets(t, dir, &passCounter{pass: testPass})
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != 0o600 {
			t.Errorf("mode after reopening a 0644 file = %v, want 0600", got)
		}
	}
	// No temp files are left behind.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != SecretsFileName {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("files in the data dir = %v, want only %s", names, SecretsFileName)
	}
}

func TestSecretsFileHoldsNoPlaintext(t *testing.T) {
	dir := t.TempDir()
	s := openFileSecrets(t, dir, &passCounter{pass: testPass})
	values := map[string]string{
		"chat.provider.openai": "sk-PLAINTEXT-OPENAI-1234567890",
		"wallet.key":           "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318",
	}
	for name, v := range values {
		mustSet(t, s, name, v)
	}
	b, err := os.ReadFile(filepath.Join(dir, SecretsFileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range append([]string{testPass}, values["chat.provider.openai"], values["wallet.key"]) {
		for _, enc := range []string{v, base64.StdEncoding.EncodeToString([]byte(v)), fmt.Sprintf("%x", v)} {
			if bytes.Contains(b, []byte(enc)) {
				t.Errorf("the file contains a secret (%d bytes, encoded as %.8s…)", len(v), enc)
			}
		}
		if bytes.Contains(b, []byte(v[:12])) {
			t.Errorf("the file contains the first 12 bytes of a secret")
		}
	}
	// Each value has its own nonce: the same value twice seals differently.
	mustSet(t, s, "twin.a", "same")
	mustSet(t, s, "twin.b", "same")
	doc := readDoc(t, dir)
	if bytes.Equal(doc.Secrets["twin.a"].Nonce, doc.Secrets["twin.b"].Nonce) ||
		bytes.Equal(doc.Secrets["twin.a"].Ciphertext, doc.Secrets["twin.b"].Ciphertext) {
		t.Errorf("two values sealed with the same nonce or to the same ciphertext")
	}
}

func readDoc(t *testing.T, dir string) secretsDoc {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, SecretsFileName))
	if err != nil {
		t.Fatal(err)
	}
	var doc secretsDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func writeDoc(t *testing.T, dir string, doc secretsDoc) {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, SecretsFileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSecretsFileDamaged(t *testing.T) {
	// A file that cannot be parsed is refused at open, with the file named.
	damage := []struct {
		name  string
		bytes func(good []byte) []byte
	}{
		{"empty", func([]byte) []byte { return nil }},
		{"not json", func([]byte) []byte { return []byte("hello\n") }},
		{"truncated", func(good []byte) []byte { return good[:len(good)/2] }},
		{"wrong version", func(good []byte) []byte {
			return bytes.Replace(good, []byte(`"version": 1`), []byte(`"version": 9`), 1)
		}},
		{"huge scrypt n", func(good []byte) []byte {
			return bytes.Replace(good, []byte(`"n": 1024`), []byte(`"n": 1073741824`), 1)
		}},
		{"unknown field", func(good []byte) []byte {
			return bytes.Replace(good, []byte(`"version"`), []byte(`"extra": 1, "version"`), 1)
		}},
		{"bad base64", func(good []byte) []byte { return bytes.Replace(good, []byte(`"salt": "`), []byte(`"salt": "!!!`), 1) }},
	}
	for _, tt := range damage {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			mustSet(t, openFileSecrets(t, dir, &passCounter{pass: testPass}), "k", "secret-value")
			path := filepath.Join(dir, SecretsFileName)
			good, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			bad := tt.bytes(good)
			if bytes.Equal(bad, good) {
				t.Fatalf("the damage did not change the file")
			}
			if err := os.WriteFile(path, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = OpenSecrets(dir, SecretsOptions{Passphrase: (&passCounter{pass: testPass}).ask, ForceFile: true})
			if err == nil || !strings.Contains(err.Error(), "damaged") || !strings.Contains(err.Error(), path) {
				t.Fatalf("OpenSecrets of a damaged file: error = %v, want one naming %s as damaged", err, path)
			}
			oneLine(t, err, "secret-value", testPass)
		})
	}

	// A value whose ciphertext was changed, or moved to another name, fails alone.
	t.Run("value", func(t *testing.T) {
		dir := t.TempDir()
		s := openFileSecrets(t, dir, &passCounter{pass: testPass})
		mustSet(t, s, "flipped", "value-one")
		mustSet(t, s, "moved", "value-two")
		mustSet(t, s, "intact", "value-three")
		doc := readDoc(t, dir)
		f := doc.Secrets["flipped"]
		f.Ciphertext[0] ^= 1
		doc.Secrets["flipped"] = f
		doc.Secrets["moved"] = doc.Secrets["intact"]
		writeDoc(t, dir, doc)

		for _, name := range []string{"flipped", "moved"} {
			_, err := s.Get(context.Background(), name)
			if err == nil || !strings.Contains(err.Error(), "damaged") || errors.Is(err, ErrWrongPassphrase) {
				t.Errorf("Get(%q) of a damaged value: error = %v, want a damaged-value error", name, err)
			}
			oneLine(t, err, "value-one", "value-two", "value-three")
		}
		wantValue(t, s, "intact", "value-three")
	})
}

func TestSecretsFileConcurrentSet(t *testing.T) {
	dir := t.TempDir()
	pass := &passCounter{pass: testPass}
	s := openFileSecrets(t, dir, pass)
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Go(func() {
			name := fmt.Sprintf("key-%02d", i)
			if err := s.Set(name, "value-"+name); err != nil {
				errs <- err
				return
			}
			if _, err := s.Get(context.Background(), name); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s2 := openFileSecrets(t, dir, &passCounter{pass: testPass})
	for i := range n {
		name := fmt.Sprintf("key-%02d", i)
		wantValue(t, s2, name, "value-"+name)
	}
	if got := len(readDoc(t, dir).Secrets); got != n {
		t.Errorf("the file holds %d secrets, want %d", got, n)
	}
	if c := pass.n.Load(); c != 1 {
		t.Errorf("passphrase asked %d times by concurrent callers, want 1", c)
	}
}

func TestSecretsFileDefaultCost(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSecrets(dir, SecretsOptions{Passphrase: (&passCounter{pass: testPass}).ask, ForceFile: true})
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, s, "k", "v")
	wantValue(t, s, "k", "v")
	p := readDoc(t, dir).Params
	if p.N != 1<<defaultScryptLogN || p.R != 8 || p.P != 1 || len(p.Salt) != saltLen {
		t.Errorf("kdf params = n %d r %d p %d salt %d bytes, want n 2^%d r 8 p 1 salt %d bytes",
			p.N, p.R, p.P, len(p.Salt), defaultScryptLogN, saltLen)
	}
}

func TestSecretsNames(t *testing.T) {
	s := openFileSecrets(t, t.TempDir(), &passCounter{pass: testPass})
	tests := []struct {
		name string
		ok   bool
	}{
		{"chat.provider.openai", true},
		{"wallet.key", true},
		{"a", true},
		{"0-x_y.z", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"", false},
		{"Upper", false},
		{"_probe", false},
		{".hidden", false},
		{"with space", false},
		{"slash/name", false},
		{"ünïcode", false},
	}
	for _, tt := range tests {
		if got := ValidSecretName(tt.name); got != tt.ok {
			t.Errorf("ValidSecretName(%q) = %v, want %v", tt.name, got, tt.ok)
		}
		if tt.ok {
			continue
		}
		if err := s.Set(tt.name, "v"); err == nil || !strings.Contains(err.Error(), "invalid name") {
			t.Errorf("Set(%q) error = %v, want invalid name", tt.name, err)
		}
		if _, err := s.Get(context.Background(), tt.name); err == nil || !strings.Contains(err.Error(), "invalid name") {
			t.Errorf("Get(%q) error = %v, want invalid name", tt.name, err)
		}
		if err := s.Delete(tt.name); err == nil || !strings.Contains(err.Error(), "invalid name") {
			t.Errorf("Delete(%q) error = %v, want invalid name", tt.name, err)
		}
	}
	if err := s.Set("k", ""); err == nil {
		t.Errorf("Set with an empty value: error = nil")
	}
}

func TestSecretsGetCancelled(t *testing.T) {
	dir := t.TempDir()
	pass := &passCounter{pass: testPass}
	mustSet(t, openFileSecrets(t, dir, &passCounter{pass: testPass}), "k", "v")
	s := openFileSecrets(t, dir, pass)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Get(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a cancelled ctx: error = %v, want context.Canceled", err)
	}
	if n := pass.n.Load(); n != 0 {
		t.Errorf("Get with a cancelled ctx asked for the passphrase")
	}
}

// The keyring tests use go-keyring's own in-memory mock, which replaces the package's
// provider; they do not run in parallel.

func TestSecretsKeyringMock(t *testing.T) {
	keyring.MockInit()
	dir := t.TempDir()
	s, err := OpenSecrets(dir, SecretsOptions{})
	if err != nil {
		t.Fatalf("OpenSecrets: %v", err)
	}
	if got := s.Backend(); got != BackendKeyring {
		t.Fatalf("Backend() = %q, want %q", got, BackendKeyring)
	}
	wantNotFound(t, s, "chat.provider.openai")
	mustSet(t, s, "chat.provider.openai", "sk-keyring")
	wantValue(t, s, "chat.provider.openai", "sk-keyring")
	if v, err := keyring.Get(SecretsService, "chat.provider.openai"); err != nil || v != "sk-keyring" {
		t.Errorf("keyring.Get(%q, ...) = %q, %v; want the value under that service", SecretsService, v, err)
	}
	if err := s.Delete("chat.provider.openai"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantNotFound(t, s, "chat.provider.openai")
	if err := s.Delete("chat.provider.openai"); err != nil {
		t.Errorf("Delete of a missing secret: %v", err)
	}

	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if err := s.Set(fmt.Sprintf("key-%d", i), "v"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	wantValue(t, s, "key-7", "v")

	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the keyring backend wrote %d files into the data dir", len(entries))
	}
}

func TestSecretsKeyringUnavailableMock(t *testing.T) {
	keyring.MockInitWithError(errors.New(`exec: "dbus-launch": executable file not found in $PATH`))
	s, err := OpenSecrets(t.TempDir(), SecretsOptions{Passphrase: (&passCounter{pass: testPass}).ask, scryptLogN: minScryptLogN})
	if err != nil {
		t.Fatalf("OpenSecrets: %v", err)
	}
	if got := s.Backend(); got != BackendFile {
		t.Fatalf("Backend() with no keyring service = %q, want %q", got, BackendFile)
	}
	mustSet(t, s, "k", "v")
	wantValue(t, s, "k", "v")
}

// fakeKeyring is a keyring service that is absent, hangs, or works.
type fakeKeyring struct {
	mu     sync.Mutex
	err    error         // returned by every call when set
	hang   chan struct{} // when set, Get blocks until it is closed
	values map[string]string
	probes int
}

func (k *fakeKeyring) Get(service, user string) (string, error) {
	if k.hang != nil {
		<-k.hang
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if user == probeName {
		k.probes++
	}
	if k.err != nil {
		return "", k.err
	}
	v, ok := k.values[service+"/"+user]
	if !ok {
		return "", keyring.ErrNotFound
	}
	return v, nil
}

func (k *fakeKeyring) Set(service, user, password string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err != nil {
		return k.err
	}
	if k.values == nil {
		k.values = map[string]string{}
	}
	k.values[service+"/"+user] = password
	return nil
}

func (k *fakeKeyring) Delete(service, user string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err != nil {
		return k.err
	}
	if _, ok := k.values[service+"/"+user]; !ok {
		return keyring.ErrNotFound
	}
	delete(k.values, service+"/"+user)
	return nil
}

func TestSecretsProbe(t *testing.T) {
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	tests := []struct {
		name  string
		ring  *fakeKeyring
		force bool
		want  string
	}{
		{"keyring answers not found", &fakeKeyring{}, false, BackendKeyring},
		{"no service", &fakeKeyring{err: errors.New("The name org.freedesktop.secrets was not provided by any .service files")}, false, BackendFile},
		{"keyring hangs", &fakeKeyring{hang: hang}, false, BackendFile},
		{"forced file", &fakeKeyring{}, true, BackendFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			s, err := OpenSecrets(t.TempDir(), SecretsOptions{
				Passphrase: (&passCounter{pass: testPass}).ask, ForceFile: tt.force, Keyring: tt.ring,
				ProbeTimeout: 100 * time.Millisecond, scryptLogN: minScryptLogN,
			})
			if err != nil {
				t.Fatalf("OpenSecrets: %v", err)
			}
			if got := s.Backend(); got != tt.want {
				t.Errorf("Backend() = %q, want %q", got, tt.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("OpenSecrets took %v", d)
			}
			tt.ring.mu.Lock()
			probes := tt.ring.probes
			tt.ring.mu.Unlock()
			if tt.force && probes != 0 {
				t.Errorf("ForceFile still probed the keyring")
			}
			if !tt.force && tt.ring.hang == nil && probes != 1 {
				t.Errorf("keyring probed %d times, want 1", probes)
			}
			mustSet(t, s, "k", "v")
			wantValue(t, s, "k", "v")
		})
	}
}

func TestSecretsExistingFileWinsOverKeyring(t *testing.T) {
	dir := t.TempDir()
	mustSet(t, openFileSecrets(t, dir, &passCounter{pass: testPass}), "k", "from-file")
	ring := &fakeKeyring{}
	s, err := OpenSecrets(dir, SecretsOptions{Passphrase: (&passCounter{pass: testPass}).ask, Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Backend(); got != BackendFile {
		t.Errorf("Backend() with an existing file = %q, want %q", got, BackendFile)
	}
	wantValue(t, s, "k", "from-file")
}

func TestSecretsKeyringErrors(t *testing.T) {
	ring := &fakeKeyring{}
	s, err := OpenSecrets(t.TempDir(), SecretsOptions{Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	ring.mu.Lock()
	ring.err = errors.New("collection is locked")
	ring.mu.Unlock()
	err = s.Set("k", "the-value")
	if err == nil || !strings.Contains(err.Error(), "os keyring") || !strings.Contains(err.Error(), "collection is locked") {
		t.Errorf("Set with a failing keyring: error = %v, want it wrapped with the action", err)
	}
	oneLine(t, err, "the-value")
	if _, err := s.Get(context.Background(), "k"); err == nil || errors.Is(err, ErrSecretNotFound) {
		t.Errorf("Get with a failing keyring: error = %v, want a keyring error", err)
	}
	if err := s.Delete("k"); err == nil {
		t.Errorf("Delete with a failing keyring: error = nil")
	}
}

func TestSecretsUnlock(t *testing.T) {
	dir := t.TempDir()
	none := &passCounter{pass: testPass}
	if err := openFileSecrets(t, dir, none).Unlock(); err != nil {
		t.Fatalf("Unlock with no file yet: %v", err)
	}
	if n := none.n.Load(); n != 0 {
		t.Errorf("Unlock with no file asked for the passphrase %d times, want 0", n)
	}
	mustSet(t, openFileSecrets(t, dir, &passCounter{pass: testPass}), "chat.provider.x", "sk-123")

	ask := &passCounter{pass: "wrong"}
	s := openFileSecrets(t, dir, ask)
	if err := s.Unlock(); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("Unlock with a wrong passphrase = %v, want ErrWrongPassphrase", err)
	}
	ask.pass = testPass
	if err := s.Unlock(); err != nil {
		t.Fatalf("Unlock with the right passphrase: %v", err)
	}
	wantValue(t, s, "chat.provider.x", "sk-123")
	if n := ask.n.Load(); n != 2 {
		t.Errorf("passphrase asked %d times, want 2 (once per Unlock; the right one is kept)", n)
	}

	locked, err := OpenSecrets(dir, SecretsOptions{ForceFile: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := locked.Unlock(); !errors.Is(err, ErrLocked) {
		t.Errorf("Unlock with no passphrase source = %v, want ErrLocked", err)
	}
}
