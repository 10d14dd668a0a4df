package models

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gata-contrib/gata/dva/internal/refdata"
)

// blobServer serves one file over HTTP on loopback, with Range support unless told
// otherwise, and records the Range header of every request.
type blobServer struct {
	*httptest.Server
	data []byte
	mu   sync.Mutex
	// ranges seen, "" for a request without one
	ranges []string
	// cutFirst makes the first request send only this many bytes, then drop the connection.
	cutFirst int
	noRange  bool
	status   int
}

func newBlobServer(t *testing.T, size int) *blobServer {
	b := &blobServer{data: make([]byte, size)}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b.data {
		b.data[i] = byte(r.Uint32())
	}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b.mu.Lock()
		b.ranges = append(b.ranges, req.Header.Get("Range"))
		n := len(b.ranges)
		b.mu.Unlock()
		if req.Header.Get("User-Agent") == "" {
			http.Error(w, "no user agent", 400)
			return
		}
		if b.status != 0 {
			http.Error(w, "nope", b.status)
			return
		}
		if n == 1 && b.cutFirst > 0 {
			w.Header().Set("Content-Length", strconv.Itoa(len(b.data)))
			w.WriteHeader(200)
			w.Write(b.data[:b.cutFirst])
			panic(http.ErrAbortHandler) // drop the connection mid-body
		}
		if b.noRange {
			req.Header.Del("Range")
		}
		http.ServeContent(w, req, "model.bin", time.Time{}, strings.NewReader(string(b.data)))
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *blobServer) spec() Spec {
	sum := sha256.Sum256(b.data)
	return Spec{Name: "tiny", URL: b.URL + "/org/model/resolve/main/open_clip_pytorch_model.bin", File: TorchFile,
		Size: int64(len(b.data)), SHA256: hex.EncodeToString(sum[:]), Config: []byte(`{"model_cfg":{}}`)}
}

func (b *blobServer) seen() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.ranges...)
}

func newStore(t *testing.T, specs ...Spec) *Store {
	return NewStore(t.TempDir(), Options{Specs: specs, RetryWait: time.Millisecond})
}

func TestPullDownloadsVerifiesAndInstalls(t *testing.T) {
	b := newBlobServer(t, 3<<20)
	s := newStore(t, b.spec())
	var last, total int64
	dir, err := s.Pull(context.Background(), "tiny", func(d, tot int64) { last, total = d, tot })
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(dir, TorchFile))
	if err != nil || string(got) != string(b.data) {
		t.Fatalf("installed weights differ from the served file (err %v)", err)
	}
	if !IsModelDir(dir) || filepath.Base(dir) != "sha256-"+b.spec().SHA256 {
		t.Errorf("model dir %q is not a model folder named by checksum", dir)
	}
	if last != total || total != int64(len(b.data)) {
		t.Errorf("progress ended at %d/%d, want %d/%d", last, total, len(b.data), len(b.data))
	}
	if _, err := os.Stat(s.partPath(b.spec())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("partial file left behind: %v", err)
	}
	// A second pull downloads nothing.
	n := len(b.seen())
	if _, err := s.Pull(context.Background(), "tiny", nil); err != nil {
		t.Fatal(err)
	}
	if len(b.seen()) != n {
		t.Errorf("second Pull made %d requests, want none", len(b.seen())-n)
	}
	if err := s.Verify(context.Background(), "tiny", nil); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if r, err := s.Resolve("tiny"); err != nil || r != dir {
		t.Errorf("Resolve(tiny) = %q, %v; want %q", r, err, dir)
	}
	st := s.List()
	if len(st) != 1 || !st[0].Downloaded || st[0].Dir != dir {
		t.Errorf("List() = %+v", st)
	}
}

func TestPullResumesWithRangeAfterADroppedConnection(t *testing.T) {
	b := newBlobServer(t, 2<<20)
	b.cutFirst = 700_000
	s := newStore(t, b.spec())
	if _, err := s.Pull(context.Background(), "tiny", nil); err != nil {
		t.Fatalf("Pull: %v", err)
	}
	seen := b.seen()
	if len(seen) != 2 || seen[0] != "" || !strings.HasPrefix(seen[1], "bytes=") || seen[1] == "bytes=0-" {
		t.Fatalf("requests' Range headers = %q, want none then a resume", seen)
	}
	if err := s.Verify(context.Background(), "tiny", nil); err != nil {
		t.Errorf("Verify after resume: %v", err)
	}
}

func TestPullResumesAfterCancel(t *testing.T) {
	b := newBlobServer(t, 4<<20)
	s := newStore(t, b.spec())
	ctx, cancel := context.WithCancel(context.Background())
	_, err := s.Pull(ctx, "tiny", func(done, total int64) {
		if done > 1<<20 {
			cancel() // the user pressed cancel, or the app was killed
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Pull = %v, want context.Canceled", err)
	}
	if st := s.List(); st[0].Downloaded || st[0].Partial <= 0 || st[0].Partial >= int64(len(b.data)) {
		t.Fatalf("after cancel List() = %+v, want a partial download", st)
	}
	if _, err := s.Pull(context.Background(), "tiny", nil); err != nil {
		t.Fatalf("resumed Pull: %v", err)
	}
	seen := b.seen()
	if last := seen[len(seen)-1]; !strings.HasPrefix(last, "bytes=") {
		t.Errorf("resumed request Range = %q, want bytes=N-", last)
	}
	if err := s.Verify(context.Background(), "tiny", nil); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestPullWithoutRangeSupportStartsOver(t *testing.T) {
	b := newBlobServer(t, 1<<20)
	b.cutFirst = 300_000
	b.noRange = true
	s := newStore(t, b.spec())
	if _, err := s.Pull(context.Background(), "tiny", nil); err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if err := s.Verify(context.Background(), "tiny", nil); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestPullFailures(t *testing.T) {
	t.Run("checksum mismatch", func(t *testing.T) {
		b := newBlobServer(t, 100_000)
		sp := b.spec()
		sp.SHA256 = strings.Repeat("ab", 32)
		s := newStore(t, sp)
		_, err := s.Pull(context.Background(), "tiny", nil)
		if err == nil || !strings.Contains(err.Error(), "sha256 is") {
			t.Fatalf("Pull = %v, want a sha256 mismatch", err)
		}
		if _, err := os.Stat(s.partPath(sp)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("corrupt download kept: %v", err)
		}
		if IsModelDir(s.Dir(sp)) {
			t.Error("corrupt model installed")
		}
	})
	t.Run("not found", func(t *testing.T) {
		b := newBlobServer(t, 10)
		b.status = 404
		s := newStore(t, b.spec())
		_, err := s.Pull(context.Background(), "tiny", nil)
		if err == nil || !strings.Contains(err.Error(), "404") {
			t.Fatalf("Pull = %v, want a 404 error", err)
		}
		if n := len(b.seen()); n != 1 {
			t.Errorf("a 404 was retried: %d requests", n)
		}
	})
	t.Run("server errors retried then give up", func(t *testing.T) {
		b := newBlobServer(t, 10)
		b.status = 503
		s := NewStore(t.TempDir(), Options{Specs: []Spec{b.spec()}, RetryWait: time.Millisecond, Retries: 2})
		_, err := s.Pull(context.Background(), "tiny", nil)
		if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "resume") {
			t.Fatalf("Pull = %v, want a 503 error suggesting to resume", err)
		}
		if n := len(b.seen()); n != 3 {
			t.Errorf("requests = %d, want 3 (1 + 2 retries)", n)
		}
	})
	t.Run("unknown model", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Pull(context.Background(), "nope", nil); err == nil || !strings.Contains(err.Error(), `unknown model "nope"`) {
			t.Fatalf("Pull(nope) = %v", err)
		}
	})
	t.Run("corrupted after install", func(t *testing.T) {
		b := newBlobServer(t, 50_000)
		s := newStore(t, b.spec())
		dir, err := s.Pull(context.Background(), "tiny", nil)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, TorchFile)
		data, _ := os.ReadFile(f)
		data[100] ^= 1
		os.WriteFile(f, data, 0o600)
		if err := s.Verify(context.Background(), "tiny", nil); err == nil || !strings.Contains(err.Error(), "sha256") {
			t.Errorf("Verify(corrupted) = %v, want a sha256 error", err)
		}
	})
}

func TestEndpointRewritesHost(t *testing.T) {
	b := newBlobServer(t, 20_000)
	sp := b.spec()
	sp.URL = "https://huggingface.co/org/model/resolve/main/open_clip_pytorch_model.bin"
	s := NewStore(t.TempDir(), Options{Specs: []Spec{sp}, Endpoint: b.URL + "/", RetryWait: time.Millisecond})
	if _, err := s.Pull(context.Background(), "tiny", nil); err != nil {
		t.Fatalf("Pull through endpoint: %v", err)
	}
	if _, err := NewStore(t.TempDir(), Options{Specs: []Spec{sp}, Endpoint: "not a url"}).Pull(context.Background(), "tiny", nil); err == nil {
		t.Error("Pull with a bad endpoint succeeded")
	}
}

func TestResolve(t *testing.T) {
	clipDir := refdata.Clip(t)
	s := NewStore(t.TempDir(), Options{})
	if got, err := s.Resolve(clipDir); err != nil || got != clipDir {
		t.Errorf("Resolve(%q) = %q, %v", clipDir, got, err)
	}
	empty := t.TempDir()
	if _, err := s.Resolve(empty); err == nil || !strings.Contains(err.Error(), "has no open_clip_config.json") {
		t.Errorf("Resolve(empty folder) = %v", err)
	}
	if _, err := s.Resolve(filepath.Join(empty, "missing")); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Resolve(missing folder) = %v", err)
	}
	if _, err := s.Resolve(""); !errors.Is(err, ErrNotDownloaded) || !strings.Contains(err.Error(), "gata models pull dfn2b-vit-b-16") {
		t.Errorf("Resolve(default, not downloaded) = %v", err)
	}
	if _, err := s.Resolve("vit-huge-9000"); err == nil || !strings.Contains(err.Error(), "unknown model") {
		t.Errorf("Resolve(unknown) = %v", err)
	}
}

func TestRegistry(t *testing.T) {
	sp, ok := Lookup(DefaultModel)
	if !ok {
		t.Fatal("default model not in the registry")
	}
	if sp.Size != 598_597_605 || sp.SHA256 != "01832e9567e6f668928c6ef493fe9c0985f9df146e0212bdccc87f3e25e37084" {
		t.Errorf("default model size/sha = %d %s", sp.Size, sp.SHA256)
	}
	if !strings.Contains(string(sp.Config), `"quick_gelu": true`) || sp.License.Name == "" {
		t.Errorf("default model config/licence incomplete: %s %+v", sp.Config, sp.License)
	}
}
