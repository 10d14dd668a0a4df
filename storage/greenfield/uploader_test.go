package greenfield

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gata-contrib/gata/storage"
)

const (
	wallet = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
	reader = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"
)

// fakeChain is an in-process Greenfield: buckets and objects in maps, a seal after a
// few looks, and injectable failures.
type fakeChain struct {
	mu        sync.Mutex
	buckets   map[string]bool
	objects   map[string]*fakeObject // bucket/object
	fails     map[string]int         // method name: how many more calls fail
	sealAfter int                    // HeadObject calls after the payload before the seal
	onPut     func(object string, r io.Reader) ([]byte, error)
	calls     map[string]int
}

type fakeObject struct {
	sum         []byte
	size        uint64
	data        []byte
	put         bool
	heads       int
	sealed      bool
	tags        map[string]string
	contentType string
	readers     map[string]bool
}

func newFake() *fakeChain {
	return &fakeChain{buckets: map[string]bool{}, objects: map[string]*fakeObject{}, fails: map[string]int{}, calls: map[string]int{}}
}

func (f *fakeChain) call(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[name]++
	if f.fails[name] > 0 {
		f.fails[name]--
		return fmt.Errorf("%s: injected failure", name)
	}
	return nil
}

func (f *fakeChain) count(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[name]
}

func (f *fakeChain) object(bucket, object string) *fakeObject {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.objects[bucket+"/"+object]
}

func (f *fakeChain) Address() string { return wallet }

func (f *fakeChain) HeadBucket(ctx context.Context, bucket string) error {
	if err := f.call("HeadBucket"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.buckets[bucket] {
		return ErrNotFound
	}
	return nil
}

func (f *fakeChain) CreateBucket(ctx context.Context, bucket string) error {
	if err := f.call("CreateBucket"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.buckets[bucket] {
		return errors.New("bucket already exists")
	}
	f.buckets[bucket] = true
	return nil
}

func (f *fakeChain) HeadObject(ctx context.Context, bucket, object string) (ObjectInfo, error) {
	if err := f.call("HeadObject"); err != nil {
		return ObjectInfo{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.objects[bucket+"/"+object]
	if o == nil {
		return ObjectInfo{}, ErrNotFound
	}
	if o.put && !o.sealed {
		if o.heads++; o.heads > f.sealAfter {
			o.sealed = true
		}
	}
	info := ObjectInfo{Status: StatusCreated, Size: o.size, Checksums: [][]byte{o.sum}, Tags: map[string]string{}}
	if o.sealed {
		info.Status = StatusSealed
	}
	for k, v := range o.tags {
		info.Tags[k] = v
	}
	return info, nil
}

func (f *fakeChain) HashRoots(r io.Reader) ([][]byte, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return nil, err
	}
	return [][]byte{h.Sum(nil)}, nil
}

func (f *fakeChain) CreateObject(ctx context.Context, bucket, object string, r io.Reader, contentType string) error {
	if err := f.call("CreateObject"); err != nil {
		return err
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.buckets[bucket] {
		return errors.New("no such bucket")
	}
	if f.objects[bucket+"/"+object] != nil {
		return errors.New("object already exists")
	}
	f.objects[bucket+"/"+object] = &fakeObject{sum: sum[:], size: uint64(len(b)), contentType: contentType, readers: map[string]bool{}}
	return nil
}

func (f *fakeChain) CancelCreateObject(ctx context.Context, bucket, object string) error {
	if err := f.call("CancelCreateObject"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.objects, bucket+"/"+object)
	return nil
}

func (f *fakeChain) PutObject(ctx context.Context, bucket, object string, size int64, r io.Reader, contentType string) error {
	if err := f.call("PutObject"); err != nil {
		return err
	}
	f.mu.Lock()
	hook := f.onPut
	f.mu.Unlock()
	var b []byte
	var err error
	if hook != nil {
		b, err = hook(object, r)
	} else {
		b, err = io.ReadAll(r)
	}
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.objects[bucket+"/"+object]
	if o == nil {
		return errors.New("object has not been created")
	}
	if o.sealed {
		return errors.New("object already sealed")
	}
	if sum := sha256.Sum256(b); int64(len(b)) != size || !bytes.Equal(sum[:], o.sum) {
		return errors.New("payload does not match the object's checksums")
	}
	o.data, o.put = b, true
	return nil
}

func (f *fakeChain) SetTags(ctx context.Context, bucket, object string, tags map[string]string) error {
	if err := f.call("SetTags"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objects[bucket+"/"+object].tags = tags
	return nil
}

func (f *fakeChain) GrantRead(ctx context.Context, bucket, object, address string) error {
	if err := f.call("GrantRead"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.objects[bucket+"/"+object]
	if o == nil || !o.sealed {
		return errors.New("no sealed object to share")
	}
	o.readers[address] = true
	return nil
}

type fixture struct {
	t     *testing.T
	dir   string
	path  string
	store *storage.Store
	fake  *fakeChain
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, storage.DBName)
	s, err := storage.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("storage.Open: %v", err)
	}
	f := &fixture{t: t, dir: dir, path: path, store: s, fake: newFake()}
	t.Cleanup(func() { f.store.Close() })
	return f
}

// submit writes a submission's two files and records it the way the core does.
func (f *fixture) submit(kind, content string) storage.OutboxItem {
	f.t.Helper()
	ctx := context.Background()
	sum := sha256.Sum256([]byte(content))
	sha := hex.EncodeToString(sum[:])
	jsonl := filepath.Join(f.dir, sha+".jsonl")
	manifest := filepath.Join(f.dir, sha+".manifest.json")
	man := fmt.Sprintf(`{"kind":%q,"sha256":%q}`, kind, sha)
	if err := os.WriteFile(jsonl, []byte(content), 0o600); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(manifest, []byte(man), 0o600); err != nil {
		f.t.Fatal(err)
	}
	nonce, err := f.store.TakeNonce(ctx, wallet)
	if err != nil {
		f.t.Fatal(err)
	}
	sub := storage.Submission{Kind: kind, SHA256: sha, Records: int64(strings.Count(content, "\n")), Bytes: int64(len(content)),
		Created: time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC), Nonce: nonce, Submitter: wallet, ChainID: 5600,
		Manifest: []byte(man), JSONLPath: jsonl, ManifestPath: manifest}
	id, err := f.store.SaveSubmission(ctx, sub, nil, storage.QueueUpload(sub))
	if err != nil {
		f.t.Fatalf("SaveSubmission: %v", err)
	}
	it, err := f.store.OutboxBySubmission(ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return it
}

func (f *fixture) uploader(opts Options) *Uploader {
	opts.Store = f.store
	if opts.Connect == nil {
		opts.Connect = func(context.Context) (Chain, error) { return f.fake, nil }
	}
	if opts.MinBackoff == 0 {
		opts.MinBackoff = 10 * time.Millisecond
	}
	if opts.SealPoll == 0 {
		opts.SealPoll = time.Millisecond
	}
	if opts.ProgressTick == 0 {
		opts.ProgressTick = time.Millisecond
	}
	if opts.IdlePoll == 0 {
		opts.IdlePoll = 20 * time.Millisecond
	}
	return New(opts)
}

// serve runs u until stop is called; stop waits for Serve to return and gives its error.
func serve(u *Uploader) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Serve(ctx) }()
	return func() error { cancel(); return <-done }
}

// waitState polls the item until it reaches state.
func (f *fixture) waitState(id int64, state string) storage.OutboxItem {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		it, err := f.store.OutboxItem(context.Background(), id)
		if err != nil {
			f.t.Fatal(err)
		}
		if it.State == state {
			return it
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("item %d is %s (attempts %d, error %q), want %s", id, it.State, it.Attempts, it.Error, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

const records = "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n"

func TestUploadToDone(t *testing.T) {
	f := newFixture(t)
	f.fake.sealAfter = 2
	it := f.submit("chat", records)
	var mu sync.Mutex
	changes := 0
	stop := serve(f.uploader(Options{OnChange: func(id int64) {
		mu.Lock()
		defer mu.Unlock()
		if id == it.ID {
			changes++
		}
	}}))
	done := f.waitState(it.ID, storage.OutboxDone)
	if err := stop(); err != nil {
		t.Fatalf("Serve = %v", err)
	}
	bucket := BucketName(wallet)
	if done.Bucket != bucket || done.BytesSent != done.Size || done.Attempts != 0 || done.Error != "" || done.Finished.IsZero() {
		t.Errorf("done item = %+v", done)
	}
	if !strings.HasPrefix(done.Object, "chat/2026/05/") {
		t.Errorf("object name %q, want chat/2026/05/<sha256>.jsonl", done.Object)
	}
	o := f.fake.object(bucket, done.Object)
	if o == nil || string(o.data) != records || !o.sealed || o.contentType != ContentJSONL {
		t.Fatalf("object on the chain = %+v", o)
	}
	wantTags := map[string]string{"kind": "chat", "records": "3", "sha256": done.SHA256, "schema": Schema}
	if !sameTags(o.tags, wantTags) {
		t.Errorf("tags = %v, want %v", o.tags, wantTags)
	}
	m := f.fake.object(bucket, done.ManifestObject)
	if m == nil || !m.sealed || !strings.Contains(string(m.data), done.SHA256) || m.contentType != ContentManifest {
		t.Errorf("manifest object = %+v", m)
	}
	if n := f.fake.count("CreateBucket"); n != 1 {
		t.Errorf("CreateBucket called %d times, want 1", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if changes < 3 {
		t.Errorf("OnChange told %d changes of the item, want at least 3 (uploading, sealing, done)", changes)
	}

	// A second submission reuses the bucket.
	stop = serve(f.uploader(Options{}))
	second := f.submit("dva", "{\"score\":0.25}\n")
	f.waitState(second.ID, storage.OutboxDone)
	stop()
	if n := f.fake.count("CreateBucket"); n != 1 {
		t.Errorf("CreateBucket called %d times for two uploads, want 1", n)
	}
}

// TestRetriesFailedPuts: a failed put is retried with backoff on the created object;
// after the third failure the object is cancelled and created afresh.
func TestRetriesFailedPuts(t *testing.T) {
	for _, tt := range []struct {
		name                   string
		fails                  int
		creates, puts, cancels int
	}{
		{"two failures resume the created object", 2, 2, 4, 0},
		{"three failures start over", 3, 3, 5, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.fake.fails["PutObject"] = tt.fails
			it := f.submit("chat", records)
			stop := serve(f.uploader(Options{}))
			done := f.waitState(it.ID, storage.OutboxDone)
			stop()
			if done.Attempts != tt.fails || done.Error != "" {
				t.Errorf("attempts %d, error %q; want %d and no error once done", done.Attempts, done.Error, tt.fails)
			}
			// The manifest is created and put once; the rest is the payload's.
			for _, c := range []struct {
				call string
				want int
			}{{"CreateObject", tt.creates}, {"PutObject", tt.puts}, {"CancelCreateObject", tt.cancels}} {
				if n := f.fake.count(c.call); n != c.want {
					t.Errorf("%s called %d times, want %d", c.call, n, c.want)
				}
			}
			if o := f.fake.object(done.Bucket, done.Object); o == nil || string(o.data) != records {
				t.Errorf("object = %+v", o)
			}
		})
	}
}

// rejectingChain drops an object the first time its seal is awaited, as providers that
// cannot seal it do.
type rejectingChain struct {
	*fakeChain
	once sync.Once
}

func (r *rejectingChain) PutObject(ctx context.Context, bucket, object string, size int64, rd io.Reader, ct string) error {
	if err := r.fakeChain.PutObject(ctx, bucket, object, size, rd, ct); err != nil {
		return err
	}
	r.once.Do(func() {
		r.mu.Lock()
		delete(r.objects, bucket+"/"+object)
		r.mu.Unlock()
	})
	return nil
}

func TestObjectRejectedBeforeSeal(t *testing.T) {
	f := newFixture(t)
	rc := &rejectingChain{fakeChain: f.fake}
	it := f.submit("chat", records)
	stop := serve(f.uploader(Options{SealTimeout: time.Hour, Connect: func(context.Context) (Chain, error) { return rc, nil }}))
	done := f.waitState(it.ID, storage.OutboxDone)
	stop()
	if done.Attempts != 1 {
		t.Errorf("attempts = %d, want 1: a removed object ends the wait at once, not after SealTimeout", done.Attempts)
	}
	if n := f.fake.count("CreateObject"); n != 3 {
		t.Errorf("CreateObject called %d times, want 3 (the object again after it was removed)", n)
	}
}

func TestBackoff(t *testing.T) {
	u := New(Options{MinBackoff: time.Second, MaxBackoff: 10 * time.Second})
	for _, tt := range []struct {
		n    int
		want time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {4, 8 * time.Second}, {5, 10 * time.Second}, {40, 10 * time.Second}} {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			if got := u.backoff(tt.n); got != tt.want {
				t.Errorf("backoff(%d) = %v, want %v", tt.n, got, tt.want)
			}
		})
	}
}

func TestGivesUpThenRetry(t *testing.T) {
	f := newFixture(t)
	f.fake.fails["CreateBucket"] = 1000
	it := f.submit("chat", records)
	stop := serve(f.uploader(Options{MaxAttempts: 3}))
	failed := f.waitState(it.ID, storage.OutboxFailed)
	if failed.Attempts != 3 || !strings.Contains(failed.Error, "create bucket") {
		t.Errorf("failed item: attempts %d, error %q; want 3 and the bucket's error", failed.Attempts, failed.Error)
	}
	// It stays failed until asked again.
	time.Sleep(50 * time.Millisecond)
	if n := f.fake.count("CreateBucket"); n != 3 {
		t.Errorf("CreateBucket called %d times, want 3", n)
	}
	f.fake.mu.Lock()
	f.fake.fails["CreateBucket"] = 0
	f.fake.mu.Unlock()
	if err := f.store.RetryUpload(context.Background(), it.ID); err != nil {
		t.Fatal(err)
	}
	f.waitState(it.ID, storage.OutboxDone)
	stop()
}

func TestConnectFailureIsAnAttempt(t *testing.T) {
	f := newFixture(t)
	it := f.submit("chat", records)
	stop := serve(f.uploader(Options{MaxAttempts: 2, Connect: func(context.Context) (Chain, error) {
		return nil, errors.New("no wallet")
	}}))
	failed := f.waitState(it.ID, storage.OutboxFailed)
	stop()
	if !strings.Contains(failed.Error, "no wallet") {
		t.Errorf("error = %q, want the connect error", failed.Error)
	}
}

// TestResumesAfterCrash stops the uploader in the middle of sending the payload, as a
// killed process would, and starts a new one on the reopened database.
func TestResumesAfterCrash(t *testing.T) {
	f := newFixture(t)
	content := strings.Repeat("{\"a\":\"xxxxxxxxxxxxxxxx\"}\n", 4000)
	it := f.submit("chat", content)
	ctx, cancel := context.WithCancel(context.Background())
	f.fake.onPut = func(object string, r io.Reader) ([]byte, error) {
		half := make([]byte, len(content)/2)
		if _, err := io.ReadFull(r, half); err != nil {
			return nil, err
		}
		time.Sleep(20 * time.Millisecond) // let the progress tick store what was sent
		cancel()
		return nil, errors.New("connection reset")
	}
	u := f.uploader(Options{})
	if err := u.Serve(ctx); err != nil {
		t.Fatalf("Serve = %v", err)
	}
	left, err := f.store.OutboxItem(context.Background(), it.ID)
	if err != nil {
		t.Fatal(err)
	}
	if left.State != storage.OutboxUploading || left.Attempts != 0 || left.BytesSent == 0 || left.BytesSent > left.Size {
		t.Fatalf("after the crash the item is %s, attempts %d, %d of %d bytes sent; want uploading, 0, part of it",
			left.State, left.Attempts, left.BytesSent, left.Size)
	}

	// Restart: a new process opens the database and an uploader.
	f.store.Close()
	f.store, err = storage.Open(context.Background(), f.path)
	if err != nil {
		t.Fatal(err)
	}
	f.fake.mu.Lock()
	f.fake.onPut = nil
	f.fake.mu.Unlock()
	stop := serve(f.uploader(Options{}))
	done := f.waitState(it.ID, storage.OutboxDone)
	stop()
	if o := f.fake.object(done.Bucket, done.Object); o == nil || string(o.data) != content {
		t.Fatalf("the object's payload after the restart is not the file")
	}
	if n := f.fake.count("CreateObject"); n != 2 {
		t.Errorf("CreateObject called %d times, want 2 (object and manifest, the object once)", n)
	}
}

func TestExistingObject(t *testing.T) {
	for _, tt := range []struct {
		name    string
		content string // what is on the chain under the object's name
		state   string
		err     string
	}{
		{"same content counts as done", records, storage.OutboxDone, ""},
		{"other content fails at once", "{\"other\":1}\n", storage.OutboxFailed, "with other content"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			it := f.submit("chat", records)
			bucket := BucketName(wallet)
			sum := sha256.Sum256([]byte(tt.content))
			f.fake.buckets[bucket] = true
			f.fake.objects[bucket+"/"+it.Object] = &fakeObject{sum: sum[:], size: uint64(len(tt.content)), data: []byte(tt.content),
				put: true, sealed: true, readers: map[string]bool{}}
			stop := serve(f.uploader(Options{MaxAttempts: 5}))
			got := f.waitState(it.ID, tt.state)
			stop()
			if !strings.Contains(got.Error, tt.err) {
				t.Errorf("error = %q, want it to contain %q", got.Error, tt.err)
			}
			if tt.state == storage.OutboxFailed && got.Attempts != 1 {
				t.Errorf("a permanent error was tried %d times, want 1", got.Attempts)
			}
			if n := f.fake.count("PutObject"); tt.state == storage.OutboxDone && n != 1 {
				t.Errorf("PutObject called %d times, want 1 (the manifest only)", n)
			}
		})
	}
}

func TestChangedFileFails(t *testing.T) {
	f := newFixture(t)
	it := f.submit("chat", records)
	if err := os.WriteFile(it.JSONLPath, []byte("{\"a\":9}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stop := serve(f.uploader(Options{}))
	got := f.waitState(it.ID, storage.OutboxFailed)
	stop()
	if !strings.Contains(got.Error, "changed since it was signed") || got.Attempts != 1 {
		t.Errorf("error %q after %d attempts; want the file's change, once", got.Error, got.Attempts)
	}
	if n := f.fake.count("CreateObject"); n != 0 {
		t.Errorf("CreateObject called %d times for a changed file", n)
	}
}

func TestShare(t *testing.T) {
	f := newFixture(t)
	it := f.submit("chat", records)
	u := f.uploader(Options{})
	ctx := context.Background()
	// Before the upload: recorded, granted once it is done.
	if err := u.Share(ctx, it.ID, reader); err != nil {
		t.Fatalf("Share before upload: %v", err)
	}
	if n := f.fake.count("GrantRead"); n != 0 {
		t.Fatalf("GrantRead called %d times before the upload", n)
	}
	stop := serve(u)
	f.waitState(it.ID, storage.OutboxDone)
	// The grant follows the upload's done at once; wait for it before stopping.
	var done storage.OutboxItem
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		done, _ = f.store.OutboxItem(ctx, it.ID)
		if len(done.Shares) == 1 && done.Shares[0].State == storage.ShareDone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("shares after upload = %+v, want one done", done.Shares)
		}
	}
	stop()
	for _, obj := range []string{done.Object, done.ManifestObject} {
		if !f.fake.object(done.Bucket, obj).readers[reader] {
			t.Errorf("%s not readable by %s", obj, reader)
		}
	}
	// After: granted at once; a failing grant is returned and stays pending.
	f.fake.fails["GrantRead"] = 1
	if err := u.Share(ctx, it.ID, wallet); err == nil {
		t.Errorf("Share with a failing grant returned nil")
	}
	got, _ := f.store.OutboxItem(ctx, it.ID)
	var pending *storage.Share
	for i := range got.Shares {
		if got.Shares[i].Address == wallet {
			pending = &got.Shares[i]
		}
	}
	if pending == nil || pending.State != storage.SharePending || !strings.Contains(pending.Error, "injected failure") {
		t.Fatalf("failed share = %+v, want pending with the error", pending)
	}
	if err := u.Share(ctx, it.ID, wallet); err != nil {
		t.Fatalf("Share again: %v", err)
	}
	if !f.fake.object(done.Bucket, done.Object).readers[wallet] {
		t.Errorf("the second try did not grant")
	}
	if err := u.Share(ctx, 999, reader); err == nil {
		t.Errorf("Share of a missing item returned nil")
	}
}

// TestOneUploaderPerDataFolder: two uploaders on one database, as two gata processes on
// one data folder: the one that holds the lease uploads, the other waits and says who
// does, and takes over once the first stops.
func TestOneUploaderPerDataFolder(t *testing.T) {
	f := newFixture(t)
	other, err := storage.Open(context.Background(), f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var mu sync.Mutex
	by := map[int64]string{} // item → the uploader that told of its changes
	tell := func(name string) func(int64) {
		return func(id int64) {
			mu.Lock()
			defer mu.Unlock()
			by[id] += name
		}
	}
	a := f.uploader(Options{Holder: "process A", LeaseTTL: 300 * time.Millisecond, OnChange: tell("A")})
	stopA := serve(a)
	bOpts := Options{Holder: "process B", LeaseTTL: 300 * time.Millisecond, OnChange: tell("B")}
	bOpts.Store = other
	bOpts.Connect = func(context.Context) (Chain, error) { return f.fake, nil }
	bOpts.SealPoll, bOpts.ProgressTick, bOpts.IdlePoll = time.Millisecond, time.Millisecond, 20*time.Millisecond
	b := New(bOpts)
	stopB := serve(b)
	defer stopB()

	first := f.submit("chat", records)
	f.waitState(first.ID, storage.OutboxDone)
	if l, ok := b.Blocked(); !ok || l.Holder != "process A" || b.Holding() {
		t.Errorf("B while A uploads: Blocked() = %+v, %v; Holding() = %v", l, ok, b.Holding())
	}
	if _, ok := a.Blocked(); ok || !a.Holding() {
		t.Error("A, the holder, says it is blocked")
	}
	if err := stopA(); err != nil {
		t.Fatal(err)
	}
	second := f.submit("dva", "{\"score\":0.5}\n")
	f.waitState(second.ID, storage.OutboxDone)
	mu.Lock()
	defer mu.Unlock()
	if strings.Trim(by[first.ID], "A") != "" || strings.Trim(by[second.ID], "B") != "" || by[first.ID] == "" || by[second.ID] == "" {
		t.Errorf("uploaded by %q and %q, want the first by A only and the second by B only", by[first.ID], by[second.ID])
	}
	if n := f.fake.count("CreateObject"); n != 4 { // each submission's file and manifest, once
		t.Errorf("CreateObject called %d times for two submissions, want 4", n)
	}
}

// TestShareLeftByAStop: a share recorded on a done upload but not granted (the process
// stopped between the two) is granted when an uploader starts again.
func TestShareLeftByAStop(t *testing.T) {
	f := newFixture(t)
	it := f.submit("chat", records)
	stop := serve(f.uploader(Options{}))
	f.waitState(it.ID, storage.OutboxDone)
	stop()
	ctx := context.Background()
	if err := f.store.AddShare(ctx, it.ID, reader); err != nil { // what Share records before it grants
		t.Fatal(err)
	}
	stop = serve(f.uploader(Options{}))
	defer stop()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		done, _ := f.store.OutboxItem(ctx, it.ID)
		if len(done.Shares) == 1 && done.Shares[0].State == storage.ShareDone {
			if !f.fake.object(done.Bucket, done.Object).readers[reader] || !f.fake.object(done.Bucket, done.ManifestObject).readers[reader] {
				t.Errorf("the share is done but the objects are not readable by %s", reader)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the share left by the stop is %+v, want done", done.Shares)
		}
	}
}
