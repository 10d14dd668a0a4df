package greenfield

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/gata-contrib/gata/storage"
)

// Schema is the schema tag of uploaded submissions (the manifest's schema field).
const Schema = "gata.submission/v1"

// Content types of the two objects of a submission.
const (
	ContentJSONL    = "application/x-ndjson"
	ContentManifest = "application/json"
)

// Store is the part of the database the uploader uses (the outbox of package storage).
type Store interface {
	NextUpload(ctx context.Context, now time.Time) (storage.OutboxItem, bool, time.Time, error)
	Outbox(ctx context.Context) ([]storage.OutboxItem, error)
	OutboxItem(ctx context.Context, id int64) (storage.OutboxItem, error)
	SetUploadState(ctx context.Context, id int64, state string) error
	SetUploadBucket(ctx context.Context, id int64, bucket string) error
	SetUploadProgress(ctx context.Context, id int64, sent int64, speed float64) error
	UploadFailed(ctx context.Context, id int64, errText string, next time.Time, final bool) error
	UploadDone(ctx context.Context, id int64) error
	AddShare(ctx context.Context, outboxID int64, address string) error
	SetShareResult(ctx context.Context, outboxID int64, address, errText string) error
	TakeLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (storage.Lease, bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
}

// LeaseName is the lease an uploader holds while it serves a data folder: one process
// uploads at a time, another (a second gata serve on the same folder) waits for it.
const LeaseName = "greenfield.uploader"

// Options configure an Uploader. Zero durations and counts mean the defaults.
type Options struct {
	Store Store
	// Connect opens the wallet's account on the configured network. It is called for
	// every attempt, so a wallet made or a network changed later is picked up.
	Connect func(ctx context.Context) (Chain, error)
	Logger  *slog.Logger
	// OnChange is told the outbox item that changed (state, progress); may be nil.
	OnChange func(id int64)

	MaxAttempts  int           // failed attempts before an item stops in failed; default 12
	MinBackoff   time.Duration // wait after the first failure, doubled each time; default 5s
	MaxBackoff   time.Duration // default 30 min
	SealPoll     time.Duration // how often the seal is checked; default 1s
	SealTimeout  time.Duration // how long one attempt waits for a seal; default 5 min
	ProgressTick time.Duration // how often progress is stored while sending; default 500ms
	// IdlePoll is how often an idle uploader looks at the outbox, for items another
	// process (gata submit) queued; default 5s.
	IdlePoll time.Duration
	// Holder names this process in the lease (default: host and process id); LeaseTTL is
	// how long the lease lasts unrenewed, so how long a killed holder blocks (default 30s).
	Holder   string
	LeaseTTL time.Duration
	Now      func() time.Time
}

// Uploader takes outbox items to done. Serve runs it under the app's supervisor; it
// resumes whatever a stopped or killed process left uploading or sealing.
type Uploader struct {
	opts Options
	log  *slog.Logger
	wake chan struct{}

	mu     sync.Mutex
	chain  Chain // the last connected account, reused while it serves the same address
	active int64 // the item being uploaded now, 0 when none
	held   bool  // this uploader holds the lease
	other  storage.Lease
	cancel context.CancelFunc // ends the attempt under way, when the lease is lost
}

// New returns an uploader; nothing runs until Serve.
func New(opts Options) *Uploader {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 12
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 5 * time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Minute
	}
	if opts.SealPoll <= 0 {
		opts.SealPoll = time.Second
	}
	if opts.SealTimeout <= 0 {
		opts.SealTimeout = 5 * time.Minute
	}
	if opts.ProgressTick <= 0 {
		opts.ProgressTick = 500 * time.Millisecond
	}
	if opts.IdlePoll <= 0 {
		opts.IdlePoll = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = 30 * time.Second
	}
	if opts.Holder == "" {
		host, _ := os.Hostname()
		opts.Holder = fmt.Sprintf("%s pid %d", host, os.Getpid())
	}
	return &Uploader{opts: opts, log: opts.Logger, wake: make(chan struct{}, 1)}
}

// Wake makes a waiting Serve look at the outbox now (after Enqueue or RetryUpload).
func (u *Uploader) Wake() {
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// Active is the id of the item being uploaded now, 0 when none.
func (u *Uploader) Active() int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.active
}

// Serve uploads due outbox items one at a time until ctx ends. Errors of an item are
// recorded on the item (it is retried with backoff); Serve itself returns only nil when
// ctx ends, or an error when the database fails.
func (u *Uploader) Serve(ctx context.Context) error {
	u.renew(ctx)
	lctx, stop := context.WithCancel(ctx)
	kept := make(chan struct{})
	go func() { defer close(kept); u.keepLease(lctx) }()
	defer func() {
		stop()
		<-kept // no renewal after the release
		u.opts.Store.ReleaseLease(context.WithoutCancel(ctx), LeaseName, u.opts.Holder)
	}()
	dbErrors := 0
	leftovers := true
	for {
		if !u.Holding() {
			if !u.sleep(ctx, u.opts.IdlePoll) {
				return nil
			}
			continue
		}
		if leftovers {
			leftovers = false
			u.grantLeftovers(ctx)
		}
		it, ok, next, err := u.opts.Store.NextUpload(ctx, u.opts.Now())
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if dbErrors++; dbErrors >= 5 {
				return fmt.Errorf("uploader: %w", err)
			}
			u.log.Warn("read outbox", "err", err)
			next = u.opts.Now().Add(u.opts.MinBackoff)
		} else {
			dbErrors = 0
		}
		if ok {
			actx, cancel := context.WithCancel(ctx)
			u.mu.Lock()
			u.cancel = cancel
			u.mu.Unlock()
			u.attempt(actx, it)
			u.mu.Lock()
			u.cancel = nil
			u.mu.Unlock()
			cancel()
			continue
		}
		wait := u.opts.IdlePoll
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(u.opts.Now()), 10*time.Millisecond))
		}
		if !u.sleep(ctx, wait) {
			return nil
		}
	}
}

// Holding reports whether this uploader holds the data folder's lease; when not, Blocked
// says which other process does.
func (u *Uploader) Holding() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.held
}

// Blocked returns the lease of the other process that uploads from this data folder, and
// whether there is one.
func (u *Uploader) Blocked() (storage.Lease, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.other, !u.held && u.other.Holder != ""
}

// keepLease renews the lease, or tries to take it, a few times a lease until ctx ends.
func (u *Uploader) keepLease(ctx context.Context) {
	t := time.NewTicker(u.opts.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		u.renew(ctx)
	}
}

// renew takes or renews the lease once. Losing it (another process took it after it
// expired: this one stalled past the lease) ends the attempt under way, which leaves the
// item where it is for the new holder.
func (u *Uploader) renew(ctx context.Context) {
	l, ok, err := u.opts.Store.TakeLease(ctx, LeaseName, u.opts.Holder, u.opts.Now(), u.opts.LeaseTTL)
	if err != nil {
		if ctx.Err() == nil {
			u.log.Warn("renew the uploader's lease", "err", err)
		}
		return // kept as it was: a database hiccup is not a loss
	}
	u.mu.Lock()
	was, cancel := u.held, u.cancel
	u.held = ok
	u.other = storage.Lease{}
	if !ok {
		u.other = l
	}
	u.mu.Unlock()
	switch {
	case ok && !was:
		u.log.Info("uploading from this data folder")
		u.Wake()
	case !ok && was:
		u.log.Warn("another process took the uploads of this data folder", "holder", l.Holder)
		if cancel != nil {
			cancel()
		}
	case !ok:
		u.log.Debug("another process uploads from this data folder", "holder", l.Holder, "until", l.Expires)
	}
}

// sleep waits for d, a Wake, or the end of ctx; false when ctx ended.
func (u *Uploader) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-u.wake:
	case <-t.C:
	}
	return true
}

// attempt runs one attempt at an item and records its outcome.
func (u *Uploader) attempt(ctx context.Context, it storage.OutboxItem) {
	u.mu.Lock()
	u.active = it.ID
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		u.active = 0
		u.mu.Unlock()
		u.changed(it.ID)
	}()
	log := u.log.With("outbox", it.ID, "object", it.Object)
	err := u.upload(ctx, it)
	if ctx.Err() != nil {
		// Stopping: the item stays where it is and the next start goes on from there.
		log.Info("upload interrupted", "state", it.State)
		return
	}
	if err == nil {
		log.Info("uploaded", "size", it.Size)
		return
	}
	final := it.Attempts+1 >= u.opts.MaxAttempts || errors.Is(err, errPermanent)
	next := u.opts.Now().Add(u.backoff(it.Attempts + 1))
	log.Warn("upload failed", "attempt", it.Attempts+1, "final", final, "err", err)
	if err := u.opts.Store.UploadFailed(context.WithoutCancel(ctx), it.ID, err.Error(), next, final); err != nil {
		log.Error("record upload failure", "err", err)
	}
}

// backoff is the wait after the n-th failed attempt: MinBackoff doubled n-1 times, at
// most MaxBackoff.
func (u *Uploader) backoff(n int) time.Duration {
	d := u.opts.MinBackoff
	for i := 1; i < n && d < u.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, u.opts.MaxBackoff)
}

func (u *Uploader) changed(id int64) {
	if u.opts.OnChange != nil {
		u.opts.OnChange(id)
	}
}

// cancelAfter is the number of failed attempts after which a created object whose
// payload does not go through is cancelled, to be created again.
const cancelAfter = 3

// errPermanent marks errors no retry can fix (the object name holds other content).
var errPermanent = errors.New("permanent")

type permanentError struct{ err error }

func (e permanentError) Error() string        { return e.err.Error() }
func (e permanentError) Unwrap() []error      { return []error{e.err, errPermanent} }
func permanent(format string, a ...any) error { return permanentError{fmt.Errorf(format, a...)} }

func (u *Uploader) connect(ctx context.Context) (Chain, error) {
	if u.opts.Connect == nil {
		return nil, fmt.Errorf("no Greenfield account is configured")
	}
	c, err := u.opts.Connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to Greenfield: %w", err)
	}
	return c, nil
}

// upload takes one item from wherever it stands to done. Every step checks the chain
// first, so repeating a step that already happened (after a crash) is harmless.
func (u *Uploader) upload(ctx context.Context, it storage.OutboxItem) error {
	chain, err := u.connect(ctx)
	if err != nil {
		return err
	}
	st := u.opts.Store
	bucket := BucketName(chain.Address())
	if it.Bucket != bucket {
		if err := st.SetUploadBucket(ctx, it.ID, bucket); err != nil {
			return err
		}
		it.Bucket = bucket
	}
	if it.State == storage.OutboxQueued {
		if err := st.SetUploadState(ctx, it.ID, storage.OutboxUploading); err != nil {
			return err
		}
		it.State = storage.OutboxUploading
		u.changed(it.ID)
	}
	if err := ensureBucket(ctx, chain, bucket); err != nil {
		return err
	}
	payload, err := openChecked(it.JSONLPath, it.SHA256, it.Size)
	if err != nil {
		return err
	}
	defer payload.Close()
	if err := u.putSealed(ctx, chain, it, it.Object, payload, it.Size, ContentJSONL, true); err != nil {
		return err
	}
	tags := map[string]string{"kind": it.Kind, "records": strconv.FormatInt(it.Records, 10), "sha256": it.SHA256, "schema": Schema}
	info, err := chain.HeadObject(ctx, bucket, it.Object)
	if err != nil {
		return fmt.Errorf("read object %s: %w", it.Object, err)
	}
	if !sameTags(info.Tags, tags) {
		if err := chain.SetTags(ctx, bucket, it.Object, tags); err != nil {
			return fmt.Errorf("tag object %s: %w", it.Object, err)
		}
	}
	manifest, err := os.ReadFile(it.ManifestPath)
	if err != nil {
		return permanent("read manifest %q: %w", it.ManifestPath, err)
	}
	if len(manifest) == 0 {
		return permanent("manifest %q is empty", it.ManifestPath)
	}
	if err := u.putSealed(ctx, chain, it, it.ManifestObject, bytes.NewReader(manifest), int64(len(manifest)), ContentManifest, false); err != nil {
		return err
	}
	if err := st.UploadDone(ctx, it.ID); err != nil {
		return err
	}
	u.changed(it.ID)
	done, err := st.OutboxItem(ctx, it.ID)
	if err != nil {
		return nil // uploaded; the shares are granted on the next Share call
	}
	for _, sh := range done.Shares {
		if sh.State == storage.SharePending {
			u.grant(ctx, chain, done, sh.Address)
		}
	}
	return nil
}

func ensureBucket(ctx context.Context, chain Chain, bucket string) error {
	err := chain.HeadBucket(ctx, bucket)
	if err == nil {
		return nil
	}
	if !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("read bucket %s: %w", bucket, err)
	}
	if err := chain.CreateBucket(ctx, bucket); err != nil {
		// Another process of the same wallet may have made it in the meantime.
		if chain.HeadBucket(ctx, bucket) == nil {
			return nil
		}
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	return nil
}

// openChecked opens the file of a submission and checks that it still is what was
// signed: its size and sha256.
func openChecked(path, wantSHA string, wantSize int64) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, permanent("open submission file %q: %w", path, err)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read submission file %q: %w", path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != wantSHA || n != wantSize {
		f.Close()
		return nil, permanent("submission file %q changed since it was signed: sha256 %s, %d bytes; want %s, %d bytes", path, got, n, wantSHA, wantSize)
	}
	return f, nil
}

// putSealed makes sure object exists on chain with the content of r and is sealed:
// created if missing, its payload sent unless it is already sealed, then waited for.
// An object that exists with other content is a permanent error. progress says whether
// the item's bytes_sent follows this payload.
func (u *Uploader) putSealed(ctx context.Context, chain Chain, it storage.OutboxItem, object string, r io.ReadSeeker, size int64, contentType string, progress bool) error {
	rewind := func() error {
		if _, err := r.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("read %s: %w", object, err)
		}
		return nil
	}
	if err := rewind(); err != nil {
		return err
	}
	want, err := chain.HashRoots(r)
	if err != nil {
		return fmt.Errorf("hash %s: %w", object, err)
	}
	info, err := chain.HeadObject(ctx, it.Bucket, object)
	switch {
	case errors.Is(err, ErrNotFound):
		if err := rewind(); err != nil {
			return err
		}
		if err := chain.CreateObject(ctx, it.Bucket, object, r, contentType); err != nil {
			return fmt.Errorf("create object %s: %w", object, err)
		}
		info = ObjectInfo{Status: StatusCreated}
	case err != nil:
		return fmt.Errorf("read object %s: %w", object, err)
	case !sameChecksums(info.Checksums, want) || (info.Size != 0 && info.Size != uint64(size)):
		return permanent("object %s already exists in bucket %s with other content", object, it.Bucket)
	case info.Status == StatusOther:
		return permanent("object %s in bucket %s is discontinued or being deleted", object, it.Bucket)
	}
	if info.Status != StatusSealed {
		if err := rewind(); err != nil {
			return err
		}
		var body io.Reader = r
		if progress {
			pr := u.progressReader(ctx, it.ID, r)
			defer pr.stop()
			body = pr
		}
		if err := chain.PutObject(ctx, it.Bucket, object, size, body, contentType); err != nil {
			// The payload may have arrived before the error (or before a crash last time).
			now, herr := chain.HeadObject(ctx, it.Bucket, object)
			if herr == nil && now.Status == StatusSealed {
				return nil
			}
			// After repeated failures start over: the next attempt creates the object
			// afresh instead of resuming what the providers may hold of it.
			if herr == nil && now.Status == StatusCreated && it.Attempts+1 >= cancelAfter && ctx.Err() == nil {
				if cerr := chain.CancelCreateObject(ctx, it.Bucket, object); cerr != nil {
					u.log.Warn("cancel object", "object", object, "err", cerr)
				}
			}
			return fmt.Errorf("put object %s: %w", object, err)
		}
		if progress {
			if err := u.opts.Store.SetUploadState(ctx, it.ID, storage.OutboxSealing); err != nil {
				return err
			}
			u.changed(it.ID)
		}
	}
	return u.waitSealed(ctx, chain, it.Bucket, object)
}

func (u *Uploader) waitSealed(ctx context.Context, chain Chain, bucket, object string) error {
	ctx, cancel := context.WithTimeout(ctx, u.opts.SealTimeout)
	defer cancel()
	t := time.NewTicker(u.opts.SealPoll)
	defer t.Stop()
	for {
		info, err := chain.HeadObject(ctx, bucket, object)
		if err == nil && info.Status == StatusSealed {
			return nil
		}
		if err == nil && info.Status == StatusOther {
			return fmt.Errorf("object %s was discontinued before it was sealed", object)
		}
		if errors.Is(err, ErrNotFound) {
			// The providers rejected it (they drop objects they cannot seal): the next
			// attempt creates it again.
			return fmt.Errorf("object %s was removed before it was sealed", object)
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("wait for seal of %s: %w", object, err)
			}
			return fmt.Errorf("wait for seal of %s: %w", object, ctx.Err())
		case <-t.C:
		}
	}
}

func sameChecksums(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func sameTags(have, want map[string]string) bool {
	if len(have) != len(want) {
		return false
	}
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// progressReader counts the bytes read from r and stores the count and speed every
// ProgressTick.
type progressReader struct {
	r    io.Reader
	mu   sync.Mutex
	n    int64
	done chan struct{}
	wg   sync.WaitGroup
}

func (u *Uploader) progressReader(ctx context.Context, id int64, r io.Reader) *progressReader {
	p := &progressReader{r: r, done: make(chan struct{})}
	start := u.opts.Now()
	store := func() {
		p.mu.Lock()
		n := p.n
		p.mu.Unlock()
		speed := 0.0
		if el := u.opts.Now().Sub(start).Seconds(); el > 0 {
			speed = float64(n) / el
		}
		if err := u.opts.Store.SetUploadProgress(context.WithoutCancel(ctx), id, n, speed); err != nil {
			u.log.Warn("record upload progress", "outbox", id, "err", err)
		}
		u.changed(id)
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(u.opts.ProgressTick)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				store()
				return
			case <-ctx.Done():
				return
			case <-t.C:
				store()
			}
		}
	}()
	return p
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.mu.Lock()
	p.n += int64(n)
	p.mu.Unlock()
	return n, err
}

func (p *progressReader) stop() {
	close(p.done)
	p.wg.Wait()
}

// Share lets address read an item's two objects. An item not uploaded yet is shared once
// its upload is done; for one that is done the grant is made now, and its error returned.
func (u *Uploader) Share(ctx context.Context, id int64, address string) error {
	st := u.opts.Store
	if err := st.AddShare(ctx, id, address); err != nil {
		return err
	}
	it, err := st.OutboxItem(ctx, id)
	if err != nil {
		return err
	}
	if it.State != storage.OutboxDone {
		u.Wake()
		return nil
	}
	chain, err := u.connect(ctx)
	if err != nil {
		st.SetShareResult(ctx, id, address, err.Error())
		return err
	}
	return u.grant(ctx, chain, it, address)
}

// grantLeftovers grants the shares a stop left pending on uploads that are done (the stop
// came between the upload's end and its grants).
func (u *Uploader) grantLeftovers(ctx context.Context) {
	items, err := u.opts.Store.Outbox(ctx)
	if err != nil {
		u.log.Warn("read outbox for pending shares", "err", err)
		return
	}
	var chain Chain
	for _, it := range items {
		if it.State != storage.OutboxDone {
			continue
		}
		for _, sh := range it.Shares {
			if sh.State != storage.SharePending || ctx.Err() != nil {
				continue
			}
			if chain == nil {
				if chain, err = u.connect(ctx); err != nil {
					u.log.Warn("connect to grant pending shares", "err", err)
					return
				}
			}
			u.grant(ctx, chain, it, sh.Address)
		}
	}
}

func (u *Uploader) grant(ctx context.Context, chain Chain, it storage.OutboxItem, address string) error {
	var err error
	for _, obj := range []string{it.Object, it.ManifestObject} {
		if err = chain.GrantRead(ctx, it.Bucket, obj, address); err != nil {
			err = fmt.Errorf("share %s with %s: %w", obj, address, err)
			break
		}
	}
	msg := ""
	if err != nil {
		msg = err.Error()
		u.log.Warn("share", "outbox", it.ID, "address", address, "err", err)
	}
	if serr := u.opts.Store.SetShareResult(context.WithoutCancel(ctx), it.ID, address, msg); serr != nil && err == nil {
		err = serr
	}
	u.changed(it.ID)
	return err
}
