// Package pool is the coordinator of compute sharing (`gata pool`): it embeds a NATS
// server with JetStream (or joins one), cuts datasets into jobs of a few hundred
// image–caption pairs, hands them to workers over a work-queue stream, verifies what comes
// back (hidden canary items, redundant execution with adaptive replication, timing
// profiles), credits honest work in a ledger and records the verified scores as a run of
// the Data Validation Agent, so that they export exactly as `gata dva run` writes them.
//
// The wire format (this file) is shared with the worker in package agent: jobs and results
// are JSON messages on the subjects gata.jobs.<type> and gata.results.<type>, images travel
// through the JetStream object store under the hex sha256 of their bytes, and every result
// carries its worker's secp256k1 signature; the signer's address is the worker's identity.
package pool

import (
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
)

// Names on the NATS side. Jobs of type T are published on JobsSubjectPrefix+T and results
// on ResultsSubjectPrefix+T.
const (
	JobsStream           = "GATA_JOBS"
	ResultsStream        = "GATA_RESULTS"
	JobsSubjectPrefix    = "gata.jobs."
	ResultsSubjectPrefix = "gata.results."
	ImagesBucket         = "gata-images"
	// CreditsSubjectPrefix + a worker's address in lower case carries CreditNotes: the
	// worker's credit in the pool's ledger after each change.
	CreditsSubjectPrefix = "gata.credits."
	// TypeDVA is the job type of scoring image–caption pairs with a CLIP model.
	TypeDVA = "dva"
)

// WorkerConsumer is the durable pull consumer of the jobs stream that the workers of a job
// type share (a work queue: each job goes to one of them at a time).
func WorkerConsumer(typ string) string { return "workers-" + typ }

// Job is a piece of work as a worker sees it. Its items carry no hint of where they came
// from: the pool mixes items whose scores it knows (canaries) among the others, and their
// images lie together in one shard.
type Job struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	Model       string `json:"model"`
	ModelSHA256 string `json:"model_sha256,omitempty"`
	// Shard names the object in the images bucket that holds every item's image, one after
	// the other: the hex sha256 of its bytes.
	Shard     string    `json:"shard"`
	ShardSize int64     `json:"shard_size"`
	Items     []JobItem `json:"items"`
	// Exclude lists the addresses that must not take the job: they already answered its
	// group, and one worker cannot confirm itself.
	Exclude []string `json:"exclude,omitempty"`
	// AckWaitMS is how long the pool waits for word from a worker before handing the job to
	// another; a worker sends in-progress heartbeats more often than that.
	AckWaitMS int64     `json:"ack_wait_ms"`
	Issued    time.Time `json:"issued"`
}

// JobItem is one pair: the image, at Offset in the job's shard, Size bytes whose hex
// sha256 is Image, and the caption.
type JobItem struct {
	ID      string `json:"id"`
	Image   string `json:"image"`
	Offset  int64  `json:"offset"`
	Size    int64  `json:"size"`
	Caption string `json:"caption"`
}

// Excludes reports whether addr may not take the job.
func (j *Job) Excludes(addr string) bool {
	for _, a := range j.Exclude {
		if strings.EqualFold(a, addr) {
			return true
		}
	}
	return false
}

// Result is what a worker returns for a job, signed.
type Result struct {
	Job    string `json:"job"`
	Type   string `json:"type"`
	Worker string `json:"worker"` // the signer's address, 0x… (EIP-55)
	// Backend names what scored (dva.Backend.Name), Device the GPU or CPU.
	Backend   string       `json:"backend"`
	Device    string       `json:"device,omitempty"`
	BatchSize int          `json:"batch_size,omitempty"`
	Started   time.Time    `json:"started"`
	Finished  time.Time    `json:"finished"`
	FetchMS   int64        `json:"fetch_ms"`
	ComputeMS int64        `json:"compute_ms"`
	Items     []ItemResult `json:"items"`
	// Signature is the 65-byte secp256k1 signature (r, s, v) over Digest, hex.
	Signature string `json:"signature"`
}

// ItemResult is the outcome of one item: a score, or the reason it has none (the
// reasons of dva/pipeline: corrupt, too_large, unsupported, not_found).
type ItemResult struct {
	ID     string  `json:"id"`
	Score  float32 `json:"score"`
	Width  int     `json:"width,omitempty"`
	Height int     `json:"height,omitempty"`
	Reason string  `json:"reason,omitempty"`
	Error  string  `json:"error,omitempty"`
}

// Scored reports whether the item has a score.
func (r ItemResult) Scored() bool { return r.Reason == "" }

// signPrefix separates result signatures from any other use of the same key.
const signPrefix = "\x19gata pool result:\n"

// Digest is the keccak256 hash a result's signature covers: a prefix and the result's
// JSON without the signature.
func (r *Result) Digest() ([]byte, error) {
	c := *r
	c.Signature = ""
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("encode result: %w", err)
	}
	return crypto.Keccak256([]byte(signPrefix), b), nil
}

// Sign sets Worker to the key's address and Signature to the key's signature.
func (r *Result) Sign(key *ecdsa.PrivateKey) error {
	r.Worker = Address(key)
	d, err := r.Digest()
	if err != nil {
		return err
	}
	sig, err := crypto.Sign(d, key)
	if err != nil {
		return fmt.Errorf("sign result: %w", err)
	}
	r.Signature = hex.EncodeToString(sig)
	return nil
}

// ErrBadSignature: the signature is malformed or was not made by the named worker.
var ErrBadSignature = errors.New("bad result signature")

// Verify checks that the signature was made by the key of the Worker address.
func (r *Result) Verify() error {
	sig, err := hex.DecodeString(strings.TrimPrefix(r.Signature, "0x"))
	if err != nil || len(sig) != crypto.SignatureLength {
		return ErrBadSignature
	}
	if sig[64] >= 27 { // the Ethereum convention of v = 27/28
		sig[64] -= 27
	}
	d, err := r.Digest()
	if err != nil {
		return err
	}
	pub, err := crypto.SigToPub(d, sig)
	if err != nil {
		return ErrBadSignature
	}
	if !strings.EqualFold(crypto.PubkeyToAddress(*pub).Hex(), r.Worker) {
		return fmt.Errorf("%w: signed by %s, not %s", ErrBadSignature, crypto.PubkeyToAddress(*pub).Hex(), r.Worker)
	}
	return nil
}

// Address is the worker address of a key (EIP-55 checksummed hex).
func Address(key *ecdsa.PrivateKey) string { return crypto.PubkeyToAddress(key.PublicKey).Hex() }

// CreditNote is a worker's credit in the pool's ledger (pairs scored): pending until their
// group is verified, then confirmed or rejected.
type CreditNote struct {
	Worker    string `json:"worker"`
	Pending   int64  `json:"pending"`
	Confirmed int64  `json:"confirmed"`
	Rejected  int64  `json:"rejected"`
}
