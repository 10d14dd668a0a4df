package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gata-contrib/gata/storage"
	"github.com/gata-contrib/gata/storage/greenfield"
)

// ErrNoUpload: the submission is not in the outbox.
var ErrNoUpload = errors.New("no upload of that submission")

// Upload is one submission's upload, as Outbox lists it; ErrNoUpload when the
// submission is not in the outbox.
func (c *Core) Upload(ctx context.Context, submissionID int64) (UploadItem, error) {
	ob, err := c.outbox()
	if err != nil {
		return UploadItem{}, err
	}
	it, err := ob.OutboxBySubmission(ctx, submissionID)
	if errors.Is(err, storage.ErrNotFound) {
		return UploadItem{}, fmt.Errorf("upload of submission %d: %w", submissionID, ErrNoUpload)
	}
	if err != nil {
		return UploadItem{}, err
	}
	return c.uploadItem(it), nil
}

// Account is the Greenfield account as the Submit pages show it: the network the
// settings choose, the wallet's address and bucket, and what the chain says of them
// (Status), or why that could not be read (Error).
type Account struct {
	Network      greenfield.Network `json:"network"`
	EVMChainID   uint64             `json:"evm_chain_id,omitempty"` // the chain id submissions are signed for
	NetworkError string             `json:"network_error,omitempty"`
	Address      string             `json:"address,omitempty"` // "" without a wallet
	Bucket       string             `json:"bucket,omitempty"`
	Status       *GreenfieldStatus  `json:"status,omitempty"`
	Error        string             `json:"error,omitempty"` // one line
}

// accountTimeout bounds reading the account: the network may be out of reach.
const accountTimeout = 20 * time.Second

// Account reads the configured network and, with a wallet, its balance and its
// bucket's read quota on that network. It always answers; what could not be read is
// said in NetworkError or Error.
func (c *Core) Account(ctx context.Context) Account {
	var a Account
	n, err := c.GreenfieldNetwork(ctx)
	if err != nil {
		a.NetworkError = oneLineErr(err)
		return a
	}
	a.Network = n
	if a.EVMChainID, err = n.EVMChainID(); err != nil {
		a.NetworkError = oneLineErr(err)
		return a
	}
	if a.Address, err = c.WalletAddress(ctx); errors.Is(err, ErrNoWallet) {
		a.Error = "no wallet yet" // the pages offer to make one
		return a
	} else if err != nil {
		a.Error = oneLineErr(err)
		return a
	}
	a.Bucket = greenfield.BucketName(a.Address)
	ctx, cancel := context.WithTimeout(ctx, accountTimeout)
	defer cancel()
	st, err := c.GreenfieldStatus(ctx)
	if err != nil {
		a.Error = oneLineErr(err)
		return a
	}
	a.Status = &st
	return a
}

// Waiting says the upload failed and waits for its next attempt (the outbox keeps such
// an item queued, with the error and the time of the next attempt).
func (u UploadItem) Waiting() bool {
	return u.State == storage.OutboxQueued && u.Error != "" && u.Attempts > 0
}

// CanRetry says whether RetryUpload applies: a failed upload, or one waiting for its
// next attempt.
func (u UploadItem) CanRetry() bool { return u.State == storage.OutboxFailed || u.Waiting() }

// StateLabel is the state as both UIs name it: "retrying" for an upload waiting after a
// failed attempt, else the outbox state (queued, uploading, sealing, done, failed).
func (u UploadItem) StateLabel() string {
	if u.Waiting() {
		return "retrying"
	}
	return u.State
}

// ErrorLine is the last error in one line, "" once the upload is done.
func (u UploadItem) ErrorLine() string {
	if u.State == storage.OutboxDone {
		return ""
	}
	return strings.Join(strings.Fields(u.Error), " ")
}

// ShareState says how a share of this upload stands, after the address.
func (u UploadItem) ShareState(sh UploadShare) string {
	switch {
	case sh.Granted:
		return "can read it"
	case sh.Error != "":
		return "not granted: " + strings.Join(strings.Fields(sh.Error), " ")
	case u.State != storage.OutboxDone:
		return "granted once the upload is done"
	}
	return "not granted yet"
}
