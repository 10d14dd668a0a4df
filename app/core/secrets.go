package core

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/gata-contrib/gata/storage"
)

// SecretStore keeps secrets outside the database: providers' API keys under
// ChatKeyName(provider), the wallet key. It is the OS keyring, or an encrypted file where
// no keyring service runs. Get of a name never stored returns an error matching
// storage.ErrSecretNotFound; reading or writing the file needs the passphrase
// (storage.ErrLocked, storage.ErrWrongPassphrase).
type SecretStore interface {
	Get(ctx context.Context, name string) (string, error)
	Set(name, value string) error
	Delete(name string) error
	// Backend is storage.BackendKeyring or storage.BackendFile.
	Backend() string
	// Unlock checks the passphrase against an existing file (nil for the keyring).
	Unlock() error
}

var (
	// ErrNoSecrets: no secret store is configured, so keys can come from environment
	// variables only.
	ErrNoSecrets = errors.New("no secret store: keys can only come from environment variables")
	// ErrSecretsLocked: the encrypted secrets file needs its passphrase (UnlockSecrets).
	ErrSecretsLocked = storage.ErrLocked
	// ErrWrongPassphrase: the passphrase does not open the encrypted secrets file.
	ErrWrongPassphrase = storage.ErrWrongPassphrase
)

// SecretsInfo says where secrets are kept and whether a passphrase is still needed.
type SecretsInfo struct {
	Available bool   `json:"available"` // a secret store is configured
	Backend   string `json:"backend"`   // SecretsKeyring or SecretsFile
	// Locked: the encrypted file is used and no passphrase is known yet; call
	// UnlockSecrets before storing or reading a key.
	Locked bool `json:"locked"`
}

// Where secrets are kept (SecretsInfo.Backend).
const (
	SecretsKeyring = storage.BackendKeyring
	SecretsFile    = storage.BackendFile
)

// secretsState holds the passphrase given through UnlockSecrets.
type secretsState struct {
	mu   sync.Mutex
	pass string
}

// Secrets tells where secrets are kept and whether they are locked.
func (c *Core) Secrets(ctx context.Context) SecretsInfo {
	if c.opts.Secrets == nil {
		return SecretsInfo{}
	}
	info := SecretsInfo{Available: true, Backend: c.opts.Secrets.Backend()}
	if info.Backend == storage.BackendFile {
		c.secrets.mu.Lock()
		info.Locked = c.secrets.pass == "" && c.opts.Passphrase == nil
		c.secrets.mu.Unlock()
	}
	return info
}

// UnlockSecrets gives the passphrase of the encrypted secrets file (where no keyring
// service runs). It is checked against an existing file: a wrong one returns an error
// matching storage.ErrWrongPassphrase and is not kept. The first passphrase given for a
// new file becomes its passphrase.
func (c *Core) UnlockSecrets(ctx context.Context, passphrase string) error {
	if c.opts.Secrets == nil {
		return ErrNoSecrets
	}
	if passphrase == "" {
		return fmt.Errorf("unlock secrets: the passphrase is empty: %w", ErrSecretsLocked)
	}
	c.secrets.mu.Lock()
	old := c.secrets.pass
	c.secrets.pass = passphrase
	c.secrets.mu.Unlock()
	if err := c.opts.Secrets.Unlock(); err != nil {
		c.secrets.mu.Lock()
		if c.secrets.pass == passphrase {
			c.secrets.pass = old
		}
		c.secrets.mu.Unlock()
		return fmt.Errorf("unlock secrets: %w", err)
	}
	return nil
}

// Passphrase answers the secret store's request for the passphrase of its encrypted
// file: the one given through UnlockSecrets, else Options.Passphrase (the environment
// or a terminal prompt), else "" (locked). The composition root hands it to the store;
// the UIs never call it.
func (c *Core) Passphrase() (string, error) {
	c.secrets.mu.Lock()
	pass := c.secrets.pass
	c.secrets.mu.Unlock()
	if pass != "" || c.opts.Passphrase == nil {
		return pass, nil
	}
	return c.opts.Passphrase()
}
