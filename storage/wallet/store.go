package wallet

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/ethereum/go-ethereum/common"

	"github.com/gata-contrib/gata/storage"
)

// SecretName is the name the key is kept under in the OS keyring (64 hex digits).
const SecretName = "wallet.key"

// KeystoreFile is the V3 keystore's name in the data dir, used where no keyring
// service runs (headless Linux, CI).
const KeystoreFile = "wallet.json"

// Where the key is kept (Status.Where).
const (
	WhereKeyring = "os keyring"
	WhereFile    = "keystore file"
)

var (
	// ErrNoWallet is returned when no key is stored yet.
	ErrNoWallet = errors.New("no wallet yet: create one ('gata wallet new') or import one ('gata wallet import')")
	// ErrExists is returned by Save when a key is stored already and replace is false.
	ErrExists = errors.New("a wallet exists already")
	// ErrLocked is returned when the keystore file has to be opened or written and no
	// passphrase can be had.
	ErrLocked = errors.New("the wallet keystore is locked: no passphrase")
	// ErrWrongPassphrase is returned when the passphrase does not open the keystore.
	ErrWrongPassphrase = errors.New("wrong passphrase for the wallet keystore")
)

// Secrets is the part of the secret store (storage.Secrets) the wallet uses when it
// is the OS keyring.
type Secrets interface {
	Get(ctx context.Context, name string) (string, error)
	Set(name, value string) error
	Delete(name string) error
	Backend() string // storage.BackendKeyring or storage.BackendFile
}

// StoreOptions configure NewStore.
type StoreOptions struct {
	// Dir is the data dir, where the keystore file lives.
	Dir string
	// Secrets is the secret store. When it is the OS keyring the key is kept there;
	// nil, or the encrypted-file backend, means the keystore file.
	Secrets Secrets
	// Passphrase gives the keystore file's passphrase (the secrets file's one, so the
	// user is asked once); nil or "" means ErrLocked.
	Passphrase func() (string, error)
	// ScryptN is the keystore file's scrypt cost; 0 means StandardScryptN.
	ScryptN int
}

// Store keeps the one wallet key of a data dir: in the OS keyring when the secret
// store is the keyring, else as a V3 keystore file (KeystoreFile, mode 0600) sealed
// with the passphrase. A keystore file that exists is always used, so a key kept there
// does not vanish when a keyring service starts running later. Safe for concurrent use.
type Store struct {
	opts StoreOptions
	mu   sync.Mutex
}

// NewStore returns the wallet store of opts.Dir.
func NewStore(opts StoreOptions) *Store {
	if opts.ScryptN == 0 {
		opts.ScryptN = StandardScryptN
	}
	return &Store{opts: opts}
}

// Status says whether a key is stored, its address and where it is kept.
type Status struct {
	Exists  bool
	Address common.Address // zero when !Exists
	Where   string         // WhereKeyring or WhereFile: where it is, or would be, kept
	Path    string         // the keystore file, for WhereFile
}

// KeystorePath is the keystore file's path.
func (s *Store) KeystorePath() string { return filepath.Join(s.opts.Dir, KeystoreFile) }

// useFile reports whether the key is (or would be) in the keystore file.
func (s *Store) useFile() (bool, error) {
	_, err := os.Stat(s.KeystorePath())
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("read wallet keystore: %w", err)
	}
	return s.opts.Secrets == nil || s.opts.Secrets.Backend() != storage.BackendKeyring, nil
}

// Status reads where the key is and its address. The keystore file's address is read
// without the passphrase; the keyring's key is read (no passphrase is involved there).
func (s *Store) Status(ctx context.Context) (Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	file, err := s.useFile()
	if err != nil {
		return Status{}, err
	}
	if file {
		st := Status{Where: WhereFile, Path: s.KeystorePath()}
		b, err := s.readFile()
		if errors.Is(err, ErrNoWallet) {
			return st, nil
		}
		if err != nil {
			return Status{}, err
		}
		a, err := keystoreAddress(b)
		if err != nil {
			return Status{}, fmt.Errorf("read wallet keystore %q: %w", st.Path, err)
		}
		st.Exists, st.Address = true, a
		return st, nil
	}
	st := Status{Where: WhereKeyring}
	k, err := s.loadKeyring(ctx)
	if errors.Is(err, ErrNoWallet) {
		return st, nil
	}
	if err != nil {
		return Status{}, err
	}
	st.Exists, st.Address = true, k.Address()
	return st, nil
}

// Load returns the stored key, or ErrNoWallet. The keystore file asks for the
// passphrase (ErrLocked, ErrWrongPassphrase).
func (s *Store) Load(ctx context.Context) (*Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("load wallet: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	file, err := s.useFile()
	if err != nil {
		return nil, err
	}
	if !file {
		return s.loadKeyring(ctx)
	}
	b, err := s.readFile()
	if err != nil {
		return nil, err
	}
	want, err := keystoreAddress(b)
	if err != nil {
		return nil, fmt.Errorf("read wallet keystore %q: %w", s.KeystorePath(), err)
	}
	pass, err := s.passphrase()
	if err != nil {
		return nil, err
	}
	k, err := FromKeystore(b, pass)
	if err != nil {
		return nil, fmt.Errorf("open wallet keystore %q: %w", s.KeystorePath(), err)
	}
	if k.Address() != want {
		return nil, fmt.Errorf("open wallet keystore %q: damaged: it names %s but holds the key of %s", s.KeystorePath(), want.Hex(), k.Address().Hex())
	}
	return k, nil
}

func (s *Store) loadKeyring(ctx context.Context) (*Key, error) {
	v, err := s.opts.Secrets.Get(ctx, SecretName)
	if errors.Is(err, storage.ErrSecretNotFound) {
		return nil, ErrNoWallet
	}
	if err != nil {
		return nil, fmt.Errorf("load wallet from the os keyring: %w", err)
	}
	k, err := FromHex(v)
	if err != nil {
		return nil, fmt.Errorf("load wallet from the os keyring: the item %q is damaged: %w", SecretName, err)
	}
	return k, nil
}

// Save stores k. With a key stored already it returns ErrExists unless replace.
func (s *Store) Save(ctx context.Context, k *Key, replace bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	file, err := s.useFile()
	if err != nil {
		return err
	}
	if file {
		if _, err := s.readFile(); err == nil && !replace {
			return ErrExists
		} else if err != nil && !errors.Is(err, ErrNoWallet) {
			return err
		}
		pass, err := s.passphrase()
		if err != nil {
			return err
		}
		b, err := k.Keystore(pass, s.opts.ScryptN)
		if err != nil {
			return fmt.Errorf("save wallet: %w", err)
		}
		return s.writeFile(b)
	}
	if !replace {
		_, err := s.loadKeyring(ctx)
		if err == nil {
			return ErrExists
		}
		if !errors.Is(err, ErrNoWallet) {
			return err
		}
	}
	if err := s.opts.Secrets.Set(SecretName, hex.EncodeToString(k.priv.D.FillBytes(make([]byte, 32)))); err != nil {
		return fmt.Errorf("save wallet in the os keyring: %w", err)
	}
	return nil
}

// Remove deletes the stored key (the keystore file, and the keyring item when the
// keyring is the store); removing no key is not an error.
func (s *Store) Remove() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(s.KeystorePath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove wallet keystore: %w", err)
	}
	if s.opts.Secrets != nil && s.opts.Secrets.Backend() == storage.BackendKeyring {
		if err := s.opts.Secrets.Delete(SecretName); err != nil {
			return fmt.Errorf("remove wallet from the os keyring: %w", err)
		}
	}
	return nil
}

func (s *Store) passphrase() (string, error) {
	if s.opts.Passphrase == nil {
		return "", ErrLocked
	}
	p, err := s.opts.Passphrase()
	if err != nil {
		return "", fmt.Errorf("wallet passphrase: %w", err)
	}
	if p == "" {
		return "", ErrLocked
	}
	return p, nil
}

// maxKeystore bounds the keystore file read (a real one is about 500 bytes).
const maxKeystore = 64 << 10

func (s *Store) readFile() ([]byte, error) {
	b, err := os.ReadFile(s.KeystorePath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoWallet
	}
	if err != nil {
		return nil, fmt.Errorf("read wallet keystore: %w", err)
	}
	if len(b) > maxKeystore {
		return nil, fmt.Errorf("read wallet keystore %q: damaged (%d bytes)", s.KeystorePath(), len(b))
	}
	return b, nil
}

// writeFile replaces the keystore file atomically: a 0600 temp file in the same
// folder, synced, then renamed over the old one.
func (s *Store) writeFile(b []byte) error {
	if err := os.MkdirAll(s.opts.Dir, 0o700); err != nil {
		return fmt.Errorf("save wallet keystore: %w", err)
	}
	tmp, err := os.CreateTemp(s.opts.Dir, ".wallet-*.tmp")
	if err != nil {
		return fmt.Errorf("save wallet keystore: %w", err)
	}
	name := tmp.Name()
	fail := func(err error) error {
		tmp.Close()
		os.Remove(name)
		return fmt.Errorf("save wallet keystore: %w", err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := tmp.Write(b); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(name, s.KeystorePath()); err != nil {
		os.Remove(name)
		return fmt.Errorf("save wallet keystore: %w", err)
	}
	return nil
}

// keystoreAddress reads the plain address field of a V3 keystore.
func keystoreAddress(b []byte) (common.Address, error) {
	var doc struct {
		Address string `json:"address"`
		Version int    `json:"version"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return common.Address{}, fmt.Errorf("damaged (%v)", err)
	}
	if doc.Version != 3 {
		return common.Address{}, fmt.Errorf("damaged: version %d, want 3", doc.Version)
	}
	a, err := ParseAddress("0x" + doc.Address)
	if err != nil {
		return common.Address{}, fmt.Errorf("damaged: %v", err)
	}
	return a, nil
}
