package core

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gata-contrib/gata/chat"
	"github.com/gata-contrib/gata/chat/chattest"
	"github.com/gata-contrib/gata/storage"
)

const (
	oaKey = "sk-test-openai-0123456789"
	anKey = "sk-ant-test-0123456789"
)

type chatEnv struct {
	c      *Core
	st     *storage.Store
	oa, an *chattest.Server
	hold   chan struct{} // the "slow" model waits for it
}

// newChatCore is a core with two providers: "oa" (an OpenAI-compatible fake with good,
// other, broken (cut after two pieces), denied (401) and slow (held) models) and "an"
// (an Anthropic fake with sonnet-x), their keys in environment variables. Votes are
// cast a minute after now, so they never count as too fast.
func newChatCore(t *testing.T) *chatEnv {
	t.Helper()
	e := &chatEnv{hold: make(chan struct{})}
	t.Cleanup(func() { close(e.hold) })
	e.c, e.st = newTestCore(t)
	e.oa = chattest.NewOpenAI(t, chattest.Options{APIKey: oaKey, Models: map[string]chattest.Behavior{
		"good":   {Reply: "Paris is the capital of France, on the Seine."},
		"other":  {Reply: "The capital is Paris; Lyon is the second city."},
		"broken": {Reply: "Paris is the capital", CutAfter: 2},
		"denied": {Status: 401},
		"slow":   {Reply: "Eventually: Paris.", Hold: e.hold},
	}})
	e.an = chattest.NewAnthropic(t, chattest.Options{APIKey: anKey, Models: map[string]chattest.Behavior{
		"sonnet-x": {Reply: "The capital of France is Paris."},
	}})
	t.Setenv("GATA_TEST_OA_KEY", oaKey)
	t.Setenv("GATA_TEST_AN_KEY", anKey)
	e.c.chat.providerOpts = []chat.ProviderOption{chat.WithSleep(func(context.Context, time.Duration) error { return nil })}
	e.c.chat.now = func() time.Time { return time.Now().Add(time.Minute) }
	ctx := context.Background()
	if _, err := e.c.AddProvider(ctx, ProviderInput{Name: "oa", Kind: "openai", BaseURL: e.oa.URL, APIKeyEnv: "GATA_TEST_OA_KEY", Models: []string{"extra-model"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.AddProvider(ctx, ProviderInput{Name: "an", Kind: "anthropic", BaseURL: e.an.URL, APIKeyEnv: "GATA_TEST_AN_KEY"}); err != nil {
		t.Fatal(err)
	}
	return e
}

func waitBattle(t *testing.T, c *Core, id string) BattleInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := c.WaitBattle(ctx, id)
	if err != nil {
		t.Fatalf("WaitBattle(%s): %v", id, err)
	}
	return info
}

// chatEvents returns the chat events of battle id after the event ID.
func chatEvents(c *Core, after int64, id string) []ChatEvent {
	evs, _ := c.Events(after)
	var out []ChatEvent
	for _, e := range evs {
		if ce, ok := e.Data.(ChatEvent); ok && e.Type == EventChat && ce.Battle == id {
			out = append(out, ce)
		}
	}
	return out
}

// storedColumn finds the column of model in a stored battle (the test may look behind the blind).
func storedColumn(t *testing.T, st *storage.Store, id, model string) string {
	t.Helper()
	sb, err := st.ChatBattle(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sb.Sides {
		if s.Model == model {
			return s.Column
		}
	}
	t.Fatalf("battle %s has no column for %s", id, model)
	return ""
}

func TestChatProviders(t *testing.T) {
	e := newChatCore(t)
	ctx := context.Background()
	bad := []struct {
		name string
		in   ProviderInput
		want error
		msg  string
	}{
		{"name with slash", ProviderInput{Name: "a/b", Kind: "openai", BaseURL: "http://127.0.0.1:1/v1"}, ErrBadChat, "the name must be"},
		{"empty name", ProviderInput{Kind: "openai", BaseURL: "http://127.0.0.1:1/v1"}, ErrBadChat, "the name must be"},
		{"unknown kind", ProviderInput{Name: "x", Kind: "gemini", BaseURL: "http://127.0.0.1:1/v1"}, ErrBadChat, `not "gemini"`},
		{"bad url", ProviderInput{Name: "x", Kind: "openai", BaseURL: "127.0.0.1:1"}, ErrBadChat, "not an http:// or https:// URL"},
		{"bad env name", ProviderInput{Name: "x", Kind: "openai", BaseURL: "http://127.0.0.1:1", APIKeyEnv: "MY KEY"}, ErrBadChat, "not an environment variable name"},
		{"model with space", ProviderInput{Name: "x", Kind: "openai", BaseURL: "http://127.0.0.1:1", Models: []string{"a b"}}, ErrBadChat, "has spaces"},
		{"taken name", ProviderInput{Name: "OA", Kind: "openai", BaseURL: "http://127.0.0.1:1"}, ErrProviderExists, "exists"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.c.AddProvider(ctx, tt.in)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("AddProvider(%+v) = %v, want %v with %q", tt.in, err, tt.want, tt.msg)
			}
		})
	}
	// A provider nothing listens for: its model list fails, the others are listed.
	if _, err := e.c.AddProvider(ctx, ProviderInput{Name: "gone", Kind: "openai", BaseURL: "http://127.0.0.1:1/v1"}); err != nil {
		t.Fatal(err)
	}
	ps, err := e.c.Providers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
		if want := p.Name != "gone"; p.HasKey != want {
			t.Errorf("provider %s HasKey = %v, want %v", p.Name, p.HasKey, want)
		}
	}
	if !slices.Equal(names, []string{"an", "gone", "oa"}) {
		t.Errorf("Providers = %q, want an, gone, oa", names)
	}
	ms, err := e.c.ChatModels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]ProviderModels{}
	for _, m := range ms {
		got[m.Provider] = m
	}
	if m := got["oa"]; m.Error != "" || !slices.Contains(m.Models, "oa/good") || !slices.Contains(m.Models, "oa/extra-model") {
		t.Errorf("ChatModels oa = %+v, want oa/good and the configured oa/extra-model", m)
	}
	if m := got["an"]; m.Error != "" || !slices.Equal(m.Models, []string{"an/sonnet-x"}) {
		t.Errorf("ChatModels an = %+v, want [an/sonnet-x]", m)
	}
	if m := got["gone"]; m.Error == "" || len(m.Models) != 0 {
		t.Errorf("ChatModels gone = %+v, want an error and no models", m)
	}
	if err := e.c.RemoveProvider(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := e.c.RemoveProvider(ctx, "gone"); !errors.Is(err, ErrNoProvider) {
		t.Errorf("RemoveProvider(gone) again = %v, want ErrNoProvider", err)
	}
	if _, err := e.c.StartBattle(ctx, BattleInput{Models: []string{"oa/good", "gone/x"}, Prompt: "hi"}); !errors.Is(err, ErrNoProvider) {
		t.Errorf("StartBattle with a removed provider = %v, want ErrNoProvider", err)
	}
	// A battle, so answers are stored too; the keys are in no file of the data folder.
	info, err := e.c.StartBattle(ctx, BattleInput{Models: []string{"oa/good", "an/sonnet-x"}, Prompt: "What is the capital of France?", Blind: true})
	if err != nil {
		t.Fatal(err)
	}
	waitBattle(t, e.c, info.ID)
	files, _ := filepath.Glob(filepath.Join(e.c.opts.DataDir, "*"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if bytes.Contains(data, []byte(oaKey)) || bytes.Contains(data, []byte(anKey)) {
			t.Errorf("%s holds an API key", filepath.Base(f))
		}
	}
}

func TestChatBlindBattle(t *testing.T) {
	e := newChatCore(t)
	ctx := context.Background()
	after := e.c.LastEventID()
	models := []string{"oa/good", "oa/broken", "an/sonnet-x"}
	info, err := e.c.StartBattle(ctx, BattleInput{Models: models, Prompt: "What is the capital of France?", Blind: true})
	if err != nil {
		t.Fatalf("StartBattle: %v", err)
	}
	if len(info.Columns) != 3 || info.Revealed || len(info.Models) != 0 || !info.Running {
		t.Fatalf("StartBattle = %+v, want 3 running columns without names", info)
	}
	for _, col := range info.Columns {
		if col.Model != "" {
			t.Errorf("blind column %s shows %q", col.Column, col.Model)
		}
	}
	done := waitBattle(t, e.c, info.ID)
	if done.Running || done.Revealed || len(done.Models) != 0 {
		t.Errorf("ended battle = %+v, want stored, still blind", done)
	}
	// Three columns streamed: start, deltas, one end each; the broken one failed alone.
	evs := chatEvents(e.c, after, info.ID)
	kinds := map[string][]string{}
	text := map[string]string{}
	for _, ev := range evs {
		if ev.Model != "" || len(ev.Models) != 0 {
			t.Errorf("event %+v names a model before the vote", ev)
		}
		if ev.Column != "" {
			kinds[ev.Column] = append(kinds[ev.Column], ev.Kind)
			text[ev.Column] += ev.Text
		}
	}
	if last := evs[len(evs)-1]; last.Kind != ChatEnd || last.Error != "" {
		t.Errorf("last event = %+v, want the battle's end", last)
	}
	broken := storedColumn(t, e.st, info.ID, "oa/broken")
	for _, col := range []string{"A", "B", "C"} {
		ks := kinds[col]
		end := ChatDone
		if col == broken {
			end = ChatError
		}
		if len(ks) < 3 || ks[0] != ChatStart || ks[len(ks)-1] != end || slices.Contains(ks[1:len(ks)-1], ChatStart) {
			t.Errorf("column %s events %q, want start, deltas, %s", col, ks, end)
		}
	}
	for _, col := range done.Columns {
		a := col.Answers[0]
		if a.Text != text[col.Column] {
			t.Errorf("column %s text %q, streamed %q", col.Column, a.Text, text[col.Column])
		}
		if col.Column == broken {
			if a.ErrorKind != string(chat.ErrDisconnect) || a.Text != "Paris is " {
				t.Errorf("broken column = %+v, want a disconnect after %q", a, "Paris is ")
			}
			continue
		}
		if a.Error != "" || !a.Done || a.OutputTokens == 0 || !strings.Contains(a.Text, "Paris") {
			t.Errorf("column %s = %+v, want a whole answer with stats", col.Column, a)
		}
	}
	// The vote reveals the names and scores the battle.
	good := storedColumn(t, e.st, info.ID, "oa/good")
	voted, err := e.c.Vote(ctx, info.ID, VoteInput{Outcome: strings.ToLower(good), Reason: "  more detail  "})
	if err != nil {
		t.Fatalf("Vote: %v", err)
	}
	if !voted.Revealed || !slices.Equal(voted.Models, models) || voted.Vote == nil || voted.Vote.Outcome != good || voted.Vote.Reason != "more detail" {
		t.Errorf("Vote = %+v, want the names and the vote", voted)
	}
	for _, col := range voted.Columns {
		if col.Column == good && col.Model != "oa/good" {
			t.Errorf("voted column %s = %q, want oa/good", col.Column, col.Model)
		}
	}
	if q := voted.Quality; q == nil || !q.Passes || q.Score < 0.9 || q.Threshold != chat.DefaultQualityThreshold {
		t.Errorf("Vote quality = %+v, want a passing score", voted.Quality)
	}
	sb, err := e.st.ChatBattle(ctx, info.ID)
	if err != nil || sb.Vote == nil || sb.Quality == nil {
		t.Fatalf("stored battle = %+v, %v, want vote and quality", sb, err)
	}
	evs = chatEvents(e.c, after, info.ID)
	if last := evs[len(evs)-1]; last.Kind != ChatVoted || last.Models[good] != "oa/good" || last.Quality == nil {
		t.Errorf("last event = %+v, want the vote with the names", last)
	}
	if _, err := e.c.Vote(ctx, info.ID, VoteInput{Outcome: "tie"}); !errors.Is(err, ErrAlreadyVoted) {
		t.Errorf("second Vote = %v, want ErrAlreadyVoted", err)
	}
	if _, err := e.c.ContinueBattle(ctx, info.ID, "And of Italy?"); !errors.Is(err, ErrAlreadyVoted) {
		t.Errorf("ContinueBattle after the vote = %v, want ErrAlreadyVoted", err)
	}
	got, err := e.c.Battle(ctx, info.ID)
	if err != nil || !got.Revealed || got.Quality == nil {
		t.Errorf("Battle = %+v, %v, want it revealed with its quality", got, err)
	}
}

func TestChatBattleErrors(t *testing.T) {
	e := newChatCore(t)
	ctx := context.Background()
	for _, in := range []BattleInput{
		{Models: []string{"oa/good"}, Prompt: "hi"},
		{Models: []string{"oa/good", "oa/good"}, Prompt: "hi"},
		{Models: []string{"oa/good", "an/sonnet-x"}, Prompt: "  "},
		{Models: []string{"oa/good", "sonnet-x"}, Prompt: "hi"},
	} {
		if _, err := e.c.StartBattle(ctx, in); !errors.Is(err, ErrBadChat) {
			t.Errorf("StartBattle(%+v) = %v, want ErrBadChat", in, err)
		}
	}
	if _, err := e.c.Battle(ctx, "nope"); !errors.Is(err, ErrNoBattle) {
		t.Errorf("Battle(nope) = %v, want ErrNoBattle", err)
	}
	if err := e.c.StopBattle("nope"); !errors.Is(err, ErrNoBattle) {
		t.Errorf("StopBattle(nope) = %v, want ErrNoBattle", err)
	}
	// A column the server refuses (401) fails with a clear message; the other answers.
	info, err := e.c.StartBattle(ctx, BattleInput{Models: []string{"oa/denied", "oa/good"}, Prompt: "Name a river in Spain."})
	if err != nil {
		t.Fatal(err)
	}
	done := waitBattle(t, e.c, info.ID)
	if !done.Revealed || done.Columns[0].Model != "oa/denied" {
		t.Fatalf("named battle = %+v, want its names from the start", done)
	}
	if a := done.Columns[0].Answers[0]; a.ErrorKind != string(chat.ErrAuth) || a.Error == "" {
		t.Errorf("denied column = %+v, want an auth error", a)
	}
	if a := done.Columns[1].Answers[0]; a.Error != "" || a.Text == "" {
		t.Errorf("good column = %+v, want its answer", a)
	}
	if _, err := e.c.Vote(ctx, info.ID, VoteInput{Outcome: "E"}); !errors.Is(err, ErrBadChat) {
		t.Errorf("Vote(E) = %v, want ErrBadChat", err)
	}
	if _, err := e.c.RegenerateColumn(ctx, info.ID, "D"); !errors.Is(err, ErrBadChat) {
		t.Errorf("RegenerateColumn(D) = %v, want ErrBadChat", err)
	}
}

func TestChatContinueRegenerateStop(t *testing.T) {
	e := newChatCore(t)
	ctx := context.Background()
	info, err := e.c.StartBattle(ctx, BattleInput{Models: []string{"oa/good", "an/sonnet-x"}, Prompt: "What is the capital of France?"})
	if err != nil {
		t.Fatal(err)
	}
	if !info.Revealed || info.Columns[0].Model != "oa/good" || info.Columns[1].Model != "an/sonnet-x" {
		t.Fatalf("named battle = %+v, want the models in pick order", info)
	}
	waitBattle(t, e.c, info.ID)
	if _, err := e.c.ContinueBattle(ctx, info.ID, "And its population?"); err != nil {
		t.Fatalf("ContinueBattle: %v", err)
	}
	done := waitBattle(t, e.c, info.ID)
	if len(done.Prompts) != 2 || len(done.Columns[0].Answers) != 2 || done.Columns[1].Answers[1].Text == "" {
		t.Fatalf("after ContinueBattle = %+v, want two turns answered", done)
	}
	// The second request carried the model's own first answer.
	reqs := e.an.Requests()
	if last := reqs[len(reqs)-1]; len(last.Messages) != 3 || last.Messages[1].Content != "The capital of France is Paris." {
		t.Errorf("second turn sent %+v, want the history and the new prompt", last.Messages)
	}
	before := e.oa.Count("good")
	if _, err := e.c.RegenerateColumn(ctx, info.ID, "a"); err != nil {
		t.Fatalf("RegenerateColumn: %v", err)
	}
	done = waitBattle(t, e.c, info.ID)
	if e.oa.Count("good") != before+1 || e.an.Count("sonnet-x") != 2 || len(done.Columns[0].Answers) != 2 || done.Columns[0].Answers[1].Error != "" {
		t.Errorf("RegenerateColumn asked good %d times (was %d), sonnet-x %d; battle %+v", e.oa.Count("good"), before, e.an.Count("sonnet-x"), done)
	}

	// A held column: busy while it streams, stopped, stored with what came.
	held, err := e.c.StartBattle(ctx, BattleInput{Models: []string{"oa/slow", "oa/good"}, Prompt: "Take your time: the capital of France?", Blind: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Vote(ctx, held.ID, VoteInput{Outcome: "A"}); !errors.Is(err, ErrBattleBusy) {
		t.Errorf("Vote while streaming = %v, want ErrBattleBusy", err)
	}
	if _, err := e.c.ContinueBattle(ctx, held.ID, "more"); !errors.Is(err, ErrBattleBusy) {
		t.Errorf("ContinueBattle while streaming = %v, want ErrBattleBusy", err)
	}
	list, err := e.c.Battles(ctx, 10)
	if err != nil || len(list) != 2 || list[0].ID != held.ID || !list[0].Running {
		t.Errorf("Battles = %+v, %v, want the running battle first", list, err)
	}
	if err := e.c.StopBattle(held.ID); err != nil {
		t.Fatalf("StopBattle: %v", err)
	}
	stopped := waitBattle(t, e.c, held.ID)
	slow := storedColumn(t, e.st, held.ID, "oa/slow")
	for _, col := range stopped.Columns {
		if col.Column == slow && col.Answers[0].ErrorKind != string(chat.ErrCanceled) {
			t.Errorf("stopped column = %+v, want canceled", col.Answers[0])
		}
	}
}

// TestChatCloseStoresBattles: closing the core stops a streaming battle and waits until it is stored.
func TestChatCloseStoresBattles(t *testing.T) {
	e := newChatCore(t)
	info, err := e.c.StartBattle(context.Background(), BattleInput{Models: []string{"oa/slow", "an/sonnet-x"}, Prompt: "Hold on: the capital of France?", Blind: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.ChatBattle(context.Background(), info.ID); err != nil {
		t.Errorf("battle not stored by Close: %v", err)
	}
	if _, err := e.c.StartBattle(context.Background(), BattleInput{Models: []string{"oa/good", "an/sonnet-x"}, Prompt: "hi"}); !errors.Is(err, ErrShuttingDown) {
		t.Errorf("StartBattle after Close = %v, want ErrShuttingDown", err)
	}
}

func readLines(t *testing.T, data []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestChatQualityLeaderboardExport(t *testing.T) {
	e := newChatCore(t)
	ctx := context.Background()
	battle := func(models []string, prompt, winner string) BattleInfo {
		t.Helper()
		info, err := e.c.StartBattle(ctx, BattleInput{Models: models, Prompt: prompt, Blind: true})
		if err != nil {
			t.Fatal(err)
		}
		waitBattle(t, e.c, info.ID)
		outcome := winner
		if strings.Contains(winner, "/") {
			outcome = storedColumn(t, e.st, info.ID, winner)
		}
		voted, err := e.c.Vote(ctx, info.ID, VoteInput{Outcome: outcome})
		if err != nil {
			t.Fatalf("Vote: %v", err)
		}
		return voted
	}
	rating := func(model string) float64 {
		t.Helper()
		lb, err := e.c.Leaderboard(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range lb.Ratings {
			if r.Model == model {
				if !(r.Lower <= r.Rating && r.Rating <= r.Upper) {
					t.Errorf("rating %+v is outside its interval", r)
				}
				return r.Rating
			}
		}
		t.Fatalf("Leaderboard %+v has no %s", lb, model)
		return 0
	}

	b1 := battle([]string{"oa/good", "an/sonnet-x"}, "What is the capital of France?", "oa/good")
	if !b1.Quality.Passes {
		t.Fatalf("first battle quality = %+v, want it to pass", b1.Quality)
	}
	r1 := rating("oa/good")
	b2 := battle([]string{"oa/good", "an/sonnet-x", "oa/other"}, "Which French city is the capital, and why did it become one?", "oa/good")
	if r2 := rating("oa/good"); !(r2 > r1) {
		t.Errorf("oa/good rating %v after a second win, was %v; want it higher", r2, r1)
	}
	spam := battle([]string{"oa/good", "an/sonnet-x"}, "asdfghjkl qwertyuiop asdfghjkl qwertyuiop asdfghjkl qwertyuiop asdfghjkl", "an/sonnet-x")
	if q := spam.Quality; q.Passes || len(q.Reasons) == 0 || q.Reasons[0].Signal != string(chat.SignalSpam) || q.Reasons[0].Detail == "" {
		t.Errorf("spam battle quality = %+v, want it flagged as spam with a reason", q)
	}
	lb, err := e.c.Leaderboard(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if lb.Battles != 2 || lb.Excluded != 1 {
		t.Errorf("Leaderboard counted %d battles, excluded %d; want 2 and 1", lb.Battles, lb.Excluded)
	}

	export := func(format string, all bool) []map[string]any {
		t.Helper()
		var buf bytes.Buffer
		n, err := e.c.ExportChat(ctx, format, &buf, all)
		if err != nil {
			t.Fatalf("ExportChat(%s): %v", format, err)
		}
		lines := readLines(t, buf.Bytes())
		if n != len(lines) {
			t.Errorf("ExportChat(%s) = %d, wrote %d lines", format, n, len(lines))
		}
		return lines
	}
	// Arena: one record per pair of columns (1 + 3); the spam battle only with all.
	arena := export(ExportArena, false)
	if len(arena) != 4 {
		t.Fatalf("arena export has %d records, want 4", len(arena))
	}
	for _, r := range arena {
		if r["question_id"] != b1.ID && r["question_id"] != b2.ID {
			t.Errorf("arena record of battle %v, want only the passing ones", r["question_id"])
		}
		if r["model_a"] == "" || r["model_b"] == "" || r["winner"] == "" || r["anony"] != true {
			t.Errorf("arena record %v lacks fields", r)
		}
	}
	if all := export(ExportArena, true); len(all) != 5 {
		t.Errorf("arena export with low quality has %d records, want 5", len(all))
	}
	// DPO: one record per (winner, loser): 1 + 2.
	dpo := export(ExportDPO, false)
	if len(dpo) != 3 {
		t.Fatalf("dpo export has %d records, want 3", len(dpo))
	}
	for _, r := range dpo {
		if r["chosen_model"] != "oa/good" {
			t.Errorf("dpo record chose %v, want oa/good", r["chosen_model"])
		}
		for _, k := range []string{"prompt", "chosen", "rejected"} {
			if msgs, ok := r[k].([]any); !ok || len(msgs) == 0 {
				t.Errorf("dpo record %s = %v, want messages", k, r[k])
			}
		}
	}
	if _, err := e.c.ExportChat(ctx, "csv", &bytes.Buffer{}, false); !errors.Is(err, ErrBadChat) {
		t.Errorf("ExportChat(csv) = %v, want ErrBadChat", err)
	}
	// The quality floor is a setting.
	if _, err := e.c.UpdateSettings(ctx, map[string]string{SettingChatQualityMin: "0"}); err != nil {
		t.Fatal(err)
	}
	if got := export(ExportArena, false); len(got) != 5 {
		t.Errorf("arena export with floor 0 has %d records, want 5", len(got))
	}
	if _, err := e.c.UpdateSettings(ctx, map[string]string{SettingChatQualityMin: "2"}); err == nil {
		t.Error("quality floor 2 accepted")
	}
}

// TestChatVoteOnEnd: a UI may vote as soon as it sees the battle's ChatEnd event.
func TestChatVoteOnEnd(t *testing.T) {
	e := newChatCore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	after := e.c.LastEventID()
	info, err := e.c.StartBattle(ctx, BattleInput{Models: []string{"oa/good", "an/sonnet-x"}, Prompt: "What is the capital of France?", Blind: true})
	if err != nil {
		t.Fatal(err)
	}
	for ended := false; !ended; {
		evs, _, err := e.c.WaitEvents(ctx, after)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			after = ev.ID
			if ce, ok := ev.Data.(ChatEvent); ok && ce.Battle == info.ID && ce.Kind == ChatEnd {
				ended = true
			}
		}
	}
	if _, err := e.c.Vote(ctx, info.ID, VoteInput{Outcome: "B"}); err != nil {
		t.Errorf("Vote right after ChatEnd: %v", err)
	}
}
