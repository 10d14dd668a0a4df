package core

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gata-contrib/gata/storage/wallet"
)

// Errors of the wallet methods that callers branch on.
var (
	// ErrNoWallet: no wallet is stored yet.
	ErrNoWallet = wallet.ErrNoWallet
	// ErrWalletExists: a wallet is stored already; importing over it needs Replace.
	ErrWalletExists = errors.New("a wallet exists already (import with replace to swap it; export it first to keep it)")
	// ErrBadWallet: the words, the key or the request are not valid.
	ErrBadWallet = errors.New("bad wallet request")
	// ErrNotConfirmed: the confirmation words do not match, or no new wallet waits for them.
	ErrNotConfirmed = errors.New("wallet not confirmed")
	// ErrExportNotConfirmed: ExportWallet was called without its explicit confirmation.
	ErrExportNotConfirmed = errors.New("exporting the private key needs an explicit confirmation")
)

func walletBad(err error) error { return markedError{err: err, mark: ErrBadWallet} }

// WalletInfo says whether there is a wallet, its address and where its key is kept.
// It never holds the key.
type WalletInfo struct {
	Exists  bool   `json:"exists"`
	Address string `json:"address,omitempty"` // EIP-55 checksummed
	// Where is "os keyring" or "keystore file" (an Ethereum V3 keystore in the data
	// folder, sealed with the passphrase, where no keyring service runs).
	Where string `json:"where"`
	Path  string `json:"path,omitempty"` // the keystore file
	// Locked: the keystore file needs the passphrase (UnlockSecrets) before signing.
	Locked bool `json:"locked"`
	// Pending: CreateWallet made words that wait for ConfirmWallet.
	Pending bool `json:"pending"`
}

// NewWallet is a wallet made by CreateWallet, shown once and saved by ConfirmWallet.
type NewWallet struct {
	Words   []string `json:"words"`   // the MnemonicWords BIP-39 words, in order
	Address string   `json:"address"` // the address they give
	// Confirm are the positions (1-based) of the words ConfirmWallet asks back.
	Confirm []int `json:"confirm"`
}

// WalletImport imports a wallet from BIP-39 words or a hex private key (one of them).
type WalletImport struct {
	Mnemonic   string `json:"mnemonic,omitempty"`
	PrivateKey string `json:"private_key,omitempty"`
	// Replace swaps a stored wallet for this one (its key is gone unless exported).
	Replace bool `json:"replace,omitempty"`
}

// WalletExport asks for the private key.
type WalletExport struct {
	Format string `json:"format"` // "hex" or "keystore" (Ethereum V3 JSON)
	// Confirm must be true: the caller showed the user that whoever holds the key owns
	// the wallet.
	Confirm bool `json:"confirm"`
	// Passphrase seals the keystore; "" means the app's passphrase (UnlockSecrets,
	// $GATA_PASSPHRASE or the terminal prompt).
	Passphrase string `json:"passphrase,omitempty"`
}

// Export formats.
const (
	ExportHex      = "hex"
	ExportKeystore = "keystore"
)

// confirmWords is how many words ConfirmWallet asks back.
const confirmWords = 3

// pendingTTL is how long words from CreateWallet wait for their confirmation.
const pendingTTL = 15 * time.Minute

// walletState holds the wallet made by CreateWallet until it is confirmed.
type walletState struct {
	mu      sync.Mutex
	pending *pendingWallet
}

type pendingWallet struct {
	words   []string
	key     *wallet.Key
	confirm []int
	made    time.Time
}

// walletStore is the wallet's key store: the OS keyring where the secret store is the
// keyring, else the V3 keystore file sealed with the app's passphrase.
func (c *Core) walletStore() *wallet.Store {
	var secrets wallet.Secrets
	if c.opts.Secrets != nil {
		secrets = c.opts.Secrets
	}
	return wallet.NewStore(wallet.StoreOptions{Dir: c.opts.DataDir, Secrets: secrets, Passphrase: c.Passphrase, ScryptN: c.opts.WalletScryptN})
}

// WalletStatus says whether there is a wallet and where its key is kept.
func (c *Core) WalletStatus(ctx context.Context) (WalletInfo, error) {
	st, err := c.walletStore().Status(ctx)
	if err != nil {
		return WalletInfo{}, fmt.Errorf("wallet status: %w", err)
	}
	info := WalletInfo{Exists: st.Exists, Where: st.Where, Path: st.Path}
	if st.Exists {
		info.Address = st.Address.Hex()
	}
	if st.Where == wallet.WhereFile {
		c.secrets.mu.Lock()
		info.Locked = c.secrets.pass == "" && c.opts.Passphrase == nil
		c.secrets.mu.Unlock()
	}
	c.wallet.mu.Lock()
	info.Pending = c.wallet.pending != nil && time.Since(c.wallet.pending.made) < pendingTTL
	c.wallet.mu.Unlock()
	return info, nil
}

// WalletAddress is the wallet's address, or ErrNoWallet.
func (c *Core) WalletAddress(ctx context.Context) (string, error) {
	info, err := c.WalletStatus(ctx)
	if err != nil {
		return "", err
	}
	if !info.Exists {
		return "", ErrNoWallet
	}
	return info.Address, nil
}

// CreateWallet makes a key from MnemonicWords fresh BIP-39 words and returns them,
// with the positions of the words ConfirmWallet must be given. Nothing is saved until
// then; calling CreateWallet again replaces the words waiting. With a wallet stored
// already it returns ErrWalletExists.
func (c *Core) CreateWallet(ctx context.Context) (NewWallet, error) {
	st, err := c.walletStore().Status(ctx)
	if err != nil {
		return NewWallet{}, fmt.Errorf("create wallet: %w", err)
	}
	if st.Exists {
		return NewWallet{}, fmt.Errorf("create wallet: %w", ErrWalletExists)
	}
	m, err := wallet.NewMnemonic()
	if err != nil {
		return NewWallet{}, fmt.Errorf("create wallet: %w", err)
	}
	k, err := wallet.FromMnemonic(m)
	if err != nil {
		return NewWallet{}, fmt.Errorf("create wallet: %w", err)
	}
	words := strings.Fields(m)
	confirm, err := pickPositions(len(words), confirmWords)
	if err != nil {
		return NewWallet{}, fmt.Errorf("create wallet: %w", err)
	}
	c.wallet.mu.Lock()
	c.wallet.pending = &pendingWallet{words: words, key: k, confirm: confirm, made: time.Now()}
	c.wallet.mu.Unlock()
	c.log.Info("wallet created, waiting for its confirmation", "address", k.Address().Hex())
	return NewWallet{Words: slices.Clone(words), Address: k.Address().Hex(), Confirm: slices.Clone(confirm)}, nil
}

// pickPositions returns k distinct positions from 1 to n, in increasing order.
func pickPositions(n, k int) ([]int, error) {
	var out []int
	for len(out) < k {
		r, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
		if err != nil {
			return nil, err
		}
		p := int(r.Int64()) + 1
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out, nil
}

// ConfirmWallet saves the wallet CreateWallet made once words holds, for each position
// it asked for, the word at that position (case and spaces do not matter). A wrong
// word returns ErrNotConfirmed and keeps the wallet waiting, so the user can try again.
func (c *Core) ConfirmWallet(ctx context.Context, words map[int]string) (WalletInfo, error) {
	c.wallet.mu.Lock()
	p := c.wallet.pending
	if p != nil && time.Since(p.made) >= pendingTTL {
		c.wallet.pending, p = nil, nil
	}
	c.wallet.mu.Unlock()
	if p == nil {
		return WalletInfo{}, fmt.Errorf("confirm wallet: no new wallet waits (create one first): %w", ErrNotConfirmed)
	}
	for _, pos := range p.confirm {
		if got := strings.ToLower(strings.TrimSpace(words[pos])); got != p.words[pos-1] {
			return WalletInfo{}, fmt.Errorf("confirm wallet: word %d does not match: %w", pos, ErrNotConfirmed)
		}
	}
	if err := c.walletStore().Save(ctx, p.key, false); err != nil {
		return WalletInfo{}, fmt.Errorf("save wallet: %w", walletErr(err))
	}
	c.wallet.mu.Lock()
	if c.wallet.pending == p {
		c.wallet.pending = nil
	}
	c.wallet.mu.Unlock()
	c.log.Info("wallet saved", "address", p.key.Address().Hex())
	return c.WalletStatus(ctx)
}

// ImportWallet saves a wallet from BIP-39 words (derived along m/44'/60'/0'/0/0) or a
// hex private key. Over a stored wallet it needs in.Replace.
func (c *Core) ImportWallet(ctx context.Context, in WalletImport) (WalletInfo, error) {
	var k *wallet.Key
	var err error
	switch {
	case in.Mnemonic != "" && in.PrivateKey != "":
		return WalletInfo{}, walletBad(errors.New("import wallet: give the words or the private key, not both"))
	case in.Mnemonic != "":
		k, err = wallet.FromMnemonic(in.Mnemonic)
	case in.PrivateKey != "":
		k, err = wallet.FromHex(in.PrivateKey)
	default:
		return WalletInfo{}, walletBad(errors.New("import wallet: the words or the private key are missing"))
	}
	if err != nil {
		return WalletInfo{}, walletBad(fmt.Errorf("import wallet: %w", err))
	}
	if err := c.walletStore().Save(ctx, k, in.Replace); err != nil {
		return WalletInfo{}, fmt.Errorf("import wallet: %w", walletErr(err))
	}
	c.wallet.mu.Lock()
	c.wallet.pending = nil
	c.wallet.mu.Unlock()
	c.log.Info("wallet imported", "address", k.Address().Hex(), "replaced", in.Replace)
	return c.WalletStatus(ctx)
}

// ExportWallet returns the private key, as "0x" and 64 hex digits or as an Ethereum V3
// keystore (JSON), once in.Confirm is set. It is the only call that hands the key out.
func (c *Core) ExportWallet(ctx context.Context, in WalletExport) (string, error) {
	if in.Format == "" {
		in.Format = ExportHex
	}
	if in.Format != ExportHex && in.Format != ExportKeystore {
		return "", walletBad(fmt.Errorf("export wallet: format must be %q or %q, not %q", ExportHex, ExportKeystore, in.Format))
	}
	if !in.Confirm {
		return "", ErrExportNotConfirmed
	}
	k, err := c.loadWallet(ctx)
	if err != nil {
		return "", fmt.Errorf("export wallet: %w", err)
	}
	c.log.Warn("wallet key exported", "address", k.Address().Hex(), "format", in.Format)
	if in.Format == ExportHex {
		return k.ExportHex(), nil
	}
	pass := in.Passphrase
	if pass == "" {
		if pass, err = c.Passphrase(); err != nil {
			return "", fmt.Errorf("export wallet: %w", err)
		}
		if pass == "" {
			return "", fmt.Errorf("export wallet: a passphrase for the keystore is needed: %w", ErrSecretsLocked)
		}
	}
	scryptN := c.opts.WalletScryptN
	if scryptN == 0 {
		scryptN = wallet.StandardScryptN
	}
	b, err := k.Keystore(pass, scryptN)
	if err != nil {
		return "", fmt.Errorf("export wallet: %w", err)
	}
	return string(b), nil
}

// loadWallet reads the key.
func (c *Core) loadWallet(ctx context.Context) (*wallet.Key, error) {
	k, err := c.walletStore().Load(ctx)
	return k, walletErr(err)
}

// walletErr marks the key store's errors with the core's: a locked or wrongly unlocked
// keystore file as the secret store's, a wallet that exists as ErrWalletExists.
func walletErr(err error) error {
	switch {
	case errors.Is(err, wallet.ErrLocked):
		return markedError{err: err, mark: ErrSecretsLocked}
	case errors.Is(err, wallet.ErrWrongPassphrase):
		return markedError{err: err, mark: ErrWrongPassphrase}
	case errors.Is(err, wallet.ErrExists):
		return ErrWalletExists
	}
	return err
}
