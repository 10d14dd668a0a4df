package pipeline

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fetchServer is a loopback image server with one handler per path; it counts the
// requests of each path and keeps the User-Agents it saw.
type fetchServer struct {
	*httptest.Server
	mu     sync.Mutex
	hits   map[string]int
	agents map[string]bool
}

func newFetchServer(t *testing.T, img []byte) *fetchServer {
	t.Helper()
	s := &fetchServer{hits: map[string]int{}, agents: map[string]bool{}}
	release := make(chan struct{})
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/jpeg")
		w.Write(img)
	}
	tagged := func(tags ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			for _, tag := range tags {
				w.Header().Add("X-Robots-Tag", tag)
			}
			ok(w, r)
		}
	}
	mux.HandleFunc("/ok.jpg", ok)
	mux.HandleFunc("/missing.jpg", http.NotFound)
	mux.HandleFunc("/gone.jpg", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) })
	mux.HandleFunc("/forbidden.jpg", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) })
	mux.HandleFunc("/noai.jpg", tagged("noai"))
	mux.HandleFunc("/several.jpg", tagged("noarchive, NoImageIndex"))
	mux.HandleFunc("/otherbot.jpg", tagged("otherbot: noai"))
	mux.HandleFunc("/ours.jpg", tagged("gata: noimageai"))
	mux.HandleFunc("/second-header.jpg", tagged("noarchive", "otherbot: noai, gata: noindex"))
	mux.HandleFunc("/harmless.jpg", tagged("unavailable_after: 25 Jun 2010 15:00:00 PST, max-image-preview: large"))
	mux.HandleFunc("/slow.jpg", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/slow-body.jpg", func(w http.ResponseWriter, r *http.Request) {
		w.Write(img[:10])
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/flaky.jpg", func(w http.ResponseWriter, r *http.Request) {
		if s.count(r) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		ok(w, r)
	})
	mux.HandleFunc("/down.jpg", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	mux.HandleFunc("/limited.jpg", func(w http.ResponseWriter, r *http.Request) {
		if s.count(r) == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		ok(w, r)
	})
	mux.HandleFunc("/limited-long.jpg", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	mux.HandleFunc("/big.jpg", func(w http.ResponseWriter, r *http.Request) { w.Write(bytes.Repeat([]byte("b"), 5000)) })
	mux.HandleFunc("/big-chunked.jpg", func(w http.ResponseWriter, r *http.Request) {
		for range 50 {
			w.Write(bytes.Repeat([]byte("c"), 100))
			w.(http.Flusher).Flush() // no Content-Length: the cap must stop the read
		}
	})
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		s.agents[r.UserAgent()] = true
		s.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { close(release); s.Close() })
	return s
}

// count returns how many requests for r's path came so far, r included.
func (s *fetchServer) count(r *http.Request) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[r.URL.Path]
}

// hitsOf returns the requests made for path.
func (s *fetchServer) hitsOf(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

func TestFetcher(t *testing.T) {
	img := testJPEG(t)
	srv := newFetchServer(t, img)
	dir := t.TempDir()
	local := filepath.Join(dir, "local.jpg")
	if err := os.WriteFile(local, img, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "big.jpg"), bytes.Repeat([]byte("x"), 5000), 0o644); err != nil {
		t.Fatal(err)
	}
	f := NewFetcher(FetchOptions{Timeout: 300 * time.Millisecond, Backoff: time.Millisecond, MaxBytes: 4096, Version: "1.2.3"})
	defer f.CloseIdleConnections()

	tests := []struct {
		url      string
		want     Reason // "" for the image
		wantHits int    // requests to the server; 0 to not check
	}{
		{srv.URL + "/ok.jpg", "", 1},
		{srv.URL + "/missing.jpg", ReasonNotFound, 1},
		{srv.URL + "/gone.jpg", ReasonNotFound, 1},
		{srv.URL + "/forbidden.jpg", ReasonFetchFailed, 1},
		{srv.URL + "/noai.jpg", ReasonOptedOut, 1},
		{srv.URL + "/several.jpg", ReasonOptedOut, 0},
		{srv.URL + "/otherbot.jpg", "", 0},
		{srv.URL + "/ours.jpg", ReasonOptedOut, 0},
		{srv.URL + "/second-header.jpg", ReasonOptedOut, 0},
		{srv.URL + "/harmless.jpg", "", 0},
		{srv.URL + "/slow.jpg", ReasonTimeout, 3},
		{srv.URL + "/slow-body.jpg", ReasonTimeout, 3},
		{srv.URL + "/flaky.jpg", "", 2},
		{srv.URL + "/down.jpg", ReasonFetchFailed, 3},
		{srv.URL + "/limited.jpg", "", 2},
		{srv.URL + "/limited-long.jpg", ReasonFetchFailed, 1},
		{srv.URL + "/big.jpg", ReasonTooLarge, 1},
		{srv.URL + "/big-chunked.jpg", ReasonTooLarge, 1},
		{local, "", 0},
		{"file://" + filepath.ToSlash(local), "", 0},
		{filepath.Join(dir, "none.jpg"), ReasonNotFound, 0},
		{filepath.Join(dir, "big.jpg"), ReasonTooLarge, 0},
		{"ftp://127.0.0.1/x.jpg", ReasonFetchFailed, 0},
		{"", ReasonNotFound, 0},
	}
	for _, tt := range tests {
		name := strings.TrimPrefix(tt.url, srv.URL)
		t.Run(name, func(t *testing.T) {
			got, ierr := f.Fetch(context.Background(), tt.url)
			var reason Reason
			if ierr != nil {
				reason = ierr.Reason
				if !strings.Contains(ierr.Error(), tt.url) {
					t.Errorf("Fetch(%q) error %q does not name the URL", tt.url, ierr)
				}
			}
			if reason != tt.want {
				t.Fatalf("Fetch(%q) reason %q (%v), want %q", tt.url, reason, ierr, tt.want)
			}
			if tt.want == "" && !bytes.Equal(got, img) {
				t.Errorf("Fetch(%q) = %d bytes, want the %d of the image", tt.url, len(got), len(img))
			}
			if tt.wantHits > 0 {
				if h := srv.hitsOf(name); h != tt.wantHits {
					t.Errorf("Fetch(%q) made %d requests, want %d", tt.url, h, tt.wantHits)
				}
			}
		})
	}
	const wantUA = "gata/1.2.3 (+https://github.com/gata-contrib/gata)"
	if f.UserAgent() != wantUA || len(srv.agents) != 1 || !srv.agents[wantUA] {
		t.Errorf("User-Agents sent: %v (UserAgent() %q), want only %q", srv.agents, f.UserAgent(), wantUA)
	}
}

func TestFetcherOptions(t *testing.T) {
	img := testJPEG(t)
	srv := newFetchServer(t, img)

	// The opt-out check off, a custom agent addressed by name, no retries.
	f := NewFetcher(FetchOptions{IgnoreOptOut: true, UserAgent: "OtherBot/2.0", Retries: -1, Backoff: time.Millisecond})
	if _, ierr := f.Fetch(context.Background(), srv.URL+"/noai.jpg"); ierr != nil {
		t.Errorf("Fetch with IgnoreOptOut: %v", ierr)
	}
	if _, ierr := f.Fetch(context.Background(), srv.URL+"/flaky.jpg"); ierr == nil || ierr.Reason != ReasonFetchFailed {
		t.Errorf("Fetch of a 503 with Retries -1: %v, want fetch_failed", ierr)
	}
	if h := srv.hitsOf("/flaky.jpg"); h != 1 {
		t.Errorf("Retries -1 made %d requests, want 1", h)
	}
	g := NewFetcher(FetchOptions{UserAgent: "OtherBot/2.0"})
	if _, ierr := g.Fetch(context.Background(), srv.URL+"/otherbot.jpg"); ierr == nil || ierr.Reason != ReasonOptedOut {
		t.Errorf("Fetch as otherbot of an otherbot: noai image: %v, want opted_out", ierr)
	}
	h := NewFetcher(FetchOptions{DisallowedHeaderDirectives: []string{"noarchive"}})
	if _, ierr := h.Fetch(context.Background(), srv.URL+"/noai.jpg"); ierr != nil {
		t.Errorf("Fetch with only noarchive disallowed, of a noai image: %v", ierr)
	}
	if _, ierr := h.Fetch(context.Background(), srv.URL+"/several.jpg"); ierr == nil || ierr.Reason != ReasonOptedOut {
		t.Errorf("Fetch with noarchive disallowed, of a noarchive image: %v, want opted_out", ierr)
	}
}

func TestFetcherContext(t *testing.T) {
	srv := newFetchServer(t, testJPEG(t))
	f := NewFetcher(FetchOptions{Backoff: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, ierr := f.Fetch(ctx, srv.URL+"/slow.jpg"); ierr == nil || ierr.Reason != ReasonTimeout {
		t.Errorf("Fetch past the context's deadline: %v, want timeout", ierr)
	}
	if h := srv.hitsOf("/slow.jpg"); h != 1 {
		t.Errorf("Fetch past the context's deadline made %d requests, want 1 (no retry)", h)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, ierr := f.Fetch(ctx, srv.URL+"/ok.jpg"); ierr == nil || ierr.Reason != ReasonFetchFailed {
		t.Errorf("Fetch with a cancelled context: %v, want fetch_failed", ierr)
	}
}

func TestFetcherConcurrent(t *testing.T) {
	img := testJPEG(t)
	srv := newFetchServer(t, img)
	f := NewFetcher(FetchOptions{MaxConnsPerHost: 4, Backoff: time.Millisecond})
	var wg sync.WaitGroup
	var bad atomic.Int32
	for i := range 64 {
		wg.Go(func() {
			p := "/ok.jpg"
			if i%4 == 0 {
				p = "/limited.jpg"
			}
			if got, ierr := f.Fetch(context.Background(), srv.URL+p); ierr != nil || !bytes.Equal(got, img) {
				bad.Add(1)
			}
		})
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Errorf("%d of 64 concurrent fetches failed", bad.Load())
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"0", 0, true},
		{"7", 7 * time.Second, true},
		{"99999999999999999", MaxRetryAfter + time.Second, true},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, ok := retryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("retryAfter(%q) = %v, %v, want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}
