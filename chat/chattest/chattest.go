// Package chattest runs fake LLM servers on 127.0.0.1 for tests: one speaks the OpenAI
// chat-completions protocol (streamed as server-sent events), the other Anthropic's
// Messages protocol. Each model the fake knows has a Behavior with knobs for slow
// streams, broken connections, rate limits, errors and refusals, so the real SDK
// clients can be driven through every path a real server takes them.
package chattest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Behavior is how the fake answers requests for one model.
type Behavior struct {
	// Reply is the answer; "" is "This is the answer of MODEL.".
	Reply string
	// Delay is the pause before each piece of the answer (a slow stream).
	Delay time.Duration
	// Hold, when not nil, makes every answer wait for it to be closed (or for the
	// client to go away) before its first piece.
	Hold chan struct{}
	// Status, when not 0, answers every request with this HTTP status and the
	// protocol's error body (401, 404, 500, …).
	Status int
	// FailFirst answers the first FailFirst requests with FailStatus (default 429)
	// and the Retry-After header RetryAfter (when not "").
	FailFirst  int
	FailStatus int
	RetryAfter string
	// CutAfter, when not 0, drops the connection after that many pieces of the answer.
	CutAfter int
	// ErrorAfter, when not 0, sends the protocol's in-stream error event after that
	// many pieces and ends the stream.
	ErrorAfter int
	// Refuse makes the model refuse; for OpenAI the text is sent as the refusal.
	Refuse string
	// Truncate ends the stream cleanly (no finish or stop event) after the answer.
	Truncate bool
}

// Options configure a fake server.
type Options struct {
	// APIKey, when set, is the only key the server accepts (others get 401).
	APIKey string
	// Models are the models the server knows, with how each answers; requests for
	// other models get 404. The models endpoint lists them.
	Models map[string]Behavior
}

// Request is one chat request the fake received, as decoded from its JSON body.
type Request struct {
	Model       string
	Messages    []Message
	System      string
	MaxTokens   int
	Temperature *float64
	Stream      bool
	// IncludeUsage is OpenAI's stream_options.include_usage.
	IncludeUsage bool
}

// Message is a {role, content} message of a request; content arrays are joined.
type Message struct {
	Role    string
	Content string
}

// Server is a running fake.
type Server struct {
	// URL is the base URL to configure a provider with: ".../v1" for OpenAI, the
	// root for Anthropic (its SDK adds "/v1/messages").
	URL  string
	opts Options
	srv  *httptest.Server

	mu       sync.Mutex
	requests []Request
	counts   map[string]int
}

func newServer(t testing.TB, opts Options, h func(s *Server) http.Handler) *Server {
	t.Helper()
	s := &Server{opts: opts, counts: map[string]int{}}
	s.srv = httptest.NewServer(h(s))
	t.Cleanup(s.srv.Close)
	return s
}

// Requests returns the chat requests received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Count returns how many chat requests asked for model.
func (s *Server) Count(model string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[model]
}

// Client returns an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// record stores the request and returns the model's behaviour, whether the model is
// known, and how many requests for it came before this one.
func (s *Server) record(r Request) (Behavior, bool, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r)
	n := s.counts[r.Model]
	s.counts[r.Model]++
	b, ok := s.opts.Models[r.Model]
	return b, ok, n
}

func (b Behavior) reply(model string) string {
	if b.Reply != "" {
		return b.Reply
	}
	return "This is the answer of " + model + "."
}

// pieces splits an answer into word-sized pieces that join back to it.
func pieces(s string) []string {
	var out []string
	for len(s) > 0 {
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i+1])
		s = s[i+1:]
	}
	return out
}

// wait pauses for d or until the request is gone; false when it is gone.
func wait(r *http.Request, d time.Duration, hold chan struct{}) bool {
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return false
		}
	}
	if d <= 0 {
		return r.Context().Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// sse writes server-sent events and flushes each.
type sse struct {
	w http.ResponseWriter
	f http.Flusher
}

func startSSE(w http.ResponseWriter) *sse {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	f, _ := w.(http.Flusher)
	return &sse{w: w, f: f}
}

func (s *sse) send(event string, data any) {
	var b []byte
	switch d := data.(type) {
	case string:
		b = []byte(d)
	default:
		b, _ = json.Marshal(d)
	}
	if event != "" {
		fmt.Fprintf(s.w, "event: %s\n", event)
	}
	fmt.Fprintf(s.w, "data: %s\n\n", b)
	if s.f != nil {
		s.f.Flush()
	}
}

// cut drops the connection mid-stream: the client sees the body end without the
// chunked terminator.
func cut() { panic(http.ErrAbortHandler) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func words(ms []Message) int {
	n := 0
	for _, m := range ms {
		n += len(strings.Fields(m.Content))
	}
	return n
}

// contentText joins a message content that is a string or an array of text parts.
func contentText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []struct {
		Text string `json:"text"`
	}
	json.Unmarshal(raw, &parts)
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Text)
	}
	return b.String()
}
