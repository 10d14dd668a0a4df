package storage

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/zalando/go-keyring"
)

// SecretsService is the service name under which secrets are kept in the OS keyring.
const SecretsService = "gata"

// Backend names, as returned by Secrets.Backend.
const (
	BackendKeyring = "os keyring"
	BackendFile    = "encrypted file"
)

var (
	// ErrSecretNotFound is returned by Secrets.Get when no secret has that name.
	ErrSecretNotFound = errors.New("secret not found")
	// ErrLocked is returned when the encrypted file has to be opened and no passphrase
	// can be had: SecretsOptions.Passphrase is nil or gave an empty passphrase.
	ErrLocked = errors.New("secrets file is locked: no passphrase")
	// ErrWrongPassphrase is returned when the passphrase does not open the encrypted file.
	ErrWrongPassphrase = errors.New("wrong passphrase for the secrets file")
)

// Keyring is the part of an OS keyring service that Secrets uses. Its methods have the
// signatures of github.com/zalando/go-keyring's package functions; Get of a missing item
// returns an error matching keyring.ErrNotFound (or ErrSecretNotFound).
type Keyring interface {
	Get(service, user string) (string, error)
	Set(service, user, password string) error
	Delete(service, user string) error
}

// osKeyring is the OS keyring through go-keyring (Secret Service over D-Bus on Linux,
// Keychain on macOS, Credential Manager on Windows).
type osKeyring struct{}

func (osKeyring) Get(service, user string) (string, error) { return keyring.Get(service, user) }
func (osKeyring) Set(service, user, password string) error {
	return keyring.Set(service, user, password)
}
func (osKeyring) Delete(service, user string) error { return keyring.Delete(service, user) }

// SecretsOptions configures OpenSecrets.
type SecretsOptions struct {
	// Passphrase gives the passphrase of the encrypted file. It is called at most once
	// per Secrets while it keeps answering the right passphrase, and only when a value
	// has to be sealed or opened (never by Delete, nor by Get of a missing name).
	// The CLI reads GATA_PASSPHRASE or prompts on the terminal; the GUI asks in a dialog.
	// Nil means the file cannot be unlocked (ErrLocked).
	Passphrase func() (string, error)
	// ForceFile skips the OS keyring and uses the encrypted file.
	ForceFile bool
	// Keyring replaces the OS keyring (tests, or another service); nil means the OS keyring.
	Keyring Keyring
	// ProbeTimeout bounds the call that checks whether a keyring service answers;
	// zero means 5 seconds. A keyring that does not answer in time counts as absent.
	ProbeTimeout time.Duration

	scryptLogN int // tests only: the cost of a new file's key derivation; 0 means defaultScryptLogN
}

// Secrets keeps small secrets (API keys) by name, in the OS
// keyring where a keyring service runs, else in an encrypted file (SecretsFileName in
// the data dir, mode 0600). Values never reach SQLite, logs or error messages; names are
// not secret (they are visible in the file) and match [a-z0-9][a-z0-9._-]{0,127}.
// Open one Secrets per process and share it: it is safe for concurrent use, and it asks
// for the passphrase once.
//
// The file holds a scrypt salt and parameters, a verification record sealed under the
// derived key (so a wrong passphrase is told apart from a damaged file), and each value
// sealed with AES-256-GCM under its own random nonce, with the name as additional data
// so values cannot be swapped between names. It is replaced atomically (temp + rename).
//
// The wallet (storage/wallet) shares the OS keyring with these values but, where no
// keyring service runs, keeps its key in a V3 keystore file of its own (wallet.json),
// sealed with the same passphrase.
type Secrets struct {
	mu      sync.Mutex
	backend string
	ring    Keyring // set for BackendKeyring
	file    *secretsFile
}

// OpenSecrets opens the secret store for the data dir. Unless opts.ForceFile is set, it
// asks the keyring once for a probe item that never exists: "not found" means a keyring
// service runs and is used; any other answer (no D-Bus session, no service, a timeout)
// means the encrypted file in dir. An existing file in dir is always used, so values
// kept there do not disappear when a keyring service starts running later.
func OpenSecrets(dir string, opts SecretsOptions) (*Secrets, error) {
	f, exists, err := newSecretsFile(dir, opts)
	if err != nil {
		return nil, err
	}
	if opts.ForceFile || exists {
		return &Secrets{backend: BackendFile, file: f}, nil
	}
	ring := opts.Keyring
	if ring == nil {
		ring = osKeyring{}
	}
	timeout := opts.ProbeTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	if keyringAnswers(ring, timeout) {
		return &Secrets{backend: BackendKeyring, ring: ring}, nil
	}
	return &Secrets{backend: BackendFile, file: f}, nil
}

// probeName is the keyring item asked for by the probe; it can never be a valid name.
const probeName = "_probe"

// keyringAnswers reports whether the keyring answers a Get with a value or "not found"
// within timeout.
func keyringAnswers(ring Keyring, timeout time.Duration) bool {
	done := make(chan error, 1)
	go func() {
		_, err := ring.Get(SecretsService, probeName)
		done <- err
	}()
	select {
	case err := <-done:
		return err == nil || isNotFound(err)
	case <-time.After(timeout):
		return false
	}
}

func isNotFound(err error) bool {
	return errors.Is(err, keyring.ErrNotFound) || errors.Is(err, ErrSecretNotFound)
}

// Backend says where the values are kept: BackendKeyring or BackendFile.
func (s *Secrets) Backend() string { return s.backend }

var secretName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`)

// ValidSecretName reports whether name can name a secret: lower-case letters, digits,
// '.', '_' and '-', starting with a letter or digit, at most 128 bytes.
func ValidSecretName(name string) bool { return secretName.MatchString(name) }

func checkName(action, name string) error {
	if !ValidSecretName(name) {
		return fmt.Errorf("%s secret %q: invalid name (want [a-z0-9][a-z0-9._-]*, at most 128 bytes)", action, name)
	}
	return nil
}

// Get returns the value of the secret name, or an error matching ErrSecretNotFound.
// With the encrypted file it may ask for the passphrase (ErrLocked, ErrWrongPassphrase).
// ctx bounds the wait for the keyring service and is checked before the passphrase is
// asked for.
func (s *Secrets) Get(ctx context.Context, name string) (string, error) {
	if err := checkName("read", name); err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("read secret %q: %w", name, err)
	}
	if s.backend == BackendFile {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.file.get(ctx, name)
	}
	type result struct {
		v   string
		err error
	}
	done := make(chan result, 1)
	go func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		v, err := s.ring.Get(SecretsService, name)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		if isNotFound(r.err) {
			return "", fmt.Errorf("read secret %q: %w", name, ErrSecretNotFound)
		}
		if r.err != nil {
			return "", fmt.Errorf("read secret %q from the os keyring: %w", name, r.err)
		}
		return r.v, nil
	case <-ctx.Done():
		return "", fmt.Errorf("read secret %q from the os keyring: %w", name, ctx.Err())
	}
}

// Set stores value under name, replacing any earlier value. The value must not be empty.
func (s *Secrets) Set(name, value string) error {
	if err := checkName("store", name); err != nil {
		return err
	}
	if value == "" {
		return fmt.Errorf("store secret %q: empty value", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.backend == BackendFile {
		return s.file.set(name, value)
	}
	if err := s.ring.Set(SecretsService, name, value); err != nil {
		return fmt.Errorf("store secret %q in the os keyring: %w", name, err)
	}
	return nil
}

// Delete removes the secret name; removing a secret that does not exist is not an error.
// It never needs the passphrase.
func (s *Secrets) Delete(name string) error {
	if err := checkName("delete", name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.backend == BackendFile {
		return s.file.delete(name)
	}
	if err := s.ring.Delete(SecretsService, name); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete secret %q from the os keyring: %w", name, err)
	}
	return nil
}

// Unlock makes sure the values can be read: with the encrypted file it asks for the
// passphrase (when none is held yet) and checks it against the file, returning an error
// matching ErrLocked or ErrWrongPassphrase; with no file yet, or with the OS keyring, it
// has nothing to check and returns nil.
func (s *Secrets) Unlock() error {
	if s.backend != BackendFile {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.file.unlock()
}
