package chat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Role says who wrote a message.
type Role string

// The roles of a conversation.
const (
	RoleSystem    Role = "system"
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
)

// Message is one message of a conversation, in the {role, content} form the exports use.
type Message struct {
	Role    Role   `json:"role"`
	Content string `json:"content"`
}

// DefaultMaxTokens is the answer length asked for when a Request leaves MaxTokens at 0.
const DefaultMaxTokens = 1024

// Request asks a model for one answer to a conversation.
type Request struct {
	// Model is the provider's own model name (no "provider/" prefix).
	Model    string
	Messages []Message
	// MaxTokens caps the answer; 0 is DefaultMaxTokens.
	MaxTokens int
	// Temperature is the sampling temperature; nil leaves the provider's default.
	Temperature *float64
}

// Delta is a piece of an answer as it streams in.
type Delta struct {
	Text string
}

// Usage is what a finished answer reports: token counts (0 when the server does not
// say) and the provider's own word for why it stopped ("stop", "end_turn", "length", …).
type Usage struct {
	InputTokens  int
	OutputTokens int
	StopReason   string
}

// Provider streams answers from one configured API.
type Provider interface {
	// Stream sends the request and calls fn with each piece of the answer, in order,
	// from the calling goroutine. An error from fn stops the stream and is returned
	// as is; every other failure is an *Error.
	Stream(ctx context.Context, req Request, fn func(Delta) error) (Usage, error)
	// Models lists the model names the provider offers.
	Models(ctx context.Context) ([]string, error)
}

// Provider kinds.
const (
	KindOpenAI    = "openai"    // OpenAI-compatible chat completions
	KindAnthropic = "anthropic" // Anthropic Messages
)

// DefaultTimeout is how long a provider waits, when its config says 0, for the first
// byte of an answer and then for each next piece of it.
const DefaultTimeout = 60 * time.Second

// ProviderConfig is one provider as the settings keep it. The key itself is never
// encoded, printed or logged: APIKey is excluded from JSON and from String.
type ProviderConfig struct {
	// Name is the prefix of the provider's model ids ("local" in "local/llama3").
	Name string `json:"name"`
	// Kind is KindOpenAI or KindAnthropic.
	Kind string `json:"kind"`
	// BaseURL is the API's root, e.g. "https://api.openai.com/v1",
	// "http://127.0.0.1:11434/v1" (Ollama) or "https://api.anthropic.com".
	BaseURL string `json:"base_url"`
	// APIKeyEnv names an environment variable holding the key, used when APIKey is empty.
	APIKeyEnv string `json:"api_key_env,omitempty"`
	// APIKey is the key as read from the keyring by the caller.
	APIKey string `json:"-"`
	// Models are the model names the user picked; Models() adds them to the server's list.
	Models []string `json:"models,omitempty"`
	// Timeout bounds the wait for the first byte and then between pieces of an answer
	// (an idle timeout, not a cap on long answers); 0 is DefaultTimeout.
	Timeout time.Duration `json:"timeout,omitempty"`
}

// String describes the config without its key.
func (c ProviderConfig) String() string {
	return fmt.Sprintf("%s (%s, %s)", c.Name, c.Kind, c.BaseURL)
}

// GoString describes the config without its key.
func (c ProviderConfig) GoString() string { return c.String() }

// LogValue describes the config to slog without its key.
func (c ProviderConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", c.Name), slog.String("kind", c.Kind),
		slog.String("base_url", c.BaseURL), slog.String("api_key_env", c.APIKeyEnv))
}

// Validate checks the fields a provider needs.
func (c ProviderConfig) Validate() error {
	if c.Name == "" || strings.ContainsAny(c.Name, "/ \t\n") {
		return fmt.Errorf("check provider %q: name must be non-empty without '/' or spaces", c.Name)
	}
	if c.Kind != KindOpenAI && c.Kind != KindAnthropic {
		return fmt.Errorf("check provider %q: kind must be %q or %q, not %q", c.Name, KindOpenAI, KindAnthropic, c.Kind)
	}
	if !strings.HasPrefix(c.BaseURL, "http://") && !strings.HasPrefix(c.BaseURL, "https://") {
		return fmt.Errorf("check provider %q: base URL must start with http:// or https://", c.Name)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("check provider %q: timeout must not be negative", c.Name)
	}
	return nil
}

func (c ProviderConfig) key() string {
	if c.APIKey != "" {
		return c.APIKey
	}
	if c.APIKeyEnv != "" {
		return os.Getenv(c.APIKeyEnv)
	}
	return ""
}

// ProviderOption changes how NewProvider builds a provider.
type ProviderOption func(*providerOptions)

type providerOptions struct {
	httpClient   *http.Client
	sleep        func(ctx context.Context, d time.Duration) error
	maxRetries   int
	maxRetryWait time.Duration
}

// WithHTTPClient makes the provider send its requests through c.
func WithHTTPClient(c *http.Client) ProviderOption {
	return func(o *providerOptions) { o.httpClient = c }
}

// WithSleep replaces the wait between retries (tests record the waits instead).
func WithSleep(sleep func(ctx context.Context, d time.Duration) error) ProviderOption {
	return func(o *providerOptions) { o.sleep = sleep }
}

// WithRetries sets how many times a request that failed with 408, 429 or 5xx before
// its first token is tried again (default 3; 0 turns retries off), and the longest
// Retry-After the provider will wait for (default 60 s; a longer one fails at once).
func WithRetries(n int, maxWait time.Duration) ProviderOption {
	return func(o *providerOptions) { o.maxRetries, o.maxRetryWait = n, maxWait }
}

// NewProvider builds the provider cfg describes.
func NewProvider(cfg ProviderConfig, opts ...ProviderOption) (Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := providerOptions{httpClient: &http.Client{}, sleep: sleepCtx, maxRetries: 3, maxRetryWait: time.Minute}
	for _, opt := range opts {
		opt(&o)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	r := retrier{cfg: cfg, opts: o}
	if cfg.Kind == KindAnthropic {
		return newAnthropic(r), nil
	}
	return newOpenAI(r), nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ErrorKind sorts provider failures for the UI and for retries.
type ErrorKind string

// The kinds of provider failure.
const (
	ErrAuth       ErrorKind = "auth"        // 401/403: the key is missing or wrong
	ErrNotFound   ErrorKind = "not_found"   // 404: no such model (or wrong base URL)
	ErrRateLimit  ErrorKind = "rate_limit"  // 429, still after the retries
	ErrServer     ErrorKind = "server"      // 5xx or an error event, still after the retries
	ErrBadRequest ErrorKind = "bad_request" // another 4xx
	ErrRefusal    ErrorKind = "refusal"     // the model declined to answer
	ErrDisconnect ErrorKind = "disconnect"  // the stream broke off before the answer ended
	ErrTimeout    ErrorKind = "timeout"     // nothing arrived within the provider's timeout
	ErrNetwork    ErrorKind = "network"     // the server could not be reached
	ErrCanceled   ErrorKind = "canceled"    // the caller stopped it
)

var kindText = map[ErrorKind]string{
	ErrAuth:       "authentication failed, check the API key",
	ErrNotFound:   "model or endpoint not found",
	ErrRateLimit:  "rate limited",
	ErrServer:     "server error",
	ErrBadRequest: "request rejected",
	ErrRefusal:    "the model refused to answer",
	ErrDisconnect: "the stream was cut off",
	ErrTimeout:    "timed out waiting for the model",
	ErrNetwork:    "cannot reach the server",
	ErrCanceled:   "stopped",
}

// Error is a provider failure, safe to show in a model's column: one line, no key.
type Error struct {
	Provider string
	Model    string
	Kind     ErrorKind
	Status   int    // the HTTP status, 0 when there was none
	Message  string // the server's own message, cleaned to one short line; may be empty
	Err      error  // the cause
}

// Error is "provider/model: what happened (status): server message".
func (e *Error) Error() string { return e.Provider + "/" + e.Model + ": " + e.Reason() }

// Reason is the error without the model's name: "what happened (status): server message".
func (e *Error) Reason() string {
	var b strings.Builder
	b.WriteString(kindText[e.Kind])
	if e.Status != 0 {
		fmt.Fprintf(&b, " (%d)", e.Status)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// retryable says whether a request that failed this way before its first token may
// be sent again.
func (e *Error) retryable() bool {
	return e.Kind == ErrRateLimit || e.Kind == ErrServer || e.Status == http.StatusRequestTimeout
}

// KindOf returns the kind of a provider failure, or "" for other errors.
func KindOf(err error) ErrorKind {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Kind
	}
	return ""
}

// oneLine squeezes a server message to one line of at most 200 runes, with the key
// (should a server echo it) masked.
func oneLine(s, key string) string {
	if key != "" && len(key) >= 6 {
		s = strings.ReplaceAll(s, key, "***")
	}
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 200 {
		s = string(r[:199]) + "…"
	}
	return s
}

func kindForStatus(status int) ErrorKind {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return ErrAuth
	case status == http.StatusNotFound:
		return ErrNotFound
	case status == http.StatusTooManyRequests:
		return ErrRateLimit
	case status == http.StatusRequestTimeout || status >= 500:
		return ErrServer
	default:
		return ErrBadRequest
	}
}

// retryAfter reads retry-after-ms or Retry-After (seconds or an HTTP date) from a
// response; 0 when absent.
func retryAfter(h http.Header) time.Duration {
	if h == nil {
		return 0
	}
	if ms, err := strconv.ParseFloat(h.Get("Retry-After-Ms"), 64); err == nil && ms > 0 {
		return time.Duration(ms * float64(time.Millisecond))
	}
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// backoff is the wait before retry n (0-based) when the server gives no Retry-After:
// 0.5 s, 1 s, 2 s, … capped at 8 s.
func backoff(n int) time.Duration {
	return min(500*time.Millisecond<<n, 8*time.Second)
}

// errIdle is the cancellation cause when nothing arrived within the timeout.
var errIdle = errors.New("idle timeout")

// attempt runs one request. It calls alive for every event the server sends and emit
// for every piece of text; it returns the SDK's error and the Retry-After the server
// gave with it.
type attempt func(ctx context.Context, alive func(), emit func(string) error) (Usage, http.Header, error)

// retrier holds what both SDK adapters share: the config, timeouts, retries and the
// translation of failures into *Error.
type retrier struct {
	cfg  ProviderConfig
	opts providerOptions
	// classify turns an SDK error into an *Error (nil when it is not the SDK's own).
	classify func(err error) *Error
}

func (r retrier) fail(model string, kind ErrorKind, status int, msg string, cause error) *Error {
	return &Error{Provider: r.cfg.Name, Model: model, Kind: kind, Status: status, Message: oneLine(msg, r.cfg.key()), Err: cause}
}

func (r retrier) run(ctx context.Context, model string, try attempt, fn func(Delta) error) (Usage, error) {
	for n := 0; ; n++ {
		started := false
		var fnErr error
		actx, cancel := context.WithCancelCause(ctx)
		idle := time.AfterFunc(r.cfg.Timeout, func() { cancel(errIdle) })
		alive := func() { idle.Reset(r.cfg.Timeout) }
		emit := func(s string) error {
			alive()
			if s == "" {
				return nil
			}
			started = true
			if err := fn(Delta{Text: s}); err != nil {
				fnErr = err
				return err
			}
			return nil
		}
		u, hdr, err := try(actx, alive, emit)
		idle.Stop()
		cause := context.Cause(actx)
		cancel(nil)
		if fnErr != nil {
			return u, fnErr
		}
		if err == nil {
			return u, nil
		}
		var pe *Error
		switch {
		case ctx.Err() != nil:
			return u, r.fail(model, ErrCanceled, 0, "", ctx.Err())
		case errors.Is(cause, errIdle):
			return u, r.fail(model, ErrTimeout, 0, fmt.Sprintf("nothing for %s", r.cfg.Timeout), err)
		case errors.As(err, &pe):
		default:
			pe = r.classify(err)
			if pe == nil {
				pe = r.transportError(model, err)
			}
		}
		pe.Provider, pe.Model = r.cfg.Name, model
		if started || !pe.retryable() || n >= r.opts.maxRetries {
			return u, pe
		}
		wait := retryAfter(hdr)
		if wait > r.opts.maxRetryWait {
			pe.Message = oneLine(fmt.Sprintf("server asks to retry after %s", wait.Round(time.Second)), "")
			return u, pe
		}
		if wait == 0 {
			wait = backoff(n)
		}
		if err := r.opts.sleep(ctx, wait); err != nil {
			return u, r.fail(model, ErrCanceled, 0, "", err)
		}
	}
}

// transportError sorts errors below HTTP: broken streams and unreachable servers.
func (r retrier) transportError(model string, err error) *Error {
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, errCutOff), errors.Is(err, io.EOF):
		return r.fail(model, ErrDisconnect, 0, "", err)
	case errors.As(err, &oe) && oe.Op == "dial":
		return r.fail(model, ErrNetwork, 0, oe.Err.Error(), err)
	case errors.As(err, &ne) && ne.Timeout():
		return r.fail(model, ErrTimeout, 0, "", err)
	default:
		return r.fail(model, ErrDisconnect, 0, err.Error(), err)
	}
}

// errCutOff is reported when a stream ends cleanly at the HTTP level but without the
// protocol's own end (no finish_reason or [DONE]; no message_stop).
var errCutOff = errors.New("stream ended before the answer was complete")

func maxTokens(n int) int64 {
	if n <= 0 {
		return DefaultMaxTokens
	}
	return int64(n)
}

func mergeModels(listed, configured []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range append(append([]string{}, configured...), listed...) {
		if m != "" && !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	return out
}
