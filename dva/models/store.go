package models

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Files that make a folder a model (DESIGN §4).
const (
	ConfigFile      = "open_clip_config.json"
	SafetensorsFile = "open_clip_model.safetensors"
	TorchFile       = "open_clip_pytorch_model.bin"
)

// Options configure a Store.
type Options struct {
	Client    *http.Client // default: one with sane timeouts
	UserAgent string
	// Endpoint replaces the scheme and host of the registry's URLs (a mirror of the
	// Hugging Face hub, as HF_ENDPOINT does for its own tools). Empty: the registry's URLs.
	Endpoint string
	// Specs replaces the built-in registry (tests, private registries).
	Specs []Spec
	// Retries is how many times a broken download is resumed before giving up (default 5).
	Retries int
	// RetryWait is the first wait before resuming; it doubles each time (default 1 s).
	RetryWait time.Duration
}

// Store keeps downloaded models under one folder.
type Store struct {
	dir   string
	opts  Options
	specs []Spec
}

// NewStore returns a store rooted at dir (the data folder's models/).
func NewStore(dir string, opts Options) *Store {
	if opts.Client == nil {
		opts.Client = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			ResponseHeaderTimeout: 60 * time.Second,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   30 * time.Second,
		}}
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "gata-contributor"
	}
	if opts.Retries == 0 {
		opts.Retries = 5
	}
	if opts.RetryWait == 0 {
		opts.RetryWait = time.Second
	}
	specs := opts.Specs
	if specs == nil {
		specs = Known()
	}
	return &Store{dir: dir, opts: opts, specs: specs}
}

// Specs lists the models this store can download.
func (s *Store) Specs() []Spec { return s.specs }

// Spec finds a model by name.
func (s *Store) Spec(name string) (Spec, error) {
	for _, sp := range s.specs {
		if sp.Name == name {
			return sp, nil
		}
	}
	var names []string
	for _, sp := range s.specs {
		names = append(names, sp.Name)
	}
	return Spec{}, fmt.Errorf("%w %q (known: %s; or give a model folder's path)", ErrUnknownModel, name, strings.Join(names, ", "))
}

// Dir is the folder a downloaded model lives in: one per weights checksum.
func (s *Store) Dir(sp Spec) string { return filepath.Join(s.dir, "sha256-"+sp.SHA256) }

func (s *Store) partPath(sp Spec) string {
	return filepath.Join(s.dir, "downloads", sp.SHA256+".part")
}

// IsModelDir reports whether dir holds a config and weights.
func IsModelDir(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, ConfigFile)); err != nil {
		return false
	}
	for _, f := range []string{SafetensorsFile, TorchFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return true
		}
	}
	return false
}

// ErrUnknownModel is returned for a model name the registry does not have.
var ErrUnknownModel = errors.New("unknown model")

// ErrNotDownloaded is returned by Resolve for a known model that is not downloaded yet.
var ErrNotDownloaded = errors.New("model not downloaded")

// Resolve turns a model name or a model folder's path into a folder the engine can load.
// An empty name means the default model.
func (s *Store) Resolve(nameOrPath string) (string, error) {
	if nameOrPath == "" {
		nameOrPath = DefaultModel
	}
	if st, err := os.Stat(nameOrPath); err == nil && st.IsDir() {
		if !IsModelDir(nameOrPath) {
			return "", fmt.Errorf("model folder %q has no %s with %s or %s", nameOrPath, ConfigFile, SafetensorsFile, TorchFile)
		}
		return nameOrPath, nil
	}
	if strings.ContainsAny(nameOrPath, `/\`) {
		return "", fmt.Errorf("model folder %q does not exist", nameOrPath)
	}
	sp, err := s.Spec(nameOrPath)
	if err != nil {
		return "", err
	}
	dir := s.Dir(sp)
	if !IsModelDir(dir) {
		return "", fmt.Errorf("model %s: %w (run 'gata models pull %s')", sp.Name, ErrNotDownloaded, sp.Name)
	}
	return dir, nil
}

// Status is what the store knows about one model.
type Status struct {
	Spec       Spec   `json:"spec"`
	Downloaded bool   `json:"downloaded"`
	Dir        string `json:"dir,omitempty"`
	Partial    int64  `json:"partial_bytes,omitempty"` // bytes of an interrupted download
}

// List returns every known model with whether it is downloaded.
func (s *Store) List() []Status {
	var out []Status
	for _, sp := range s.specs {
		st := Status{Spec: sp}
		if dir := s.Dir(sp); IsModelDir(dir) {
			st.Downloaded, st.Dir = true, dir
		}
		if fi, err := os.Stat(s.partPath(sp)); err == nil {
			st.Partial = fi.Size()
		}
		out = append(out, st)
	}
	return out
}

// Progress reports a download or a verification: bytes done of total.
type Progress func(done, total int64)

func (s *Store) url(sp Spec) (string, error) {
	if s.opts.Endpoint == "" {
		return sp.URL, nil
	}
	u, err := url.Parse(sp.URL)
	if err != nil {
		return "", fmt.Errorf("model %s url: %w", sp.Name, err)
	}
	ep, err := url.Parse(strings.TrimSuffix(s.opts.Endpoint, "/"))
	if err != nil || ep.Scheme == "" || ep.Host == "" {
		return "", fmt.Errorf("model endpoint %q is not an http(s) URL", s.opts.Endpoint)
	}
	u.Scheme, u.Host = ep.Scheme, ep.Host
	u.Path = ep.Path + u.Path
	return u.String(), nil
}

// Pull downloads a known model unless it is already there, resuming an interrupted
// download with an HTTP Range request, verifies its size and sha256, and moves it into
// place atomically. It returns the model's folder.
func (s *Store) Pull(ctx context.Context, name string, progress Progress) (string, error) {
	sp, err := s.Spec(name)
	if err != nil {
		return "", err
	}
	dir := s.Dir(sp)
	if IsModelDir(dir) {
		if progress != nil {
			progress(sp.Size, sp.Size)
		}
		return dir, nil
	}
	src, err := s.url(sp)
	if err != nil {
		return "", err
	}
	part := s.partPath(sp)
	if err := os.MkdirAll(filepath.Dir(part), 0o700); err != nil {
		return "", fmt.Errorf("pull %s: %w", sp.Name, err)
	}
	var lastErr error
	for attempt := 0; attempt <= s.opts.Retries; attempt++ {
		if attempt > 0 {
			wait := s.opts.RetryWait << min(attempt-1, 5)
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(wait):
			}
		}
		var retry bool
		retry, lastErr = s.download(ctx, sp, src, part, progress)
		if lastErr == nil {
			break
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if !retry {
			return "", fmt.Errorf("pull %s: %w", sp.Name, lastErr)
		}
	}
	if lastErr != nil {
		return "", fmt.Errorf("pull %s: %w (run the pull again to resume)", sp.Name, lastErr)
	}
	if err := s.verifyFile(ctx, sp, part, progress); err != nil {
		os.Remove(part)
		return "", fmt.Errorf("pull %s: %w", sp.Name, err)
	}
	if err := s.install(sp, part); err != nil {
		return "", fmt.Errorf("pull %s: %w", sp.Name, err)
	}
	return dir, nil
}

// download appends the rest of the file to part. It reports whether a failure is worth retrying.
func (s *Store) download(ctx context.Context, sp Spec, src, part string, progress Progress) (retry bool, err error) {
	f, err := os.OpenFile(part, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return false, err
	}
	defer f.Close()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return false, err
	}
	if sp.Size > 0 && have > sp.Size {
		if err := f.Truncate(0); err != nil {
			return false, err
		}
		have, _ = f.Seek(0, io.SeekStart)
	}
	if sp.Size > 0 && have == sp.Size {
		return false, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("User-Agent", s.opts.UserAgent)
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return true, fmt.Errorf("download: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		start, ok := contentRangeStart(resp.Header.Get("Content-Range"))
		if !ok || start != have {
			// The server sent another range than asked for: start over.
			if err := f.Truncate(0); err != nil {
				return false, err
			}
			return true, fmt.Errorf("download: server answered range %q to a request from byte %d", resp.Header.Get("Content-Range"), have)
		}
	case resp.StatusCode == http.StatusOK:
		if have > 0 { // no range support: start over
			if err := f.Truncate(0); err != nil {
				return false, err
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return false, err
			}
			have = 0
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		if err := f.Truncate(0); err != nil {
			return false, err
		}
		return true, fmt.Errorf("download: server refused to resume at byte %d", have)
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, fmt.Errorf("download: %s", resp.Status)
	default:
		return false, fmt.Errorf("download %s: %s", src, resp.Status)
	}
	total := sp.Size
	w := &progressWriter{w: f, done: have, total: total, fn: progress}
	var body io.Reader = resp.Body
	if total > 0 {
		body = io.LimitReader(resp.Body, total-have+1) // one byte more reveals an oversized answer
	}
	_, err = io.Copy(w, body)
	if err != nil {
		return true, fmt.Errorf("download: %w", err)
	}
	if err := f.Sync(); err != nil {
		return false, err
	}
	if total > 0 && w.done != total {
		if w.done > total {
			f.Truncate(0)
			return false, fmt.Errorf("download: the server sent more than the expected %d bytes", total)
		}
		return true, fmt.Errorf("download: connection ended at byte %d of %d", w.done, total)
	}
	return false, nil
}

func contentRangeStart(h string) (int64, bool) {
	// "bytes 100-199/200"
	rest, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, false
	}
	first, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(first, 10, 64)
	return n, err == nil
}

type progressWriter struct {
	w           io.Writer
	done, total int64
	fn          Progress
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.done += int64(n)
	if p.fn != nil {
		p.fn(p.done, p.total)
	}
	return n, err
}

// verifyFile checks the size and sha256 of a weights file.
func (s *Store) verifyFile(ctx context.Context, sp Spec, path string, progress Progress) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if sp.Size > 0 && fi.Size() != sp.Size {
		return fmt.Errorf("verify: size is %d bytes, want %d", fi.Size(), sp.Size)
	}
	h := sha256.New()
	if err := hashWithProgress(ctx, h, f, fi.Size(), progress); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sp.SHA256 {
		return fmt.Errorf("verify: sha256 is %s, want %s (the file is corrupt or not the published one)", got, sp.SHA256)
	}
	return nil
}

func hashWithProgress(ctx context.Context, h hash.Hash, r io.Reader, total int64, progress Progress) error {
	buf := make([]byte, 1<<20)
	var done int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := r.Read(buf)
		h.Write(buf[:n])
		done += int64(n)
		if progress != nil && n > 0 {
			progress(done, total)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// install moves a verified download into its model folder with the config beside it.
func (s *Store) install(sp Spec, part string) error {
	dir := s.Dir(sp)
	tmp, err := os.MkdirTemp(s.dir, ".install-*")
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := os.WriteFile(filepath.Join(tmp, ConfigFile), sp.Config, 0o600); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "MODEL"), []byte(sp.Name+"\n"+sp.URL+"\n"+sp.License.Name+" "+sp.License.URL+"\n"), 0o600); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if err := os.Rename(part, filepath.Join(tmp, sp.File)); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	os.RemoveAll(dir) // a half-installed folder from an older crash
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	return nil
}

// Verify re-checks the size and sha256 of a downloaded model's weights.
func (s *Store) Verify(ctx context.Context, name string, progress Progress) error {
	sp, err := s.Spec(name)
	if err != nil {
		return err
	}
	dir := s.Dir(sp)
	if !IsModelDir(dir) {
		return fmt.Errorf("verify %s: %w", sp.Name, ErrNotDownloaded)
	}
	if err := s.verifyFile(ctx, sp, filepath.Join(dir, sp.File), progress); err != nil {
		return fmt.Errorf("verify %s: %w", sp.Name, err)
	}
	return nil
}
