package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/term"

	"github.com/gata-contrib/gata/storage"
)

// lazySecrets is the secret store of the data dir, opened on first use: most commands
// never touch a secret, and opening asks the OS keyring service whether it runs.
type lazySecrets struct {
	dir  string
	opts storage.SecretsOptions

	once sync.Once
	s    *storage.Secrets
	err  error
}

func (l *lazySecrets) open() (*storage.Secrets, error) {
	l.once.Do(func() {
		l.s, l.err = storage.OpenSecrets(l.dir, l.opts)
		if l.err != nil {
			l.err = fmt.Errorf("open the secret store: %w", l.err)
		}
	})
	return l.s, l.err
}

func (l *lazySecrets) Get(ctx context.Context, name string) (string, error) {
	s, err := l.open()
	if err != nil {
		return "", err
	}
	return s.Get(ctx, name)
}

func (l *lazySecrets) Set(name, value string) error {
	s, err := l.open()
	if err != nil {
		return err
	}
	return s.Set(name, value)
}

func (l *lazySecrets) Delete(name string) error {
	s, err := l.open()
	if err != nil {
		return err
	}
	return s.Delete(name)
}

func (l *lazySecrets) Unlock() error {
	s, err := l.open()
	if err != nil {
		return err
	}
	return s.Unlock()
}

// Backend is where secrets are kept; "file" when the store cannot even be opened (the
// error comes back from the first Get or Set).
func (l *lazySecrets) Backend() string {
	s, err := l.open()
	if err != nil {
		return storage.BackendFile
	}
	return s.Backend()
}

// PassphraseEnv names the environment variable holding the passphrase of the encrypted
// secrets file (used where no keyring service runs).
const PassphraseEnv = "GATA_PASSPHRASE"

// envPassphrase returns $GATA_PASSPHRASE, or nil when it is not set.
func envPassphrase() func() (string, error) {
	if os.Getenv(PassphraseEnv) == "" {
		return nil
	}
	return func() (string, error) { return os.Getenv(PassphraseEnv), nil }
}

// terminalPassphrase asks for the passphrase on the terminal without echo (twice for a
// file not created yet), after $GATA_PASSPHRASE. Without a terminal it says how to give one.
func terminalPassphrase(dataDir string, in io.Reader, out io.Writer) func() (string, error) {
	return func() (string, error) {
		if v := os.Getenv(PassphraseEnv); v != "" {
			return v, nil
		}
		f, ok := in.(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			return "", fmt.Errorf("no keyring service runs, so secrets are kept in an encrypted file: set %s to its passphrase", PassphraseEnv)
		}
		_, err := os.Stat(filepath.Join(dataDir, storage.SecretsFileName))
		isNew := errors.Is(err, fs.ErrNotExist)
		prompt := "Passphrase of the secrets file: "
		if isNew {
			prompt = "No keyring service runs: choose a passphrase for the encrypted secrets file: "
		}
		pass, err := readHidden(f, out, prompt)
		if err != nil || !isNew || pass == "" {
			return pass, err
		}
		again, err := readHidden(f, out, "Repeat the passphrase: ")
		if err != nil {
			return "", err
		}
		if again != pass {
			return "", errors.New("the two passphrases differ")
		}
		return pass, nil
	}
}

func readHidden(f *os.File, out io.Writer, prompt string) (string, error) {
	fmt.Fprint(out, prompt)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(out)
	if err != nil {
		return "", fmt.Errorf("read the passphrase: %w", err)
	}
	return string(b), nil
}
