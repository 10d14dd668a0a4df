package pipeline

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Defaults of FetchOptions.
const (
	DefaultFetchTimeout    = 10 * time.Second
	DefaultFetchRetries    = 2
	DefaultFetchBackoff    = 500 * time.Millisecond
	DefaultMaxConnsPerHost = 16
	// MaxRetryAfter is the longest Retry-After a fetch waits for; a server asking for more
	// fails the item instead.
	MaxRetryAfter = time.Minute
)

// DefaultDisallowedDirectives are the X-Robots-Tag directives that opt an image out, as
// img2dataset has them.
var DefaultDisallowedDirectives = []string{"noai", "noimageai", "noindex", "noimageindex"}

// FetchOptions tune a Fetcher. Zero values mean the defaults.
type FetchOptions struct {
	// Timeout bounds one attempt, from connecting to the end of the body (default 10 s).
	Timeout time.Duration
	// Retries is how many times a timed-out, rate-limited (429) or failed (5xx, network
	// error) fetch is tried again (default 2; negative for none). 4xx are never retried.
	Retries int
	// Backoff is the wait before the first retry, doubled for each next one (default
	// 500 ms); a 429's Retry-After replaces it.
	Backoff time.Duration
	// MaxBytes caps a fetched file: past it the fetch stops with ReasonTooLarge (default
	// the SourceOptions' MaxImageBytes, or DefaultMaxImageBytes).
	MaxBytes int64
	// Version goes into the default User-Agent ("dev" when empty).
	Version string
	// UserAgent is sent with every request (default "gata/VERSION (+https://github.com/gata-contrib/gata)").
	// Its first word, before '/', is the name X-Robots-Tag directives may address.
	UserAgent string
	// DisallowedHeaderDirectives are the X-Robots-Tag directives that make a fetch fail
	// with ReasonOptedOut (default DefaultDisallowedDirectives).
	DisallowedHeaderDirectives []string
	// IgnoreOptOut turns the X-Robots-Tag check off.
	IgnoreOptOut bool
	// MaxConnsPerHost caps the connections to one host (default 16).
	MaxConnsPerHost int
}

// withDefaults returns o with its zero fields set to the defaults.
func (o FetchOptions) withDefaults() FetchOptions {
	if o.Timeout <= 0 {
		o.Timeout = DefaultFetchTimeout
	}
	if o.Retries == 0 {
		o.Retries = DefaultFetchRetries
	}
	if o.Retries < 0 {
		o.Retries = 0
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultFetchBackoff
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxImageBytes
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.UserAgent == "" {
		o.UserAgent = "gata/" + o.Version + " (+https://github.com/gata-contrib/gata)"
	}
	if o.DisallowedHeaderDirectives == nil {
		o.DisallowedHeaderDirectives = DefaultDisallowedDirectives
	}
	if o.MaxConnsPerHost <= 0 {
		o.MaxConnsPerHost = DefaultMaxConnsPerHost
	}
	return o
}

// newTransport returns the HTTP transport of a Fetcher with o (defaults applied).
func newTransport(o FetchOptions) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4 * o.MaxConnsPerHost,
		MaxIdleConnsPerHost:   o.MaxConnsPerHost,
		MaxConnsPerHost:       o.MaxConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   o.Timeout,
		ResponseHeaderTimeout: o.Timeout,
		ExpectContinueTimeout: time.Second,
	}
}

// Fetcher downloads images named by URL (http, https, file) or local path, with a size
// cap, retries and the X-Robots-Tag opt-out check. It is safe for concurrent use.
type Fetcher struct {
	opts       FetchOptions
	client     *http.Client
	uaToken    string          // lower case, the name directives may address
	disallowed map[string]bool // lower case
}

// NewFetcher returns a Fetcher with opts.
func NewFetcher(opts FetchOptions) *Fetcher {
	opts = opts.withDefaults()
	f := &Fetcher{
		opts:       opts,
		client:     &http.Client{Transport: newTransport(opts)},
		uaToken:    agentToken(opts.UserAgent),
		disallowed: make(map[string]bool, len(opts.DisallowedHeaderDirectives)),
	}
	for _, d := range opts.DisallowedHeaderDirectives {
		f.disallowed[strings.ToLower(strings.TrimSpace(d))] = true
	}
	return f
}

// UserAgent returns the User-Agent the fetcher sends.
func (f *Fetcher) UserAgent() string { return f.opts.UserAgent }

// CloseIdleConnections closes the kept-alive connections of the fetcher.
func (f *Fetcher) CloseIdleConnections() { f.client.CloseIdleConnections() }

// Fetch returns the bytes of the image at u, an http(s) or file URL or a local path. A
// failure says why: ReasonNotFound (404, 410, a missing file), ReasonTooLarge (over
// MaxBytes), ReasonOptedOut (X-Robots-Tag), ReasonTimeout (an attempt's or ctx's deadline,
// after the retries), ReasonFetchFailed (anything else).
func (f *Fetcher) Fetch(ctx context.Context, u string) ([]byte, *ItemError) {
	switch {
	case isHTTP(u):
		return f.fetchHTTP(ctx, u)
	case strings.HasPrefix(strings.ToLower(u), "file://"):
		pu, err := url.Parse(u)
		if err != nil {
			return nil, Fail(ReasonFetchFailed, "fetch %s: %v", u, err)
		}
		return f.readFile(filepath.FromSlash(pu.Path))
	case strings.Contains(u, "://"):
		return nil, Fail(ReasonFetchFailed, "fetch %s: unsupported URL scheme", u)
	case strings.TrimSpace(u) == "":
		return nil, Fail(ReasonNotFound, "fetch: empty URL")
	}
	return f.readFile(u)
}

// readFile reads a local file with the size cap.
func (f *Fetcher) readFile(p string) ([]byte, *ItemError) {
	return readCapped(p, f.opts.MaxBytes)
}

// attemptResult is the outcome of one HTTP attempt: the body, or a failure and whether
// (and after how long at least) to try again.
type attemptResult struct {
	body  []byte
	err   *ItemError
	retry bool
	wait  time.Duration // from Retry-After; 0 means the backoff
}

// fetchHTTP fetches u over HTTP with the retries.
func (f *Fetcher) fetchHTTP(ctx context.Context, u string) ([]byte, *ItemError) {
	backoff := f.opts.Backoff
	for attempt := 0; ; attempt++ {
		r := f.attempt(ctx, u)
		if r.err == nil {
			return r.body, nil
		}
		if !r.retry || attempt >= f.opts.Retries || ctx.Err() != nil {
			return nil, r.err
		}
		wait := backoff
		if r.wait > 0 {
			wait = r.wait
		}
		backoff *= 2
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, r.err
		case <-t.C:
		}
	}
}

// attempt makes one request for u, bounded by the per-attempt timeout.
func (f *Fetcher) attempt(ctx context.Context, u string) attemptResult {
	actx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, u, nil)
	if err != nil {
		return attemptResult{err: Fail(ReasonFetchFailed, "fetch %s: %v", u, err)}
	}
	req.Header.Set("User-Agent", f.opts.UserAgent)
	resp, err := f.client.Do(req)
	if err != nil {
		return f.transportFailure(ctx, actx, u, err)
	}
	defer resp.Body.Close()

	switch code := resp.StatusCode; {
	case code == http.StatusNotFound || code == http.StatusGone:
		return attemptResult{err: Fail(ReasonNotFound, "fetch %s: %s", u, resp.Status)}
	case code == http.StatusTooManyRequests:
		wait, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now())
		if wait > MaxRetryAfter {
			return attemptResult{err: Fail(ReasonFetchFailed, "fetch %s: %s, retry after %v", u, resp.Status, wait)}
		}
		r := attemptResult{err: Fail(ReasonFetchFailed, "fetch %s: %s", u, resp.Status), retry: true}
		if ok {
			r.wait = max(wait, time.Millisecond) // a Retry-After of 0 means now, not the backoff
		}
		return r
	case code >= 500:
		return attemptResult{err: Fail(ReasonFetchFailed, "fetch %s: %s", u, resp.Status), retry: true}
	case code < 200 || code > 299:
		return attemptResult{err: Fail(ReasonFetchFailed, "fetch %s: %s", u, resp.Status)}
	}
	if !f.opts.IgnoreOptOut {
		if d := f.optOut(resp.Header.Values("X-Robots-Tag")); d != "" {
			return attemptResult{err: Fail(ReasonOptedOut, "fetch %s: X-Robots-Tag %s", u, d)}
		}
	}
	if resp.ContentLength > f.opts.MaxBytes {
		return attemptResult{err: Fail(ReasonTooLarge, "fetch %s: %d bytes is over the %d-byte limit", u, resp.ContentLength, f.opts.MaxBytes)}
	}
	body, ierr := readAllCapped(resp.Body, f.opts.MaxBytes, u)
	if ierr != nil {
		if ierr.Reason == ReasonTooLarge {
			return attemptResult{err: ierr}
		}
		return f.transportFailure(ctx, actx, u, ierr.Err)
	}
	return attemptResult{body: body}
}

// transportFailure classifies a network error of one attempt: ctx ending fails for good,
// the attempt's own timeout and other network errors may be retried, a host that does
// not exist may not.
func (f *Fetcher) transportFailure(ctx, actx context.Context, u string, err error) attemptResult {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return attemptResult{err: Fail(ReasonTimeout, "fetch %s: %v", u, ctx.Err())}
	case ctx.Err() != nil:
		return attemptResult{err: Fail(ReasonFetchFailed, "fetch %s: %v", u, ctx.Err())}
	case actx.Err() != nil || isTimeout(err):
		return attemptResult{err: Fail(ReasonTimeout, "fetch %s: no answer within %v", u, f.opts.Timeout), retry: true}
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return attemptResult{err: Fail(ReasonFetchFailed, "fetch %s: %v", u, err)}
	}
	return attemptResult{err: Fail(ReasonFetchFailed, "fetch %s: %v", u, unwrapURLError(err)), retry: true}
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// unwrapURLError drops the *url.Error wrapper, whose text repeats the method and URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// retryAfter parses a Retry-After value, seconds or an HTTP date, as a wait from now.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		if s > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter + time.Second, true
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// optOut returns the first disallowed directive that the X-Robots-Tag header values
// address to every agent or to ours, or "". A value is a comma-separated list of
// directives, where "name: directive" makes it and the directives after it in the value
// apply to that user agent only ("otherbot: noai, noindex").
func (f *Fetcher) optOut(values []string) string {
	for _, v := range values {
		agent := ""
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimSpace(part)
			if name, rest, ok := strings.Cut(part, ":"); ok {
				n := strings.ToLower(strings.TrimSpace(name))
				if isAgentName(n) {
					agent, part = n, strings.TrimSpace(rest)
				}
			}
			d, _, _ := strings.Cut(strings.ToLower(part), ":")
			d = strings.TrimSpace(d)
			if (agent == "" || agent == f.uaToken) && f.disallowed[d] {
				if agent != "" {
					return agent + ": " + d
				}
				return d
			}
		}
	}
	return ""
}

// isAgentName reports whether n, the text before a colon in an X-Robots-Tag part, names
// a user agent rather than a directive that takes a value.
func isAgentName(n string) bool {
	switch n {
	case "", "unavailable_after", "max-snippet", "max-image-preview", "max-video-preview":
		return false
	}
	return !strings.ContainsAny(n, " \t")
}

// agentToken returns the product name of a User-Agent ("gata" of "gata/1.2 (+url)"),
// lower case.
func agentToken(ua string) string {
	name, _, _ := strings.Cut(strings.TrimSpace(ua), "/")
	if i := strings.IndexAny(name, " \t"); i >= 0 {
		name = name[:i]
	}
	return strings.ToLower(name)
}
