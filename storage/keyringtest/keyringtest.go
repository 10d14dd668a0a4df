// Package keyringtest is an in-memory OS keyring for tests: it stands where
// storage.SecretsOptions.Keyring takes the Secret Service, Keychain or Credential
// Manager, which tests cannot reach (headless Linux has no D-Bus session).
package keyringtest

import (
	"sync"

	"github.com/gata-contrib/gata/storage"
)

// Keyring keeps items in memory; the zero value is empty and ready. Safe for concurrent use.
type Keyring struct {
	mu    sync.Mutex
	items map[string]string
}

// Get returns the item, or storage.ErrSecretNotFound.
func (k *Keyring) Get(service, user string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.items[service+"/"+user]
	if !ok {
		return "", storage.ErrSecretNotFound
	}
	return v, nil
}

// Set stores the item.
func (k *Keyring) Set(service, user, password string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.items == nil {
		k.items = map[string]string{}
	}
	k.items[service+"/"+user] = password
	return nil
}

// Delete removes the item, or returns storage.ErrSecretNotFound.
func (k *Keyring) Delete(service, user string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.items[service+"/"+user]; !ok {
		return storage.ErrSecretNotFound
	}
	delete(k.items, service+"/"+user)
	return nil
}

// Len is how many items are kept.
func (k *Keyring) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.items)
}
