package chat

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Columns are the letters of a battle's columns, in order.
const Columns = "ABCD"

// Vote outcomes other than a column letter ("A" … "D": that column answered best).
const (
	OutcomeTie = "tie" // the answers are equally good
	OutcomeBad = "bad" // every answer is bad
)

// Vote is the user's verdict on a battle.
type Vote struct {
	// Outcome is the winning column's letter, OutcomeTie or OutcomeBad.
	Outcome string    `json:"outcome"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
}

// Answer is one model's answer to one prompt of a battle.
type Answer struct {
	Text       string    `json:"text"`
	Started    time.Time `json:"started"`
	FirstToken time.Time `json:"first_token,omitzero"` // zero when nothing arrived
	Finished   time.Time `json:"finished,omitzero"`
	// TTFT is the time from sending the request to the first piece of text.
	TTFT         time.Duration `json:"ttft,omitempty"`
	InputTokens  int           `json:"input_tokens,omitempty"`
	OutputTokens int           `json:"output_tokens,omitempty"`
	// TokensPerSec is OutputTokens over the time from the first token to the end.
	TokensPerSec float64   `json:"tokens_per_sec,omitempty"`
	StopReason   string    `json:"stop_reason,omitempty"`
	Error        string    `json:"error,omitempty"` // one line; "" when the answer is complete
	ErrorKind    ErrorKind `json:"error_kind,omitempty"`
}

// OK says whether the answer arrived complete.
func (a Answer) OK() bool { return a.Error == "" && !a.Finished.IsZero() }

// Side is one column of a battle: its model and that model's conversation.
type Side struct {
	Column string `json:"column"` // "A" … "D"
	Model  string `json:"model"`  // "provider/model"
	// History is the conversation the battle continued, before its first prompt.
	History []Message `json:"history,omitempty"`
	// Answers holds one answer per prompt of the battle.
	Answers []Answer `json:"answers"`
}

// Battle is one prompt (or several, turn after turn) answered side by side by two to
// four models, and the vote on them: everything the database keeps.
type Battle struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	// Blind battles hide which model is in which column until the vote.
	Blind bool `json:"blind"`
	// Language is the prompt's language as the caller knows it ("" when unknown).
	Language    string   `json:"language,omitempty"`
	MaxTokens   int      `json:"max_tokens,omitempty"`
	Temperature *float64 `json:"temperature,omitempty"`
	// Prompts are the user's prompts, one per turn.
	Prompts []string `json:"prompts"`
	// Sides are in column order: Sides[0] is column A. With Models, they are the
	// blind mapping.
	Sides []Side `json:"sides"`
	// Models are the model ids in the order the user picked them.
	Models  []string `json:"models"`
	Vote    *Vote    `json:"vote,omitempty"`
	Quality *Quality `json:"quality,omitempty"`
}

// Side returns the side in the column, or nil.
func (b *Battle) Side(column string) *Side {
	for i := range b.Sides {
		if b.Sides[i].Column == column {
			return &b.Sides[i]
		}
	}
	return nil
}

// Revealed says whether the models' names may be shown: always in a named battle, after
// the vote in a blind one.
func (b *Battle) Revealed() bool { return !b.Blind || b.Vote != nil }

// Turns is the number of prompts.
func (b *Battle) Turns() int { return len(b.Prompts) }

// Complete says whether every side answered every prompt.
func (b *Battle) Complete() bool {
	for _, s := range b.Sides {
		if len(s.Answers) != len(b.Prompts) {
			return false
		}
		for _, a := range s.Answers {
			if !a.OK() {
				return false
			}
		}
	}
	return len(b.Prompts) > 0
}

// Conversation is the side's conversation as the model saw it: the history, then each
// prompt with its answer (a failed answer's text as far as it came).
func (s *Side) Conversation(prompts []string) []Message {
	out := append([]Message(nil), s.History...)
	for i, p := range prompts {
		out = append(out, Message{Role: RoleUser, Content: p})
		if i < len(s.Answers) {
			out = append(out, Message{Role: RoleAssistant, Content: s.Answers[i].Text})
		}
	}
	return out
}

// request is what the side sends for turn: the history, the earlier turns the model
// answered completely, and the turn's prompt.
func (s *Side) request(prompts []string, turn int) []Message {
	out := append([]Message(nil), s.History...)
	for i := 0; i < turn; i++ {
		if i < len(s.Answers) && s.Answers[i].OK() && s.Answers[i].Text != "" {
			out = append(out, Message{Role: RoleUser, Content: prompts[i]}, Message{Role: RoleAssistant, Content: s.Answers[i].Text})
		}
	}
	return append(out, Message{Role: RoleUser, Content: prompts[turn]})
}

// CastVote records the vote: outcome is a column letter of the battle, OutcomeTie or
// OutcomeBad. A battle takes one vote.
func (b *Battle) CastVote(v Vote) error {
	if b.Vote != nil {
		return fmt.Errorf("vote on battle %s: already voted", b.ID)
	}
	if v.Outcome != OutcomeTie && v.Outcome != OutcomeBad && b.Side(v.Outcome) == nil {
		return fmt.Errorf("vote on battle %s: outcome must be a column (A-%c), %q or %q, not %q",
			b.ID, Columns[len(b.Sides)-1], OutcomeTie, OutcomeBad, v.Outcome)
	}
	if v.At.IsZero() {
		v.At = time.Now()
	}
	v.Reason = strings.TrimSpace(v.Reason)
	b.Vote = &v
	return nil
}

// SplitModelID splits "provider/model" at the first '/' (model names may hold more).
func SplitModelID(id string) (provider, model string, err error) {
	provider, model, ok := strings.Cut(id, "/")
	if !ok || provider == "" || model == "" {
		return "", "", fmt.Errorf("parse model id %q: want provider/model", id)
	}
	return provider, model, nil
}

// Providers finds a provider by the name in a model id.
type Providers map[string]Provider

// BattleRequest starts a battle.
type BattleRequest struct {
	// Models are 2 to 4 distinct "provider/model" ids.
	Models []string
	Prompt string
	// History holds, per model id, the conversation to continue (Arena's multi-turn:
	// every model keeps its own); models without an entry start fresh.
	History map[string][]Message
	// Blind shuffles the models over the columns and hides their names until the vote.
	Blind       bool
	Language    string
	MaxTokens   int
	Temperature *float64
	// Rand is the source of the column order and the battle id; nil is crypto/rand.
	Rand io.Reader
}

// EventKind says what a BattleEvent reports.
type EventKind string

// The kinds of battle event. Each column sends one EventStart, any number of
// EventDelta and then one EventDone or EventError.
const (
	EventStart EventKind = "start"
	EventDelta EventKind = "delta"
	EventDone  EventKind = "done"
	EventError EventKind = "error"
)

// BattleEvent is progress in one column of a battle.
type BattleEvent struct {
	BattleID string
	Turn     int    // index into Battle.Prompts
	Column   string // "A" … "D"
	Kind     EventKind
	// Model is the column's model id; "" while the battle is blind and not voted.
	Model string
	// Text is the new piece of the answer (EventDelta).
	Text string
	// TTFT is the time to the first token, once there was one.
	TTFT time.Duration
	// Elapsed is the time since the request was sent.
	Elapsed time.Duration
	// OutputTokens counts the answer's tokens so far (pieces while streaming, the
	// server's count at EventDone when it gives one).
	OutputTokens int
	TokensPerSec float64
	// Error is the one-line failure (EventError).
	Error     string
	ErrorKind ErrorKind
}

// NewBattle checks the request and lays out the columns, shuffled when blind. It sends
// nothing; RunBattle does.
func NewBattle(req BattleRequest) (*Battle, error) {
	if n := len(req.Models); n < 2 || n > len(Columns) {
		return nil, fmt.Errorf("start battle: want 2 to %d models, got %d", len(Columns), n)
	}
	if strings.TrimSpace(req.Prompt) == "" {
		return nil, errors.New("start battle: the prompt is empty")
	}
	seen := map[string]bool{}
	for _, m := range req.Models {
		if _, _, err := SplitModelID(m); err != nil {
			return nil, fmt.Errorf("start battle: %w", err)
		}
		if seen[m] {
			return nil, fmt.Errorf("start battle: model %q is picked twice", m)
		}
		seen[m] = true
	}
	rnd := req.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	id := make([]byte, 16)
	if _, err := io.ReadFull(rnd, id); err != nil {
		return nil, fmt.Errorf("start battle: read random id: %w", err)
	}
	order := make([]int, len(req.Models))
	for i := range order {
		order[i] = i
	}
	if req.Blind {
		if err := shuffle(rnd, order); err != nil {
			return nil, fmt.Errorf("start battle: shuffle columns: %w", err)
		}
	}
	b := &Battle{
		ID: hex.EncodeToString(id), Created: time.Now(), Blind: req.Blind, Language: req.Language,
		MaxTokens: req.MaxTokens, Temperature: req.Temperature,
		Prompts: []string{req.Prompt}, Models: append([]string(nil), req.Models...),
	}
	for col, i := range order {
		m := req.Models[i]
		b.Sides = append(b.Sides, Side{Column: Columns[col : col+1], Model: m, History: append([]Message(nil), req.History[m]...)})
	}
	return b, nil
}

// shuffle is Fisher–Yates with unbiased draws from r.
func shuffle(r io.Reader, xs []int) error {
	for i := len(xs) - 1; i > 0; i-- {
		j, err := uniform(r, uint64(i+1))
		if err != nil {
			return err
		}
		xs[i], xs[j] = xs[j], xs[i]
	}
	return nil
}

// uniform draws from [0, n) by rejection, so every value is equally likely.
func uniform(r io.Reader, n uint64) (int, error) {
	limit := ^uint64(0) - ^uint64(0)%n
	var buf [8]byte
	for {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return 0, err
		}
		if v := binary.LittleEndian.Uint64(buf[:]); v < limit {
			return int(v % n), nil
		}
	}
}

// RunBattle starts a battle and streams every column in parallel until all have
// finished, failed or been stopped with ctx. A column's failure is its own: it is
// reported in its events and its Answer, and the others stream on. The battle is
// returned whole even when stopped; the error is only for a bad request. events is
// called from one goroutine at a time.
func RunBattle(ctx context.Context, providers Providers, req BattleRequest, events func(BattleEvent)) (*Battle, error) {
	b, err := NewBattle(req)
	if err != nil {
		return nil, err
	}
	if err := checkProviders(providers, b); err != nil {
		return nil, err
	}
	b.stream(ctx, providers, 0, nil, events)
	return b, nil
}

// ContinueBattle sends the next prompt to every model with its own conversation.
func ContinueBattle(ctx context.Context, providers Providers, b *Battle, prompt string, events func(BattleEvent)) error {
	if b.Vote != nil {
		return fmt.Errorf("continue battle %s: already voted", b.ID)
	}
	if strings.TrimSpace(prompt) == "" {
		return fmt.Errorf("continue battle %s: the prompt is empty", b.ID)
	}
	if err := checkProviders(providers, b); err != nil {
		return err
	}
	b.Prompts = append(b.Prompts, prompt)
	b.stream(ctx, providers, len(b.Prompts)-1, nil, events)
	return nil
}

// Regenerate asks the column's model again for the latest prompt and replaces its answer.
func Regenerate(ctx context.Context, providers Providers, b *Battle, column string, events func(BattleEvent)) error {
	if b.Vote != nil {
		return fmt.Errorf("regenerate column %s of battle %s: already voted", column, b.ID)
	}
	if b.Side(column) == nil || len(b.Prompts) == 0 {
		return fmt.Errorf("regenerate column %s of battle %s: no such column", column, b.ID)
	}
	if err := checkProviders(providers, b); err != nil {
		return err
	}
	b.stream(ctx, providers, len(b.Prompts)-1, []string{column}, events)
	return nil
}

func checkProviders(providers Providers, b *Battle) error {
	for _, s := range b.Sides {
		name, _, _ := SplitModelID(s.Model)
		if providers[name] == nil {
			return fmt.Errorf("run battle: no provider named %q (for %s)", name, s.Model)
		}
	}
	return nil
}

// stream runs turn in the given columns (nil: all) in parallel.
func (b *Battle) stream(ctx context.Context, providers Providers, turn int, columns []string, events func(BattleEvent)) {
	var mu sync.Mutex
	emit := func(e BattleEvent) {
		if events == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		events(e)
	}
	var wg sync.WaitGroup
	for i := range b.Sides {
		s := &b.Sides[i]
		if columns != nil && !contains(columns, s.Column) {
			continue
		}
		for len(s.Answers) <= turn {
			s.Answers = append(s.Answers, Answer{})
		}
		msgs := s.request(b.Prompts, turn)
		model := ""
		if !b.Blind {
			model = s.Model
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Answers[turn] = b.answer(ctx, providers, s, msgs, func(e BattleEvent) {
				e.BattleID, e.Turn, e.Column, e.Model = b.ID, turn, s.Column, model
				emit(e)
			})
		}()
	}
	wg.Wait()
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// answer streams one column's answer.
func (b *Battle) answer(ctx context.Context, providers Providers, s *Side, msgs []Message, emit func(BattleEvent)) Answer {
	name, model, _ := SplitModelID(s.Model)
	a := Answer{Started: time.Now()}
	emit(BattleEvent{Kind: EventStart})
	var text strings.Builder
	pieces := 0
	u, err := providers[name].Stream(ctx, Request{Model: model, Messages: msgs, MaxTokens: b.MaxTokens, Temperature: b.Temperature},
		func(d Delta) error {
			now := time.Now()
			if a.FirstToken.IsZero() {
				a.FirstToken, a.TTFT = now, now.Sub(a.Started)
			}
			pieces++
			text.WriteString(d.Text)
			emit(BattleEvent{Kind: EventDelta, Text: d.Text, TTFT: a.TTFT, Elapsed: now.Sub(a.Started),
				OutputTokens: pieces, TokensPerSec: rate(pieces, now.Sub(a.FirstToken))})
			return nil
		})
	a.Finished = time.Now()
	a.Text = text.String()
	a.InputTokens, a.OutputTokens, a.StopReason = u.InputTokens, u.OutputTokens, u.StopReason
	if a.OutputTokens == 0 {
		a.OutputTokens = pieces
	}
	if !a.FirstToken.IsZero() {
		a.TokensPerSec = rate(a.OutputTokens, a.Finished.Sub(a.FirstToken))
	}
	done := BattleEvent{Kind: EventDone, TTFT: a.TTFT, Elapsed: a.Finished.Sub(a.Started), OutputTokens: a.OutputTokens, TokensPerSec: a.TokensPerSec}
	if err != nil {
		a.Error, a.ErrorKind = oneLine(err.Error(), ""), ErrServer
		var pe *Error
		if errors.As(err, &pe) {
			// The column's text must not name its model while the battle is blind.
			a.Error, a.ErrorKind = pe.Reason(), pe.Kind
			if b.Blind {
				a.Error = strings.ReplaceAll(a.Error, model, "the model")
			}
		}
		done.Kind, done.Error, done.ErrorKind = EventError, a.Error, a.ErrorKind
	}
	emit(done)
	return a
}

func rate(tokens int, d time.Duration) float64 {
	if d <= 0 || tokens == 0 {
		return 0
	}
	return float64(tokens) / d.Seconds()
}
