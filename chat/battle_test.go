package chat_test

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gata-contrib/gata/chat"
	"github.com/gata-contrib/gata/chat/chattest"
)

// battleSetup is an OpenAI-compatible fake with models good and broken (its stream is
// cut after two pieces) and an Anthropic fake with model claude-x.
func battleSetup(t *testing.T, hold chan struct{}) (chat.Providers, *chattest.Server, *chattest.Server) {
	t.Helper()
	oa := chattest.NewOpenAI(t, chattest.Options{Models: map[string]chattest.Behavior{
		"good":   {Reply: "Paris is the capital of France.", Hold: hold},
		"broken": {Reply: "Paris is the capital", CutAfter: 2, Hold: hold},
	}})
	an := chattest.NewAnthropic(t, chattest.Options{Models: map[string]chattest.Behavior{
		"claude-x": {Reply: "The capital of France is Paris.", Hold: hold},
	}})
	sl := &sleeps{}
	po, err := chat.NewProvider(chat.ProviderConfig{Name: "oa", Kind: chat.KindOpenAI, BaseURL: oa.URL}, chat.WithSleep(sl.sleep))
	if err != nil {
		t.Fatal(err)
	}
	pa, err := chat.NewProvider(chat.ProviderConfig{Name: "an", Kind: chat.KindAnthropic, BaseURL: an.URL}, chat.WithSleep(sl.sleep))
	if err != nil {
		t.Fatal(err)
	}
	return chat.Providers{"oa": po, "an": pa}, oa, an
}

type recorder struct {
	mu     sync.Mutex
	events []chat.BattleEvent
}

func (r *recorder) add(e chat.BattleEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func seeded(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return rand.NewChaCha8(s)
}

var threeModels = []string{"oa/good", "oa/broken", "an/claude-x"}

func TestBattleOneColumnFails(t *testing.T) {
	providers, _, _ := battleSetup(t, nil)
	rec := &recorder{}
	b, err := chat.RunBattle(context.Background(), providers, chat.BattleRequest{
		Models: threeModels, Prompt: "What is the capital of France?", Blind: true, Rand: seeded(1),
	}, rec.add)
	if err != nil {
		t.Fatalf("RunBattle: %v", err)
	}
	if len(b.Sides) != 3 || b.Sides[0].Column != "A" || b.Sides[2].Column != "C" {
		t.Fatalf("RunBattle sides = %+v, want columns A, B, C", b.Sides)
	}
	want := map[string]string{"oa/good": "Paris is the capital of France.", "an/claude-x": "The capital of France is Paris."}
	for _, s := range b.Sides {
		a := s.Answers[0]
		if s.Model == "oa/broken" {
			if a.OK() || a.ErrorKind != chat.ErrDisconnect || a.Text != "Paris is " {
				t.Errorf("broken column %s = %+v, want a disconnect after %q", s.Column, a, "Paris is ")
			}
			if strings.Contains(a.Error, "broken") || strings.Contains(a.Error, "oa/") {
				t.Errorf("blind column's error %q names its model", a.Error)
			}
			continue
		}
		if !a.OK() || a.Text != want[s.Model] || a.OutputTokens == 0 || a.TTFT <= 0 || a.FirstToken.IsZero() {
			t.Errorf("column %s (%s) = %+v, want %q with stats", s.Column, s.Model, a, want[s.Model])
		}
	}
	// Every column: one start, deltas, then one done or error; no names while blind.
	perCol := map[string][]chat.EventKind{}
	for _, e := range rec.events {
		if e.Model != "" {
			t.Errorf("blind event names model %q", e.Model)
		}
		if e.BattleID != b.ID {
			t.Errorf("event battle id %q, want %q", e.BattleID, b.ID)
		}
		perCol[e.Column] = append(perCol[e.Column], e.Kind)
	}
	for _, s := range b.Sides {
		ks := perCol[s.Column]
		end := chat.EventDone
		if s.Model == "oa/broken" {
			end = chat.EventError
		}
		if len(ks) < 3 || ks[0] != chat.EventStart || ks[len(ks)-1] != end {
			t.Errorf("column %s events = %v, want start, deltas, %s", s.Column, ks, end)
		}
		for _, k := range ks[1 : len(ks)-1] {
			if k != chat.EventDelta {
				t.Errorf("column %s events = %v: only deltas between start and end", s.Column, ks)
			}
		}
	}
	if b.Complete() {
		t.Errorf("Complete() = true with a failed column")
	}
	if b.Revealed() {
		t.Errorf("Revealed() = true before the vote")
	}
	if err := b.CastVote(chat.Vote{Outcome: "D"}); err == nil {
		t.Errorf("CastVote(D) in a 3-column battle succeeded")
	}
	if err := b.CastVote(chat.Vote{Outcome: "A", Reason: " clearer "}); err != nil || b.Vote.Reason != "clearer" || b.Vote.At.IsZero() {
		t.Errorf("CastVote(A) = %v, vote %+v", err, b.Vote)
	}
	if err := b.CastVote(chat.Vote{Outcome: "B"}); err == nil {
		t.Errorf("second CastVote succeeded")
	}
	if !b.Revealed() {
		t.Errorf("Revealed() = false after the vote")
	}
}

func TestBlindMapping(t *testing.T) {
	order := func(seed uint64) string {
		b, err := chat.NewBattle(chat.BattleRequest{Models: []string{"p/a", "p/b", "p/c", "p/d"}, Prompt: "hi there", Blind: true, Rand: seeded(seed)})
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, side := range b.Sides {
			s = append(s, strings.TrimPrefix(side.Model, "p/"))
		}
		return strings.Join(s, "")
	}
	if order(7) != order(7) {
		t.Errorf("the same seed gave two column orders")
	}
	seen := map[string]bool{}
	for seed := range uint64(40) {
		seen[order(seed)] = true
	}
	if len(seen) < 10 {
		t.Errorf("40 seeds gave %d column orders, want many", len(seen))
	}
	named, err := chat.NewBattle(chat.BattleRequest{Models: []string{"p/a", "p/b"}, Prompt: "hi there", Rand: seeded(3)})
	if err != nil || named.Sides[0].Model != "p/a" || named.Sides[1].Model != "p/b" || !named.Revealed() {
		t.Errorf("named battle = %+v, %v; want the given order, revealed", named, err)
	}
	for _, bad := range []chat.BattleRequest{
		{Models: []string{"p/a"}, Prompt: "x"},
		{Models: []string{"p/a", "p/b", "p/c", "p/d", "p/e"}, Prompt: "x"},
		{Models: []string{"p/a", "p/a"}, Prompt: "x"},
		{Models: []string{"p/a", "nomodel"}, Prompt: "x"},
		{Models: []string{"p/a", "p/b"}, Prompt: "  "},
	} {
		if _, err := chat.NewBattle(bad); err == nil {
			t.Errorf("NewBattle(%+v) accepted a bad request", bad)
		}
	}
	if _, err := chat.RunBattle(context.Background(), chat.Providers{}, chat.BattleRequest{Models: []string{"x/a", "x/b"}, Prompt: "q"}, nil); err == nil {
		t.Errorf("RunBattle with no providers succeeded")
	}
}

func TestBattleStop(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	providers, oa, an := battleSetup(t, hold)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for len(oa.Requests()) < 2 || len(an.Requests()) < 1 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	b, err := chat.RunBattle(ctx, providers, chat.BattleRequest{Models: threeModels, Prompt: "Stop me", Blind: true}, nil)
	if err != nil {
		t.Fatalf("RunBattle: %v", err)
	}
	for _, s := range b.Sides {
		if s.Answers[0].ErrorKind != chat.ErrCanceled {
			t.Errorf("column %s after stop = %+v, want canceled", s.Column, s.Answers[0])
		}
	}
}

func TestBattleMultiTurnAndRegenerate(t *testing.T) {
	providers, oa, an := battleSetup(t, nil)
	b, err := chat.RunBattle(context.Background(), providers, chat.BattleRequest{
		Models: threeModels, Prompt: "First question?",
		History: map[string][]chat.Message{"an/claude-x": {{Role: chat.RoleUser, Content: "Earlier"}, {Role: chat.RoleAssistant, Content: "Reply"}}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := chat.ContinueBattle(context.Background(), providers, b, "Second question?", nil); err != nil {
		t.Fatalf("ContinueBattle: %v", err)
	}
	if b.Turns() != 2 {
		t.Fatalf("Turns() = %d, want 2", b.Turns())
	}
	last := func(s *chattest.Server, model string) []chattest.Message {
		var m []chattest.Message
		for _, r := range s.Requests() {
			if r.Model == model {
				m = r.Messages
			}
		}
		return m
	}
	if got := last(oa, "good"); len(got) != 3 || got[0].Content != "First question?" || got[1].Role != "assistant" || got[2].Content != "Second question?" {
		t.Errorf("second turn of good sent %+v, want the first exchange and the new prompt", got)
	}
	if got := last(oa, "broken"); len(got) != 1 || got[0].Content != "Second question?" {
		t.Errorf("second turn of broken sent %+v, want only the new prompt (its first answer failed)", got)
	}
	if got := last(an, "claude-x"); len(got) != 5 || got[0].Content != "Earlier" {
		t.Errorf("second turn of claude-x sent %+v, want its history, the first exchange, the new prompt", got)
	}
	col := b.Sides[0].Column
	before := len(oa.Requests()) + len(an.Requests())
	if err := chat.Regenerate(context.Background(), providers, b, col, nil); err != nil {
		t.Fatalf("Regenerate: %v", err)
	}
	if n := len(oa.Requests()) + len(an.Requests()) - before; n != 1 {
		t.Errorf("Regenerate sent %d requests, want 1", n)
	}
	if n := len(b.Sides[0].Answers); n != 2 {
		t.Errorf("after Regenerate column %s has %d answers, want 2", col, n)
	}
	if err := chat.Regenerate(context.Background(), providers, b, "Z", nil); err == nil {
		t.Errorf("Regenerate(Z) succeeded")
	}
	if err := b.CastVote(chat.Vote{Outcome: chat.OutcomeTie}); err != nil {
		t.Fatal(err)
	}
	if err := chat.ContinueBattle(context.Background(), providers, b, "Third?", nil); err == nil {
		t.Errorf("ContinueBattle after the vote succeeded")
	}
}
