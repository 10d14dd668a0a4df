package core

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/gata-contrib/gata/storage"
	"github.com/gata-contrib/gata/storage/greenfield"
	"github.com/gata-contrib/gata/storage/wallet"
)

// Greenfield network settings.
const (
	SettingGreenfieldNetwork = "greenfield.network"  // mainnet, testnet or custom
	SettingGreenfieldChainID = "greenfield.chain_id" // custom network only
	SettingGreenfieldRPC     = "greenfield.rpc"      // custom network only
)

// EventUpload is the event type of an outbox item that changed (state, progress,
// shares). Data: UploadItem.
const EventUpload = "upload"

// ErrNoUploader: this core was built without an uploader (no outbox).
var ErrNoUploader = errors.New("uploads are not available")

// ErrBadShare: the address or the submission of a share request is not valid.
var ErrBadShare = errors.New("bad share request")

// OutboxStore is the outbox part of the database; storage.Store satisfies it.
type OutboxStore interface {
	Outbox(ctx context.Context) ([]storage.OutboxItem, error)
	OutboxItem(ctx context.Context, id int64) (storage.OutboxItem, error)
	OutboxBySubmission(ctx context.Context, submissionID int64) (storage.OutboxItem, error)
	RetryUpload(ctx context.Context, id int64) error
}

// Uploader is the service that takes the outbox to Greenfield; *greenfield.Uploader
// satisfies it.
type Uploader interface {
	Wake()
	Active() int64
	// Blocked returns the lease of another process that does this data folder's uploads.
	Blocked() (storage.Lease, bool)
	Share(ctx context.Context, outboxID int64, address string) error
}

func greenfieldSettingSpecs() []SettingSpec {
	return []SettingSpec{
		{Key: SettingGreenfieldNetwork, Label: "Greenfield network", Kind: KindChoice,
			Choices: []string{greenfield.Mainnet.Name, greenfield.Testnet.Name, greenfield.Custom}, Default: greenfield.Mainnet.Name,
			Help: "Where submissions are uploaded and which chain id they are signed for: BNB Greenfield mainnet, the testnet, or a custom network (chain id and RPC endpoint below)."},
		{Key: SettingGreenfieldChainID, Label: "Greenfield chain id", Kind: KindText, validate: validateChainID,
			Help: "Only for a custom network: its chain id, greenfield_<number>-<number>."},
		{Key: SettingGreenfieldRPC, Label: "Greenfield RPC endpoint", Kind: KindText, validate: validateRPC,
			Help: "Only for a custom network: its CometBFT RPC endpoint, http(s)://host:port."},
	}
}

func validateChainID(v string) error {
	if v == "" {
		return nil
	}
	_, err := greenfield.Network{ChainID: v}.EVMChainID()
	return err
}

func validateRPC(v string) error {
	if v == "" || strings.HasPrefix(v, "http://") || strings.HasPrefix(v, "https://") {
		return nil
	}
	return fmt.Errorf("the RPC endpoint %q must start with http:// or https://", v)
}

// GreenfieldNetwork is the network the settings choose.
func (c *Core) GreenfieldNetwork(ctx context.Context) (greenfield.Network, error) {
	name, err := c.SettingValue(ctx, SettingGreenfieldNetwork)
	if err != nil {
		return greenfield.Network{}, err
	}
	var chainID, rpc string
	if name == greenfield.Custom {
		if chainID, err = c.SettingValue(ctx, SettingGreenfieldChainID); err != nil {
			return greenfield.Network{}, err
		}
		if rpc, err = c.SettingValue(ctx, SettingGreenfieldRPC); err != nil {
			return greenfield.Network{}, err
		}
	}
	return greenfield.ResolveNetwork(name, chainID, rpc)
}

// greenfieldEVMChainID is the EIP-712 chain id of the configured network (1017
// mainnet, 5600 testnet, a custom network's number).
func (c *Core) greenfieldEVMChainID(ctx context.Context) (uint64, error) {
	n, err := c.GreenfieldNetwork(ctx)
	if err != nil {
		return 0, err
	}
	return n.EVMChainID()
}

// greenfieldState is the connected Greenfield account, kept while the network and the
// wallet stay the same.
type greenfieldState struct {
	mu      sync.Mutex
	network greenfield.Network
	address string
	sdk     *greenfield.SDK
}

// GreenfieldChain opens the wallet's account on the configured network (the uploader's
// Connect). The connection is reused until the network or the wallet changes.
func (c *Core) GreenfieldChain(ctx context.Context) (greenfield.Chain, error) {
	s, err := c.greenfieldSDK(ctx)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (c *Core) greenfieldSDK(ctx context.Context) (*greenfield.SDK, error) {
	n, err := c.GreenfieldNetwork(ctx)
	if err != nil {
		return nil, err
	}
	addr, err := c.WalletAddress(ctx)
	if err != nil {
		return nil, err
	}
	g := &c.gfield
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sdk != nil && g.network == n && g.address == addr {
		return g.sdk, nil
	}
	key, err := c.loadWallet(ctx)
	if err != nil {
		return nil, err
	}
	s, err := greenfield.Dial(ctx, n, key.ExportHex())
	if err != nil {
		return nil, err
	}
	g.network, g.address, g.sdk = n, addr, s
	return s, nil
}

// UploadShare is read access given to an address.
type UploadShare struct {
	Address string `json:"address"`
	Granted bool   `json:"granted"` // false: waiting for the upload, or the last grant failed (Error)
	Error   string `json:"error,omitempty"`
}

// UploadItem is one submission in the outbox, as both UIs show it.
type UploadItem struct {
	SubmissionID   int64         `json:"submission_id"`
	Kind           string        `json:"kind"`
	SHA256         string        `json:"sha256"`
	Records        int64         `json:"records"`
	Size           int64         `json:"size"`
	State          string        `json:"state"` // queued, uploading, sealing, done, failed
	Active         bool          `json:"active"`
	BytesSent      int64         `json:"bytes_sent"`
	Percent        float64       `json:"percent"`
	Speed          float64       `json:"speed"` // bytes per second
	Attempts       int           `json:"attempts"`
	NextAttempt    time.Time     `json:"next_attempt,omitzero"`
	Error          string        `json:"error,omitempty"`
	Bucket         string        `json:"bucket,omitempty"`
	Object         string        `json:"object"`
	ManifestObject string        `json:"manifest_object"`
	Created        time.Time     `json:"created"`
	Finished       time.Time     `json:"finished,omitzero"`
	Shares         []UploadShare `json:"shares,omitempty"`
}

func (c *Core) uploadItem(it storage.OutboxItem) UploadItem {
	u := UploadItem{SubmissionID: it.SubmissionID, Kind: it.Kind, SHA256: it.SHA256, Records: it.Records, Size: it.Size,
		State: it.State, BytesSent: it.BytesSent, Speed: it.Speed, Attempts: it.Attempts, Error: it.Error, Bucket: it.Bucket,
		Object: it.Object, ManifestObject: it.ManifestObject, Created: it.Created, Finished: it.Finished}
	if it.State == storage.OutboxQueued && it.NextAttempt.After(time.Now()) {
		u.NextAttempt = it.NextAttempt
	}
	if it.Size > 0 {
		u.Percent = min(100, 100*float64(it.BytesSent)/float64(it.Size))
	}
	if c.opts.Uploader != nil && c.opts.Uploader.Active() == it.ID {
		u.Active = true
	}
	for _, sh := range it.Shares {
		u.Shares = append(u.Shares, UploadShare{Address: sh.Address, Granted: sh.State == storage.ShareDone, Error: sh.Error})
	}
	return u
}

// UploadsElsewhere says which other gata process does this data folder's uploads while
// this one waits ("" when this one does them, or there is no uploader).
func (c *Core) UploadsElsewhere() string {
	if c.opts.Uploader == nil {
		return ""
	}
	if l, ok := c.opts.Uploader.Blocked(); ok {
		return fmt.Sprintf("Another gata process (%s) uploads from this data folder; this one takes over when it stops.", l.Holder)
	}
	return ""
}

func (c *Core) outbox() (OutboxStore, error) {
	ob, ok := c.store.(OutboxStore)
	if !ok {
		return nil, ErrNoUploader
	}
	return ob, nil
}

// Outbox lists every submission's upload, newest first, with its progress.
func (c *Core) Outbox(ctx context.Context) ([]UploadItem, error) {
	ob, err := c.outbox()
	if err != nil {
		return nil, err
	}
	items, err := ob.Outbox(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]UploadItem, 0, len(items))
	for _, it := range items {
		out = append(out, c.uploadItem(it))
	}
	return out, nil
}

// RetryUpload queues a failed (or waiting) upload for an attempt now.
func (c *Core) RetryUpload(ctx context.Context, submissionID int64) (UploadItem, error) {
	ob, err := c.outbox()
	if err != nil {
		return UploadItem{}, err
	}
	it, err := ob.OutboxBySubmission(ctx, submissionID)
	if err != nil {
		return UploadItem{}, err
	}
	if err := ob.RetryUpload(ctx, it.ID); err != nil {
		return UploadItem{}, err
	}
	if c.opts.Uploader != nil {
		c.opts.Uploader.Wake()
	}
	it, err = ob.OutboxBySubmission(ctx, submissionID)
	if err != nil {
		return UploadItem{}, err
	}
	item := c.uploadItem(it)
	c.bus.publish(EventUpload, item)
	return item, nil
}

// UploadChanged publishes an outbox item's new state (the uploader's OnChange).
func (c *Core) UploadChanged(outboxID int64) {
	ob, err := c.outbox()
	if err != nil {
		return
	}
	if it, err := ob.OutboxItem(context.Background(), outboxID); err == nil {
		c.bus.publish(EventUpload, c.uploadItem(it))
	}
}

// ShareSubmission lets address read a submission's two objects (id > 0), or every
// submission's (id 0). Uploads not done yet are shared when they are done; the others
// now. It returns the items with their shares; the error is the first grant that failed.
func (c *Core) ShareSubmission(ctx context.Context, id int64, address string) ([]UploadItem, error) {
	addr, err := checksumAddress(address)
	if err != nil {
		return nil, markedError{err: err, mark: ErrBadShare}
	}
	ob, err := c.outbox()
	if err != nil {
		return nil, err
	}
	if c.opts.Uploader == nil {
		return nil, ErrNoUploader
	}
	var items []storage.OutboxItem
	if id > 0 {
		it, err := ob.OutboxBySubmission(ctx, id)
		if err != nil {
			return nil, markedError{err: err, mark: ErrBadShare}
		}
		items = []storage.OutboxItem{it}
	} else if items, err = ob.Outbox(ctx); err != nil {
		return nil, err
	}
	var first error
	out := make([]UploadItem, 0, len(items))
	for _, it := range items {
		if err := c.opts.Uploader.Share(ctx, it.ID, addr); err != nil && first == nil {
			first = err
		}
		now, err := ob.OutboxBySubmission(ctx, it.SubmissionID)
		if err != nil {
			return nil, err
		}
		out = append(out, c.uploadItem(now))
	}
	return out, first
}

// checksumAddress checks a 0x address (a mixed-case one must carry its EIP-55
// checksum) and returns it checksummed.
func checksumAddress(s string) (string, error) {
	a, err := wallet.ParseAddress(strings.TrimSpace(s))
	if err != nil {
		return "", err
	}
	return a.Hex(), nil
}

// GreenfieldStatus is the wallet's account on the configured network.
type GreenfieldStatus struct {
	Network    greenfield.Network `json:"network"`
	Address    string             `json:"address"`
	Bucket     string             `json:"bucket"`
	BucketMade bool               `json:"bucket_made"`
	// Balance is in wei of BNB as a decimal string; BalanceBNB the same in BNB.
	Balance    string            `json:"balance"`
	BalanceBNB string            `json:"balance_bnb"`
	Quota      *greenfield.Quota `json:"quota,omitempty"` // nil until the bucket exists
}

// GreenfieldStatus reads the wallet's balance and its bucket's read quota.
func (c *Core) GreenfieldStatus(ctx context.Context) (GreenfieldStatus, error) {
	s, err := c.greenfieldSDK(ctx)
	if err != nil {
		return GreenfieldStatus{}, err
	}
	st := GreenfieldStatus{Network: s.Network(), Address: s.Address(), Bucket: greenfield.BucketName(s.Address())}
	bal, err := s.Balance(ctx)
	if err != nil {
		return st, err
	}
	st.Balance, st.BalanceBNB = bal.String(), weiToBNB(bal)
	q, err := s.Quota(ctx, st.Bucket)
	switch {
	case errors.Is(err, greenfield.ErrNotFound):
	case err != nil:
		return st, err
	default:
		st.BucketMade, st.Quota = true, &q
	}
	return st, nil
}

// weiToBNB writes wei as BNB with up to 18 decimals and no trailing zeros.
func weiToBNB(wei *big.Int) string {
	unit := new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil)
	q, r := new(big.Int).QuoRem(wei, unit, new(big.Int))
	if r.Sign() == 0 {
		return q.String()
	}
	frac := strings.TrimRight(fmt.Sprintf("%018s", new(big.Int).Abs(r).String()), "0")
	return q.String() + "." + frac
}
