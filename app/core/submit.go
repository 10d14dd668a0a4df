package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gata-contrib/gata/chat"
	"github.com/gata-contrib/gata/storage"
	"github.com/gata-contrib/gata/storage/submission"
)

// SubmissionStore records signed submissions, what they carried and the wallets'
// nonces; storage.Store satisfies it.
type SubmissionStore interface {
	TakeNonce(ctx context.Context, address string) (uint64, error)
	SaveSubmission(ctx context.Context, sub storage.Submission, items []string, queue storage.SubmissionQueue) (int64, error)
	SubmittedItems(ctx context.Context, kind string) (map[string]bool, error)
	Submissions(ctx context.Context, limit int) ([]storage.Submission, error)
}

// Kinds of submission.
const (
	SubmitChat = submission.KindChat // voted chat battles above the quality floor, as Arena records
	SubmitDVA  = submission.KindDVA  // the scores of finished DVA runs
)

// EventSubmission is the event type of a recorded submission. Data: SubmitResult.
const EventSubmission = "submission"

var (
	// ErrBadSubmit: the request cannot be done as asked (an unknown kind, --out
	// without --dry-run or the other way round).
	ErrBadSubmit = errors.New("bad submit request")
	// ErrNothingToSubmit: everything of that kind was submitted already.
	ErrNothingToSubmit = errors.New("nothing new to submit")
	// ErrVerify: a submission does not check out (tampered file, wrong signer, bad
	// signature, a damaged manifest); the message says which.
	ErrVerify = errors.New("submission does not verify")
)

func submitBad(err error) error { return markedError{err: err, mark: ErrBadSubmit} }

// SubmitOptions choose where a submission goes.
type SubmitOptions struct {
	// DryRun writes the JSONL file and the signed manifest to OutDir and records and
	// uploads nothing (the nonce it signs with is used up all the same).
	DryRun bool   `json:"dry_run,omitempty"`
	OutDir string `json:"out_dir,omitempty"`
	// ChainID is the EIP-712 chainId to sign for; 0 means submissionChainID.
	ChainID uint64 `json:"chain_id,omitempty"`
}

// SubmitResult is a signed submission: its manifest and where its files are.
type SubmitResult struct {
	ID           int64               `json:"id,omitempty"` // 0 for a dry run
	DryRun       bool                `json:"dry_run,omitempty"`
	Manifest     submission.Manifest `json:"manifest"`
	JSONLPath    string              `json:"jsonl_path"`
	ManifestPath string              `json:"manifest_path"`
	Items        int                 `json:"items"` // battles or runs it carries
}

// VerifyResult is a submission that checks out.
type VerifyResult struct {
	Signer       string              `json:"signer"` // the address the signature recovers to
	Manifest     submission.Manifest `json:"manifest"`
	JSONLPath    string              `json:"jsonl_path"`
	ManifestPath string              `json:"manifest_path"`
}

// SubmissionsDir is where recorded submissions' files are kept, inside the data folder.
const SubmissionsDir = "submissions"

// submissionChainID is the EIP-712 chainId submissions are signed for: the Greenfield
// EVM chain id of the network the uploads go to (the greenfield.network setting);
// SubmitOptions.ChainID overrides it.
func (c *Core) submissionChainID(ctx context.Context) (uint64, error) {
	return c.greenfieldEVMChainID(ctx)
}

// queueForUpload is what SaveSubmission runs inside its transaction to queue the new
// submission for upload: the outbox item goes in there, so that nothing is recorded
// without being queued. The uploader takes it from the outbox.
func (c *Core) queueForUpload(sub storage.Submission) storage.SubmissionQueue {
	return storage.QueueUpload(sub)
}

// Submit collects what was not submitted yet of kind (SubmitChat, SubmitDVA), writes it
// as canonical JSONL, signs the manifest with the wallet, records the submission with
// its items marked and queues it for upload, and returns the manifest. A dry run only
// writes the two files to opts.OutDir.
func (c *Core) Submit(ctx context.Context, kind string, opts SubmitOptions) (SubmitResult, error) {
	switch {
	case kind != SubmitChat && kind != SubmitDVA:
		return SubmitResult{}, submitBad(fmt.Errorf("submit: kind must be %q or %q, not %q", SubmitChat, SubmitDVA, kind))
	case opts.DryRun && opts.OutDir == "":
		return SubmitResult{}, submitBad(errors.New("submit: a dry run needs a folder to write to"))
	case !opts.DryRun && opts.OutDir != "":
		return SubmitResult{}, submitBad(errors.New("submit: an output folder goes with a dry run only (submissions are kept in the data folder)"))
	}
	subs := c.store
	key, err := c.loadWallet(ctx)
	if err != nil {
		return SubmitResult{}, fmt.Errorf("submit %s: %w", kind, err)
	}
	addr := key.Address().Hex()
	dir := opts.OutDir
	if !opts.DryRun {
		dir = filepath.Join(c.opts.DataDir, SubmissionsDir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return SubmitResult{}, fmt.Errorf("submit %s: %w", kind, err)
	}
	tmp, err := os.CreateTemp(dir, ".submission-*.jsonl")
	if err != nil {
		return SubmitResult{}, fmt.Errorf("submit %s: %w", kind, err)
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing left to remove
	w := submission.NewWriter(tmp)
	var items []string
	if kind == SubmitChat {
		items, err = c.collectChat(ctx, subs, addr, w)
	} else {
		items, err = c.collectDVA(ctx, subs, w)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return SubmitResult{}, fmt.Errorf("submit %s: %w", kind, err)
	}
	content := w.Content()
	if content.Records == 0 {
		return SubmitResult{}, fmt.Errorf("submit %s: %w", kind, ErrNothingToSubmit)
	}
	chainID := opts.ChainID
	if chainID == 0 {
		if chainID, err = c.submissionChainID(ctx); err != nil {
			return SubmitResult{}, fmt.Errorf("submit %s: %w", kind, err)
		}
	}
	nonce, err := subs.TakeNonce(ctx, addr)
	if err != nil {
		return SubmitResult{}, fmt.Errorf("submit %s: %w", kind, err)
	}
	m := submission.New(kind, "gata/"+c.opts.Version, content, time.Now(), nonce, chainID)
	if err := m.Sign(key); err != nil {
		return SubmitResult{}, fmt.Errorf("submit %s: %w", kind, err)
	}
	manifest, err := m.Marshal()
	if err != nil {
		return SubmitResult{}, fmt.Errorf("submit %s: %w", kind, err)
	}
	res := SubmitResult{DryRun: opts.DryRun, Manifest: m, Items: len(items),
		JSONLPath: filepath.Join(dir, m.JSONLName()), ManifestPath: filepath.Join(dir, m.ManifestName())}
	// What is recorded must verify: check the file as written before it gets its name.
	if err := verifyFile(m, tmp.Name()); err != nil {
		return SubmitResult{}, fmt.Errorf("submit %s: the file written does not verify: %w", kind, err)
	}
	created, err := placeFiles(tmp.Name(), res.JSONLPath, res.ManifestPath, manifest)
	if err != nil {
		return SubmitResult{}, fmt.Errorf("submit %s: %w", kind, err)
	}
	if opts.DryRun {
		c.log.Info("submission written (dry run)", "kind", kind, "records", m.Records, "sha256", m.SHA256, "dir", dir)
		return res, nil
	}
	sub := storage.Submission{Kind: kind, SHA256: m.SHA256, Records: int64(m.Records), Bytes: int64(m.Bytes),
		Created: time.Unix(int64(m.Created), 0), Nonce: m.Nonce, Submitter: m.Submitter, ChainID: m.ChainID,
		Manifest: manifest, JSONLPath: res.JSONLPath, ManifestPath: res.ManifestPath}
	res.ID, err = subs.SaveSubmission(ctx, sub, items, c.queueForUpload(sub))
	if err != nil {
		for _, p := range created {
			os.Remove(p)
		}
		return SubmitResult{}, fmt.Errorf("submit %s: %w", kind, err)
	}
	c.log.Info("submission recorded", "id", res.ID, "kind", kind, "records", m.Records, "sha256", m.SHA256, "nonce", m.Nonce)
	c.bus.publish(EventSubmission, res)
	return res, nil
}

// placeFiles gives the JSONL file its name and writes the manifest beside it, and
// returns the paths it created (a file of that name that was there already, with the
// same content by its name, is left as it is and not returned).
func placeFiles(tmp, jsonlPath, manifestPath string, manifest []byte) ([]string, error) {
	var created []string
	if _, err := os.Stat(jsonlPath); errors.Is(err, fs.ErrNotExist) {
		if err := os.Rename(tmp, jsonlPath); err != nil {
			return nil, err
		}
		created = append(created, jsonlPath)
	}
	f, err := os.CreateTemp(filepath.Dir(manifestPath), ".manifest-*.json")
	if err != nil {
		return created, err
	}
	_, err = f.Write(manifest)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		_, statErr := os.Stat(manifestPath)
		err = os.Rename(f.Name(), manifestPath)
		if err == nil && errors.Is(statErr, fs.ErrNotExist) {
			created = append(created, manifestPath)
		}
	}
	if err != nil {
		os.Remove(f.Name())
		return created, err
	}
	return created, nil
}

// collectChat writes the Arena records of the voted battles that pass the quality
// floor and were not submitted yet, oldest first, judged by the wallet's address.
func (c *Core) collectChat(ctx context.Context, subs SubmissionStore, addr string, w *submission.Writer) ([]string, error) {
	done, err := subs.SubmittedItems(ctx, SubmitChat)
	if err != nil {
		return nil, err
	}
	bs, err := c.votedBattles(ctx)
	if err != nil {
		return nil, fmt.Errorf("read battles: %w", err)
	}
	threshold := c.qualityMin(ctx)
	var items []string
	for _, b := range bs {
		if done[b.ID] || b.Quality == nil || !b.Quality.Passes(threshold) {
			continue
		}
		recs := chat.ArenaRecords(b, addr)
		for _, r := range recs {
			if err := w.Add(r); err != nil {
				return nil, fmt.Errorf("battle %s: %w", b.ID, err)
			}
		}
		if len(recs) > 0 {
			items = append(items, b.ID)
		}
	}
	return items, nil
}

// dvaRecord is one scored item of a finished DVA run.
type dvaRecord struct {
	Run         int64       `json:"run"`
	Source      string      `json:"source"`
	Key         string      `json:"key"`
	UID         string      `json:"uid,omitempty"`
	URL         string      `json:"url,omitempty"`
	Caption     string      `json:"caption"`
	Score       json.Number `json:"score"` // the float32 score in its shortest form
	Width       int         `json:"width,omitempty"`
	Height      int         `json:"height,omitempty"`
	Model       string      `json:"model"`
	ModelSHA256 string      `json:"model_sha256,omitempty"`
	Verdict     string      `json:"verdict,omitempty"` // a reviewer's keep or reject
}

// runItem is a run's item name in the submitted marks.
func runItem(id int64) string { return strconv.FormatInt(id, 10) }

// collectDVA writes the scored items of the finished runs that were not submitted yet,
// oldest run first.
func (c *Core) collectDVA(ctx context.Context, subs SubmissionStore, w *submission.Writer) ([]string, error) {
	done, err := subs.SubmittedItems(ctx, SubmitDVA)
	if err != nil {
		return nil, err
	}
	runs, err := c.store.Runs(ctx, math.MaxInt32)
	if err != nil {
		return nil, fmt.Errorf("read runs: %w", err)
	}
	var items []string
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i]
		if r.State != storage.RunDone || done[runItem(r.ID)] {
			continue
		}
		n := 0
		err := c.store.EachResult(ctx, r.ID, func(res storage.DVAResult) error {
			if res.Reason != "" {
				return nil
			}
			n++
			return w.Add(dvaRecord{Run: r.ID, Source: res.Source, Key: res.Key, UID: res.UID, URL: res.URL, Caption: res.Caption,
				Score: json.Number(strconv.FormatFloat(float64(res.Score), 'g', -1, 32)), Width: res.Width, Height: res.Height,
				Model: r.Model, ModelSHA256: r.ModelSHA256, Verdict: res.Verdict})
		})
		if err != nil {
			return nil, fmt.Errorf("run %d: %w", r.ID, err)
		}
		if n > 0 {
			items = append(items, runItem(r.ID))
		}
	}
	return items, nil
}

// Submissions lists the recorded submissions, newest first.
func (c *Core) Submissions(ctx context.Context, limit int) ([]SubmitResult, error) {
	subs := c.store
	if limit <= 0 {
		limit = 100
	}
	list, err := subs.Submissions(ctx, limit)
	if err != nil {
		return nil, fmt.Errorf("list submissions: %w", err)
	}
	out := []SubmitResult{}
	for _, s := range list {
		m, err := submission.ParseManifest(s.Manifest)
		if err != nil {
			return nil, fmt.Errorf("list submissions: submission %d: %w", s.ID, err)
		}
		out = append(out, SubmitResult{ID: s.ID, Manifest: m, JSONLPath: s.JSONLPath, ManifestPath: s.ManifestPath})
	}
	return out, nil
}

// Verify checks a submission's files: the manifest's fields, the JSONL file's sha256,
// size and canonical form, and the signature, and returns the signer. jsonlPath ""
// means the file beside the manifest (<sha256>.jsonl). A submission that does not
// check out returns an error matching ErrVerify and saying why.
func (c *Core) Verify(ctx context.Context, manifestPath, jsonlPath string) (VerifyResult, error) {
	f, err := os.Open(manifestPath)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("verify: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(f, submission.MaxManifestBytes+1))
	f.Close()
	if err != nil {
		return VerifyResult{}, fmt.Errorf("verify: read %s: %w", manifestPath, err)
	}
	m, err := submission.ParseManifest(b)
	if err != nil {
		return VerifyResult{}, markedError{err: fmt.Errorf("verify %s: %w", manifestPath, err), mark: ErrVerify}
	}
	if jsonlPath == "" {
		jsonlPath = filepath.Join(filepath.Dir(manifestPath), m.JSONLName())
		if base, ok := strings.CutSuffix(manifestPath, ".manifest.json"); ok {
			if _, err := os.Stat(jsonlPath); err != nil {
				jsonlPath = base + ".jsonl"
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return VerifyResult{}, fmt.Errorf("verify: %w", err)
	}
	if err := verifyFile(m, jsonlPath); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return VerifyResult{}, fmt.Errorf("verify: %w", err)
		}
		return VerifyResult{}, markedError{err: fmt.Errorf("verify %s: %w", jsonlPath, err), mark: ErrVerify}
	}
	return VerifyResult{Signer: m.Submitter, Manifest: m, JSONLPath: jsonlPath, ManifestPath: manifestPath}, nil
}

// verifyFile runs submission.Verify on the file at path.
func verifyFile(m submission.Manifest, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	signer, err := submission.Verify(m, f)
	if err != nil {
		return err
	}
	if signer.Hex() != m.Submitter {
		return fmt.Errorf("%w: signed by %s", submission.ErrWrongSigner, signer.Hex())
	}
	return nil
}
