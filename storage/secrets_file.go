package storage

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/crypto/scrypt"
)

// SecretsFileName is the encrypted file's name inside the data dir.
const SecretsFileName = "secrets.json"

const (
	secretsFileVersion = 1
	defaultScryptLogN  = 17 // N = 2^17, r = 8, p = 1: 128 MiB and a fraction of a second, once per process
	scryptR            = 8
	scryptP            = 1
	minScryptLogN      = 10 // files written by tests; lower is refused
	maxScryptLogN      = 20 // 1 GiB; higher is refused rather than exhausting memory
	saltLen            = 32
	keyLen             = 32 // AES-256
	checkAD            = "gata secrets file check"
	valueADPrefix      = "gata secret:"
)

// checkPlain is sealed in every file so that a wrong passphrase is recognised.
var checkPlain = []byte("gata-secrets-v1")

// secretsDoc is the file's JSON; []byte fields are base64.
type secretsDoc struct {
	Version int               `json:"version"`
	KDF     string            `json:"kdf"`
	Params  kdfParams         `json:"kdfparams"`
	Check   sealed            `json:"check"`
	Secrets map[string]sealed `json:"secrets"`
}

type kdfParams struct {
	N    int    `json:"n"`
	R    int    `json:"r"`
	P    int    `json:"p"`
	Salt []byte `json:"salt"`
}

type sealed struct {
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ciphertext"`
}

// secretsFile is the encrypted-file backend; the caller (Secrets) serialises access.
// The file is read again by every call, so values set by another process are seen.
type secretsFile struct {
	dir, path  string
	passphrase func() (string, error)
	logN       int

	pass    string // the passphrase that last opened the file; "" until then
	keySalt []byte // salt and N that key was derived with
	keyN    int
	key     []byte
}

// newSecretsFile checks the file in dir if there is one (a damaged file is an error at
// once) and tightens its mode to 0600.
func newSecretsFile(dir string, opts SecretsOptions) (*secretsFile, bool, error) {
	logN := opts.scryptLogN
	if logN == 0 {
		logN = defaultScryptLogN
	}
	f := &secretsFile{dir: dir, path: filepath.Join(dir, SecretsFileName), passphrase: opts.Passphrase, logN: logN}
	doc, err := f.read()
	if err != nil || doc == nil {
		return f, false, err
	}
	if info, err := os.Stat(f.path); err == nil && info.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(f.path, 0o600); err != nil {
			return nil, true, fmt.Errorf("restrict secrets file %q to its owner: %w", f.path, err)
		}
	}
	return f, true, nil
}

// read returns the parsed file, or nil when there is none.
func (f *secretsFile) read() (*secretsDoc, error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read secrets file: %w", err)
	}
	var doc secretsDoc
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("read secrets file %q: damaged (%v)", f.path, err)
	}
	if err := doc.validate(); err != nil {
		return nil, fmt.Errorf("read secrets file %q: damaged (%v)", f.path, err)
	}
	return &doc, nil
}

func (d *secretsDoc) validate() error {
	if d.Version != secretsFileVersion {
		return fmt.Errorf("version %d, want %d", d.Version, secretsFileVersion)
	}
	if d.KDF != "scrypt" {
		return fmt.Errorf("kdf %q, want scrypt", d.KDF)
	}
	p := d.Params
	if p.N < 1<<minScryptLogN || p.N > 1<<maxScryptLogN || p.N&(p.N-1) != 0 {
		return fmt.Errorf("scrypt n %d out of range", p.N)
	}
	if p.R != scryptR || p.P != scryptP {
		return fmt.Errorf("scrypt r=%d p=%d, want r=%d p=%d", p.R, p.P, scryptR, scryptP)
	}
	if len(p.Salt) < 16 {
		return errors.New("salt too short")
	}
	if err := d.Check.validate(); err != nil {
		return fmt.Errorf("check record: %v", err)
	}
	for name, s := range d.Secrets {
		if !ValidSecretName(name) {
			return fmt.Errorf("invalid name %q", name)
		}
		if err := s.validate(); err != nil {
			return fmt.Errorf("secret %q: %v", name, err)
		}
	}
	return nil
}

func (s sealed) validate() error {
	if len(s.Nonce) != 12 {
		return fmt.Errorf("nonce of %d bytes, want 12", len(s.Nonce))
	}
	if len(s.Ciphertext) < 16 {
		return errors.New("ciphertext too short")
	}
	return nil
}

// aead derives (or reuses) the key for doc's salt and parameters, asking for the
// passphrase the first time, and checks it against the verification record.
func (f *secretsFile) aead(doc *secretsDoc) (cipher.AEAD, error) {
	if f.key != nil && f.keyN == doc.Params.N && bytes.Equal(f.keySalt, doc.Params.Salt) {
		return checkedAEAD(f.key, doc)
	}
	pass := f.pass
	if pass == "" {
		var err error
		if pass, err = f.ask(); err != nil {
			return nil, err
		}
	}
	key, err := deriveKey(pass, doc.Params)
	if err != nil {
		return nil, err
	}
	a, err := checkedAEAD(key, doc)
	if err != nil {
		if errors.Is(err, ErrWrongPassphrase) {
			f.pass, f.key = "", nil // ask again next time
		}
		return nil, err
	}
	f.pass, f.key, f.keySalt, f.keyN = pass, key, doc.Params.Salt, doc.Params.N
	return a, nil
}

func (f *secretsFile) ask() (string, error) {
	if f.passphrase == nil {
		return "", fmt.Errorf("unlock secrets file: %w", ErrLocked)
	}
	pass, err := f.passphrase()
	if err != nil {
		return "", fmt.Errorf("unlock secrets file: ask for the passphrase: %w", err)
	}
	if pass == "" {
		return "", fmt.Errorf("unlock secrets file: %w", ErrLocked)
	}
	return pass, nil
}

func deriveKey(pass string, p kdfParams) ([]byte, error) {
	key, err := scrypt.Key([]byte(pass), p.Salt, p.N, p.R, p.P, keyLen)
	if err != nil {
		return nil, fmt.Errorf("derive secrets file key: %w", err)
	}
	return key, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("set up secrets cipher: %w", err)
	}
	a, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("set up secrets cipher: %w", err)
	}
	return a, nil
}

func checkedAEAD(key []byte, doc *secretsDoc) (cipher.AEAD, error) {
	a, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	plain, err := a.Open(nil, doc.Check.Nonce, doc.Check.Ciphertext, []byte(checkAD))
	if err != nil || !bytes.Equal(plain, checkPlain) {
		return nil, fmt.Errorf("unlock secrets file: %w", ErrWrongPassphrase)
	}
	return a, nil
}

func seal(a cipher.AEAD, plain []byte, ad string) (sealed, error) {
	nonce := make([]byte, a.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return sealed{}, fmt.Errorf("make nonce: %w", err)
	}
	return sealed{Nonce: nonce, Ciphertext: a.Seal(nil, nonce, plain, []byte(ad))}, nil
}

func (f *secretsFile) get(ctx context.Context, name string) (string, error) {
	doc, err := f.read()
	if err != nil {
		return "", err
	}
	if doc == nil {
		return "", fmt.Errorf("read secret %q: %w", name, ErrSecretNotFound)
	}
	s, ok := doc.Secrets[name]
	if !ok {
		return "", fmt.Errorf("read secret %q: %w", name, ErrSecretNotFound)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("read secret %q: %w", name, err)
	}
	a, err := f.aead(doc)
	if err != nil {
		return "", fmt.Errorf("read secret %q: %w", name, err)
	}
	plain, err := a.Open(nil, s.Nonce, s.Ciphertext, []byte(valueADPrefix+name))
	if err != nil {
		return "", fmt.Errorf("read secret %q: damaged in secrets file %q", name, f.path)
	}
	return string(plain), nil
}

func (f *secretsFile) set(name, value string) error {
	doc, err := f.read()
	if err != nil {
		return err
	}
	if doc == nil {
		if doc, err = f.create(); err != nil {
			return fmt.Errorf("store secret %q: %w", name, err)
		}
	}
	a, err := f.aead(doc)
	if err != nil {
		return fmt.Errorf("store secret %q: %w", name, err)
	}
	s, err := seal(a, []byte(value), valueADPrefix+name)
	if err != nil {
		return fmt.Errorf("store secret %q: %w", name, err)
	}
	if doc.Secrets == nil {
		doc.Secrets = map[string]sealed{}
	}
	doc.Secrets[name] = s
	if err := f.write(doc); err != nil {
		return fmt.Errorf("store secret %q: %w", name, err)
	}
	return nil
}

// create makes the header of a new file (salt, parameters, check record) and caches its
// key; nothing is written until the first value is.
func (f *secretsFile) create() (*secretsDoc, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("make salt: %w", err)
	}
	doc := &secretsDoc{
		Version: secretsFileVersion,
		KDF:     "scrypt",
		Params:  kdfParams{N: 1 << f.logN, R: scryptR, P: scryptP, Salt: salt},
		Secrets: map[string]sealed{},
	}
	pass, err := f.ask()
	if err != nil {
		return nil, err
	}
	key, err := deriveKey(pass, doc.Params)
	if err != nil {
		return nil, err
	}
	a, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	if doc.Check, err = seal(a, checkPlain, checkAD); err != nil {
		return nil, err
	}
	f.pass, f.key, f.keySalt, f.keyN = pass, key, salt, doc.Params.N
	return doc, nil
}

func (f *secretsFile) delete(name string) error {
	doc, err := f.read()
	if err != nil {
		return err
	}
	if doc == nil {
		return nil
	}
	if _, ok := doc.Secrets[name]; !ok {
		return nil
	}
	delete(doc.Secrets, name)
	if err := f.write(doc); err != nil {
		return fmt.Errorf("delete secret %q: %w", name, err)
	}
	return nil
}

// write replaces the file atomically: a 0600 temp file in the same folder, synced, then
// renamed over the old one.
func (f *secretsFile) write(doc *secretsDoc) error {
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("encode secrets file: %w", err)
	}
	b = append(b, '\n')
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		return fmt.Errorf("create secrets folder: %w", err)
	}
	tmp, err := os.CreateTemp(f.dir, "."+SecretsFileName+".*.tmp")
	if err != nil {
		return fmt.Errorf("write secrets file: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if err := tmp.Chmod(0o600); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		tmp.Close()
		return fmt.Errorf("write secrets file: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write secrets file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write secrets file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write secrets file: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return fmt.Errorf("write secrets file: %w", err)
	}
	if d, err := os.Open(f.dir); err == nil { // make the rename durable where the OS allows
		d.Sync()
		d.Close()
	}
	return nil
}

// unlock checks the passphrase against an existing file (asking for it when no key is
// derived yet); with no file there is nothing to check.
func (f *secretsFile) unlock() error {
	doc, err := f.read()
	if err != nil || doc == nil {
		return err
	}
	_, err = f.aead(doc)
	return err
}
