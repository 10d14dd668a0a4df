package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gata-contrib/gata/chat"
	"github.com/gata-contrib/gata/chat/chattest"
)

const testKey = "sk-test-0123456789"

// sleeps records the waits a provider asks for instead of waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return ctx.Err()
}

func (s *sleeps) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

type kind struct {
	name  string
	start func(testing.TB, chattest.Options) *chattest.Server
}

var kinds = []kind{{chat.KindOpenAI, chattest.NewOpenAI}, {chat.KindAnthropic, chattest.NewAnthropic}}

func newProvider(t *testing.T, k kind, srv *chattest.Server, sl *sleeps, mod func(*chat.ProviderConfig)) chat.Provider {
	t.Helper()
	cfg := chat.ProviderConfig{Name: "fake", Kind: k.name, BaseURL: srv.URL, APIKey: testKey}
	if mod != nil {
		mod(&cfg)
	}
	p, err := chat.NewProvider(cfg, chat.WithHTTPClient(srv.Client()), chat.WithSleep(sl.sleep))
	if err != nil {
		t.Fatalf("NewProvider: %v", err)
	}
	return p
}

func collect(ctx context.Context, p chat.Provider, req chat.Request) (string, chat.Usage, error) {
	var b strings.Builder
	u, err := p.Stream(ctx, req, func(d chat.Delta) error { b.WriteString(d.Text); return nil })
	return b.String(), u, err
}

func ask(model string) chat.Request {
	return chat.Request{Model: model, Messages: []chat.Message{
		{Role: chat.RoleSystem, Content: "Be brief."},
		{Role: chat.RoleUser, Content: "What is a latte?"},
	}}
}

func TestStreamAnswer(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			reply := "A latte is espresso with steamed milk."
			srv := k.start(t, chattest.Options{APIKey: testKey, Models: map[string]chattest.Behavior{"m1": {Reply: reply}}})
			p := newProvider(t, k, srv, &sleeps{}, nil)
			temp := 0.25
			req := ask("m1")
			req.MaxTokens, req.Temperature = 77, &temp
			var n int
			var b strings.Builder
			u, err := p.Stream(context.Background(), req, func(d chat.Delta) error { n++; b.WriteString(d.Text); return nil })
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			if b.String() != reply || n != 7 {
				t.Errorf("Stream text = %q in %d pieces, want %q in 7", b.String(), n, reply)
			}
			if u.OutputTokens != 7 || u.InputTokens == 0 || u.StopReason == "" {
				t.Errorf("Stream usage = %+v, want 7 output tokens, some input tokens, a stop reason", u)
			}
			reqs := srv.Requests()
			if len(reqs) != 1 {
				t.Fatalf("server got %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if !r.Stream || r.MaxTokens != 77 || r.Temperature == nil || *r.Temperature != 0.25 {
				t.Errorf("request = %+v, want stream, max tokens 77, temperature 0.25", r)
			}
			var roles []string
			for _, m := range r.Messages {
				roles = append(roles, m.Role+":"+m.Content)
			}
			want := []string{"system:Be brief.", "user:What is a latte?"}
			if k.name == chat.KindAnthropic {
				want = want[1:]
				if r.System != "Be brief." {
					t.Errorf("system = %q, want %q", r.System, "Be brief.")
				}
			} else if !r.IncludeUsage {
				t.Errorf("stream_options.include_usage not set")
			}
			if !reflect.DeepEqual(roles, want) {
				t.Errorf("messages = %q, want %q", roles, want)
			}
		})
	}
}

func TestStreamFailures(t *testing.T) {
	tests := []struct {
		name     string
		b        chattest.Behavior
		model    string // "" is "m1"
		key      string // "" is the right key
		kind     chat.ErrorKind
		requests int
		sleeps   []time.Duration
		text     string
	}{
		{name: "401", key: "sk-wrong-key-999", kind: chat.ErrAuth, requests: 1},
		{name: "404 model", model: "nope", kind: chat.ErrNotFound, requests: 1},
		{name: "429 then ok honours Retry-After", b: chattest.Behavior{FailFirst: 2, RetryAfter: "2", Reply: "ok"},
			requests: 3, sleeps: []time.Duration{2 * time.Second, 2 * time.Second}, text: "ok"},
		{name: "503 then ok backs off", b: chattest.Behavior{FailFirst: 2, FailStatus: 503, Reply: "ok"},
			requests: 3, sleeps: []time.Duration{500 * time.Millisecond, time.Second}, text: "ok"},
		{name: "429 forever gives up", b: chattest.Behavior{FailFirst: 100, RetryAfter: "1"}, kind: chat.ErrRateLimit,
			requests: 4, sleeps: []time.Duration{time.Second, time.Second, time.Second}},
		{name: "Retry-After too long", b: chattest.Behavior{FailFirst: 1, RetryAfter: "3600"}, kind: chat.ErrRateLimit, requests: 1},
		{name: "500 always", b: chattest.Behavior{Status: 500}, kind: chat.ErrServer, requests: 4,
			sleeps: []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}},
		{name: "400", b: chattest.Behavior{Status: 400}, kind: chat.ErrBadRequest, requests: 1},
		{name: "disconnect mid-stream is not retried", b: chattest.Behavior{Reply: "one two three four", CutAfter: 2},
			kind: chat.ErrDisconnect, requests: 1, text: "one two "},
		{name: "error event mid-stream", b: chattest.Behavior{Reply: "one two three", ErrorAfter: 1},
			kind: chat.ErrServer, requests: 1, text: "one "},
		{name: "stream ends without its end", b: chattest.Behavior{Reply: "one two", Truncate: true},
			kind: chat.ErrDisconnect, requests: 1, text: "one two"},
		{name: "refusal", b: chattest.Behavior{Refuse: "I can't help with that."}, kind: chat.ErrRefusal, requests: 1},
	}
	for _, k := range kinds {
		for _, tt := range tests {
			t.Run(k.name+"/"+tt.name, func(t *testing.T) {
				srv := k.start(t, chattest.Options{APIKey: testKey, Models: map[string]chattest.Behavior{"m1": tt.b}})
				sl := &sleeps{}
				p := newProvider(t, k, srv, sl, func(c *chat.ProviderConfig) {
					if tt.key != "" {
						c.APIKey = tt.key
					}
				})
				model := tt.model
				if model == "" {
					model = "m1"
				}
				text, _, err := collect(context.Background(), p, ask(model))
				if got := chat.KindOf(err); got != tt.kind {
					t.Errorf("Stream error = %v (kind %q), want kind %q", err, got, tt.kind)
				}
				if err != nil {
					msg := err.Error()
					if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "fake/"+model+": ") {
						t.Errorf("error %q: want one line starting with %q", msg, "fake/"+model+": ")
					}
					if strings.Contains(msg, testKey) || strings.Contains(msg, tt.key) && tt.key != "" {
						t.Errorf("error %q shows the key", msg)
					}
				}
				if text != tt.text && (tt.kind != chat.ErrRefusal || k.name == chat.KindOpenAI) {
					t.Errorf("streamed text = %q, want %q", text, tt.text)
				}
				if n := len(srv.Requests()); n != tt.requests {
					t.Errorf("server got %d requests, want %d", n, tt.requests)
				}
				if got := sl.got(); !reflect.DeepEqual(got, tt.sleeps) {
					t.Errorf("waits = %v, want %v", got, tt.sleeps)
				}
			})
		}
	}
}

func TestStreamCancelAndTimeout(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name+"/cancel", func(t *testing.T) {
			hold := make(chan struct{})
			defer close(hold)
			srv := k.start(t, chattest.Options{Models: map[string]chattest.Behavior{"m1": {Hold: hold}}})
			p := newProvider(t, k, srv, &sleeps{}, nil)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { _, _, err := collect(ctx, p, ask("m1")); done <- err }()
			for len(srv.Requests()) == 0 {
				time.Sleep(time.Millisecond)
			}
			cancel()
			err := <-done
			if chat.KindOf(err) != chat.ErrCanceled || !errors.Is(err, context.Canceled) {
				t.Errorf("Stream after cancel = %v, want a canceled error", err)
			}
		})
		t.Run(k.name+"/timeout", func(t *testing.T) {
			hold := make(chan struct{})
			defer close(hold)
			srv := k.start(t, chattest.Options{Models: map[string]chattest.Behavior{"m1": {Hold: hold}}})
			p := newProvider(t, k, srv, &sleeps{}, func(c *chat.ProviderConfig) { c.Timeout = 20 * time.Millisecond })
			_, _, err := collect(context.Background(), p, ask("m1"))
			if chat.KindOf(err) != chat.ErrTimeout {
				t.Errorf("Stream of a stalled server = %v, want a timeout", err)
			}
		})
	}
}

func TestStreamCallbackError(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			srv := k.start(t, chattest.Options{Models: map[string]chattest.Behavior{"m1": {Reply: "a b c"}}})
			p := newProvider(t, k, srv, &sleeps{}, nil)
			stop := errors.New("enough")
			_, err := p.Stream(context.Background(), ask("m1"), func(chat.Delta) error { return stop })
			if err != stop {
				t.Errorf("Stream with a failing callback = %v, want %v", err, stop)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(nil)
	url := srv.URL
	srv.Close()
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			p, err := chat.NewProvider(chat.ProviderConfig{Name: "fake", Kind: k.name, BaseURL: url}, chat.WithRetries(0, 0))
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = collect(context.Background(), p, ask("m1"))
			if chat.KindOf(err) != chat.ErrNetwork {
				t.Errorf("Stream to a closed port = %v, want a network error", err)
			}
		})
	}
}

func TestModels(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			srv := k.start(t, chattest.Options{APIKey: testKey, Models: map[string]chattest.Behavior{"b": {}, "a": {}}})
			p := newProvider(t, k, srv, &sleeps{}, func(c *chat.ProviderConfig) { c.Models = []string{"c"} })
			got, err := p.Models(context.Background())
			if want := []string{"c", "a", "b"}; err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("Models() = %q, %v; want %q", got, err, want)
			}
			bad := newProvider(t, k, srv, &sleeps{}, func(c *chat.ProviderConfig) { c.APIKey = "sk-wrong-key-999" })
			if _, err := bad.Models(context.Background()); chat.KindOf(err) != chat.ErrAuth {
				t.Errorf("Models() with a wrong key = %v, want an auth error", err)
			}
		})
	}
}

func TestProviderConfigHidesKey(t *testing.T) {
	c := chat.ProviderConfig{Name: "oa", Kind: chat.KindOpenAI, BaseURL: "https://api.openai.com/v1", APIKey: testKey, Timeout: time.Second}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{string(b), fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
		if strings.Contains(s, testKey) {
			t.Errorf("%s shows the key", s)
		}
	}
	var back chat.ProviderConfig
	if err := json.Unmarshal(b, &back); err != nil || back.Name != "oa" || back.Timeout != time.Second || back.APIKey != "" {
		t.Errorf("round trip = %+v, %v", back, err)
	}
	for _, bad := range []chat.ProviderConfig{
		{Name: "", Kind: chat.KindOpenAI, BaseURL: "http://x"},
		{Name: "a/b", Kind: chat.KindOpenAI, BaseURL: "http://x"},
		{Name: "a", Kind: "gemini", BaseURL: "http://x"},
		{Name: "a", Kind: chat.KindAnthropic, BaseURL: "ftp://x"},
	} {
		if _, err := chat.NewProvider(bad); err == nil {
			t.Errorf("NewProvider(%v) accepted a bad config", bad)
		}
	}
}

func TestAPIKeyFromEnv(t *testing.T) {
	t.Setenv("GATA_TEST_KEY", testKey)
	srv := chattest.NewOpenAI(t, chattest.Options{APIKey: testKey, Models: map[string]chattest.Behavior{"m1": {Reply: "hi"}}})
	p := newProvider(t, kinds[0], srv, &sleeps{}, func(c *chat.ProviderConfig) { c.APIKey, c.APIKeyEnv = "", "GATA_TEST_KEY" })
	if text, _, err := collect(context.Background(), p, ask("m1")); err != nil || text != "hi" {
		t.Errorf("Stream with the key from the environment = %q, %v", text, err)
	}
}
