package chat

import (
	"bufio"
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	fstorage "fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/app/gui/internal/widgettest"
	"github.com/gata-contrib/gata/chat/chattest"
	"github.com/gata-contrib/gata/storage"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const testKey = "sk-test-openai-0123456789"

// env is the page in a window of Fyne's test app over a real core on a real SQLite file,
// with an OpenAI-compatible loopback fake to add as a provider.
type env struct {
	core   *core.Core
	screen *Screen
	win    fyne.Window
	ui     *widgettest.Queue
	oa     *chattest.Server
	hold   chan struct{} // the "slow" model waits for it
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, nil)
}

// newEnvWith is newEnv with the core's options changed by edit (may be nil) first.
func newEnvWith(t *testing.T, edit func(*core.Options)) *env {
	t.Helper()
	test.NewTempApp(t)
	hold := make(chan struct{})
	oa := chattest.NewOpenAI(t, chattest.Options{APIKey: testKey, Models: map[string]chattest.Behavior{
		"good":   {Reply: "Paris is the capital of France, on the Seine."},
		"other":  {Reply: "The capital is Paris; Lyon is the second city."},
		"third":  {Reply: "France's capital: Paris."},
		"denied": {Status: 401},
		"slow":   {Reply: "Eventually: Paris.", Hold: hold},
	}})
	t.Cleanup(func() { close(hold) })
	t.Setenv("GATA_TEST_GUI_OA_KEY", testKey)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := storage.Open(ctx, filepath.Join(dir, storage.DBName))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts := core.Options{Version: "test", DataDir: dir, Store: st, Logger: log}
	if edit != nil {
		edit(&opts)
	}
	c, err := core.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	// The test votes within seconds of the answers; let such votes count all the same.
	if _, err := c.UpdateSettings(ctx, map[string]string{core.SettingChatQualityMin: "0"}); err != nil {
		t.Fatal(err)
	}

	q := &widgettest.Queue{}
	w := test.NewWindow(nil)
	w.Resize(fyne.NewSize(1000, 1600))
	s := New(ctx, testSection, c, w, q.Do)
	w.SetContent(s.Content())

	follow := q.Follow(ctx, c, func(e core.Event) {
		if ce, ok := e.Data.(core.ChatEvent); ok && e.Type == core.EventChat {
			s.ApplyChat(ce)
		}
	})
	t.Cleanup(func() {
		cancel()
		follow()
		s.Close()
		c.Close()
		st.Close()
		w.Close()
	})
	return &env{core: c, screen: s, win: w, ui: q, oa: oa, hold: hold}
}

var testSection = core.Section{ID: "chat", Title: "Chat", Summary: "Ask models, compare, vote."}

// addProvider fills in the providers form with the fake and taps Add, then waits for its
// models to be offered.
func (e *env) addProvider(t *testing.T) {
	t.Helper()
	s := e.screen
	test.Type(s.provName, "oa")
	s.provKind.SetSelected("openai")
	test.Type(s.provURL, e.oa.URL)
	test.Type(s.provEnv, "GATA_TEST_GUI_OA_KEY")
	test.Tap(s.addBtn)
	e.ui.Until(t, "the fake's models to be offered", func() bool { return len(s.modelPick.Options) >= 3 })
	if !slices.Contains(widgettest.Labels(s.provList), "oa · openai · "+e.oa.URL+" · key from $GATA_TEST_GUI_OA_KEY") {
		t.Errorf("providers list = %q, want the new provider with its key found", widgettest.Labels(s.provList))
	}
}

// ask picks models, types the prompt and taps Ask, then waits until every answer is in.
func (e *env) ask(t *testing.T, models []string, prompt string) {
	t.Helper()
	s := e.screen
	s.modelPick.SetSelected(nil)
	s.prompt.SetText("")
	if !s.askBtn.Disabled() {
		t.Error("Ask enabled before models and a prompt are chosen")
	}
	s.modelPick.SetSelected(models)
	test.Type(s.prompt, prompt)
	if s.askBtn.Disabled() {
		t.Fatalf("Ask disabled with %d models and a prompt", len(models))
	}
	test.Tap(s.askBtn)
	e.ui.Until(t, "the battle to end", func() bool { return s.battle != nil && !s.battle.running && s.battleMsg.Visible() })
}

func TestBlindBattleVoteAndLeaderboard(t *testing.T) {
	e := newEnv(t)
	s := e.screen
	if got := widgettest.Labels(s.provList); len(got) != 1 || !strings.HasPrefix(got[0], "No providers yet") {
		t.Errorf("providers list of a new core = %q", got)
	}
	e.addProvider(t)
	if !s.blind.Checked {
		t.Error("Blind is not checked by default")
	}
	models := []string{"oa/good", "oa/other", "oa/third"}
	e.ask(t, models, "What is the capital of France?")

	b := s.battle
	if len(b.cols) != 3 || len(s.voteBtns) != 5 {
		t.Fatalf("battle shows %d columns and %d vote buttons, want 3 and 5", len(b.cols), len(s.voteBtns))
	}
	replies := map[string]string{
		"oa/good":  "Paris is the capital of France, on the Seine.",
		"oa/other": "The capital is Paris; Lyon is the second city.",
		"oa/third": "France's capital: Paris.",
	}
	var shown []string
	for i, col := range b.cols {
		if want := "Model " + string(rune('A'+i)); col.title.Text != want {
			t.Errorf("column %d titled %q before the vote, want %q (blind)", i, col.title.Text, want)
		}
		shown = append(shown, col.text.Text)
		if !col.status.Visible() || !strings.HasPrefix(col.status.Text, "First token after") {
			t.Errorf("column %s status = %q, want its timing", col.name, col.status.Text)
		}
	}
	for _, r := range replies {
		if !slices.Contains(shown, r) {
			t.Errorf("columns show %q; no column shows %q", shown, r)
		}
	}
	for k, vb := range s.voteBtns {
		if vb.Disabled() {
			t.Errorf("vote button %q disabled after the battle ended", k)
		}
	}
	if s.stopBtn.Disabled() == false {
		t.Error("Stop enabled after the battle ended")
	}

	test.Type(s.reason, "names the river")
	test.Tap(s.voteBtns["A"])
	e.ui.Until(t, "the vote to be shown", func() bool { return b.voted && s.result.Visible() })
	for i, col := range b.cols {
		want := "Model " + col.name + " · "
		if !strings.HasPrefix(col.title.Text, want) {
			t.Fatalf("column %d titled %q after the vote, want the model named", i, col.title.Text)
		}
		model := strings.TrimPrefix(col.title.Text, want)
		if replies[model] != col.text.Text {
			t.Errorf("column %s named %q shows %q, want %q", col.name, model, col.text.Text, replies[model])
		}
	}
	if r := s.result.Text; !strings.Contains(r, "You voted: A is best. Why: names the river") || !strings.Contains(r, "Quality ") {
		t.Errorf("result = %q, want the vote and the quality", r)
	}
	for k, vb := range s.voteBtns {
		if !vb.Disabled() {
			t.Errorf("vote button %q enabled after the vote", k)
		}
	}

	board := widgettest.Labels(s.board)
	for _, m := range models {
		if !slices.Contains(board, m) {
			t.Errorf("leaderboard %q does not list %s", board, m)
		}
	}
	if !strings.HasPrefix(s.boardNote.Text, "1 voted battles counted") {
		t.Errorf("leaderboard note = %q", s.boardNote.Text)
	}

	// Export the vote to a file as the save dialog would hand it over.
	path := filepath.Join(t.TempDir(), "arena.jsonl")
	wc, err := fstorage.Writer(fstorage.NewFileURI(path))
	if err != nil {
		t.Fatal(err)
	}
	s.Export(core.ExportArena, wc)
	e.ui.Until(t, "the export", func() bool { return strings.HasPrefix(s.exportMsg.Text, "Wrote") })
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := 0
	for sc := bufio.NewScanner(f); sc.Scan(); {
		lines++
	}
	if want := "Wrote 3 records to arena.jsonl."; s.exportMsg.Text != want || lines != 3 {
		t.Errorf("export said %q and wrote %d lines, want %q", s.exportMsg.Text, lines, want)
	}
}

func TestNamedBattleFollowUpAndGolden(t *testing.T) {
	e := newEnv(t)
	s := e.screen
	e.addProvider(t)
	s.blind.SetChecked(false)
	e.ask(t, []string{"oa/good", "oa/other"}, "What is the capital of France?")
	b := s.battle
	// Not blind: the picked order, named from the start.
	for i, want := range []string{"Model A · oa/good", "Model B · oa/other"} {
		if got := b.cols[i].title.Text; got != want {
			t.Errorf("column %d titled %q, want %q", i, got, want)
		}
	}
	if s.sendBtn.Disabled() {
		t.Fatal("Send follow-up disabled after the battle ended")
	}
	test.Type(s.followUp, "And of Italy?")
	test.Tap(s.sendBtn)
	e.ui.Until(t, "the follow-up to end", func() bool {
		return !b.running && len(b.cols[0].answers) == 2 && b.cols[0].answers[1] != ""
	})
	if got, want := b.cols[0].text.Text, "› What is the capital of France?\n\nParis is the capital of France, on the Seine.\n\n› And of Italy?\n\nParis is the capital of France, on the Seine."; got != want {
		t.Errorf("column A after the follow-up = %q, want %q", got, want)
	}
	if n := e.oa.Count("good"); n != 2 {
		t.Errorf("good was asked %d times, want 2", n)
	}

	test.Tap(b.cols[1].regen)
	e.ui.Until(t, "the regeneration to end", func() bool { return !b.running && e.oa.Count("other") == 3 && s.battleMsg.Visible() })
	e.ui.Until(t, "the regenerated answer", func() bool { return strings.HasSuffix(b.cols[1].text.Text, "Lyon is the second city.") })

	test.Tap(s.voteBtns["tie"])
	e.ui.Until(t, "the vote to be shown", func() bool { return b.voted && s.result.Visible() })
	// The timings vary from run to run; the rest of the card does not.
	for _, col := range b.cols {
		col.status.SetText("First token after 1 ms")
	}
	s.result.SetText(strings.SplitN(s.result.Text, "\n", 2)[0])
	assertMarkup(t, "battle.xml", s.card)
}

func TestColumnErrorAndStop(t *testing.T) {
	e := newEnv(t)
	s := e.screen
	e.addProvider(t)
	s.blind.SetChecked(false)
	s.modelPick.SetSelected([]string{"oa/good", "oa/denied", "oa/slow"})
	test.Type(s.prompt, "What is the capital of France?")
	test.Tap(s.askBtn)
	e.ui.Until(t, "the good and the denied columns to end", func() bool {
		b := s.battle
		return b != nil && b.cols[0].status.Visible() && b.cols[1].status.Visible()
	})
	b := s.battle
	if st := b.cols[1].status; st.Importance != widget.DangerImportance || st.Text == "" {
		t.Errorf("denied column status = %q (importance %v), want an error", st.Text, st.Importance)
	}
	if !b.running || s.stopBtn.Disabled() || !s.voteBtns["A"].Disabled() || !s.askBtn.Disabled() {
		t.Fatalf("while slow streams: running %v, Stop enabled %v, vote enabled %v, Ask enabled %v",
			b.running, !s.stopBtn.Disabled(), !s.voteBtns["A"].Disabled(), !s.askBtn.Disabled())
	}
	test.Tap(s.stopBtn)
	e.ui.Until(t, "the stopped battle to end", func() bool { return !b.running && s.battleMsg.Visible() })
	if s.voteBtns["A"].Disabled() || !s.stopBtn.Disabled() || s.askBtn.Disabled() {
		t.Errorf("after Stop: vote enabled %v, Stop enabled %v, Ask enabled %v",
			!s.voteBtns["A"].Disabled(), !s.stopBtn.Disabled(), !s.askBtn.Disabled())
	}
}

func TestAddProviderErrorAndRemove(t *testing.T) {
	e := newEnv(t)
	s := e.screen
	test.Type(s.provName, "bad name")
	test.Type(s.provURL, "http://127.0.0.1:1/v1")
	test.Tap(s.addBtn)
	e.ui.Until(t, "the error", func() bool { return s.provMsg.Visible() })
	if s.provMsg.Importance != widget.DangerImportance || !strings.Contains(s.provMsg.Text, "the name must be") {
		t.Errorf("message = %q, want the core's error", s.provMsg.Text)
	}
	s.provName.SetText("")
	s.provURL.SetText("")
	e.addProvider(t)
	test.Tap(widgettest.Button(t, s.provList, RemoveLabel))
	e.ui.Until(t, "the removal", func() bool { return len(s.providers) == 0 && len(s.modelPick.Options) == 0 })
	if ps, _ := e.core.Providers(context.Background()); len(ps) != 0 {
		t.Errorf("core still has providers %v", ps)
	}
}

// assertMarkup compares an object's rendering with a golden markup file, rewriting it with -update.
func assertMarkup(t *testing.T, name string, o fyne.CanvasObject) {
	t.Helper()
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", name), []byte(test.RenderObjectToMarkup(o)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	test.AssertObjectRendersToMarkup(t, name, o)
}

// TestKeysHistoryAndReopen: the passphrase row shows while the secrets file is locked; a
// key typed into the form is stored there and used; the history lists the battle, and
// opening it again shows its answers and its vote.
func TestKeysHistoryAndReopen(t *testing.T) {
	var c *core.Core
	e := newEnvWith(t, func(o *core.Options) {
		sec, err := storage.OpenSecrets(o.DataDir, storage.SecretsOptions{ForceFile: true, Passphrase: func() (string, error) { return c.Passphrase() }})
		if err != nil {
			t.Fatal(err)
		}
		o.Secrets = sec
	})
	c = e.core
	s := e.screen
	if !s.lock.Box.Visible() {
		t.Fatal("the passphrase row is hidden while the secrets file is locked")
	}
	if got := widgettest.Labels(s.history); len(got) != 1 || got[0] != "No battles yet." {
		t.Errorf("history of a new core = %q", got)
	}
	test.Type(s.lock.Entry, "gui passphrase")
	test.Tap(widgettest.Button(t, s.lock.Box, UnlockLabel))
	e.ui.Until(t, "the secrets to unlock", func() bool { return !s.lock.Box.Visible() })

	test.Type(s.provName, "oa")
	test.Type(s.provURL, e.oa.URL)
	test.Type(s.provKey, testKey)
	test.Tap(s.addBtn)
	e.ui.Until(t, "the fake's models to be offered", func() bool { return len(s.modelPick.Options) >= 3 })
	if want := "oa · openai · " + e.oa.URL + " · key stored"; !slices.Contains(widgettest.Labels(s.provList), want) {
		t.Errorf("providers list = %q, want %q", widgettest.Labels(s.provList), want)
	}
	if s.provKey.Text != "" {
		t.Error("the key stays in the form after adding the provider")
	}

	e.ask(t, []string{"oa/good", "oa/other"}, "What is the capital of France?")
	first := s.battle.id
	for _, col := range s.battle.cols {
		if !strings.Contains(col.text.Text, "Paris") {
			t.Errorf("column %s = %q: the stored key was not used", col.name, col.text.Text)
		}
	}
	test.Tap(s.voteBtns["A"])
	e.ui.Until(t, "the vote", func() bool { return s.battle.voted })
	e.ui.Until(t, "the history to list the vote", func() bool {
		got := widgettest.Labels(s.history)
		return len(got) == 1 && strings.Contains(got[0], "What is the capital of France?") && strings.Contains(got[0], "You voted: A is best.")
	})

	// A second battle replaces the first on the page; the history opens the first again.
	e.ask(t, []string{"oa/good", "oa/third"}, "Name a river in Paris.")
	if s.battle.id == first {
		t.Fatal("the second battle did not replace the first")
	}
	e.ui.Until(t, "the history to list both", func() bool { return len(widgettest.Labels(s.history)) == 2 })
	// The newest is listed first: the first battle's Open button is the second.
	var opens []*widget.Button
	widgettest.Walk(s.history, func(o fyne.CanvasObject) {
		if b, ok := o.(*widget.Button); ok && b.Text == OpenLabel {
			opens = append(opens, b)
		}
	})
	if len(opens) != 2 {
		t.Fatalf("history has %d Open buttons, want 2", len(opens))
	}
	test.Tap(opens[1])
	e.ui.Until(t, "the first battle to open", func() bool { return s.battle.id == first })
	if !s.battle.voted || !s.result.Visible() || !strings.Contains(s.result.Text, "You voted: A is best.") {
		t.Errorf("reopened battle: voted %v, result %q", s.battle.voted, s.result.Text)
	}
	for _, col := range s.battle.cols {
		if col.model == "" || !strings.Contains(col.text.Text, "Paris") {
			t.Errorf("reopened column %s: model %q, text %q", col.name, col.model, col.text.Text)
		}
	}
	if !s.voteBtns["A"].Disabled() {
		t.Error("a voted battle offers its vote buttons again")
	}

	// The key dialog's action: a wrong key makes the next battle fail with 401.
	s.SetKey("oa", "sk-wrong")
	e.ui.Until(t, "the key to be stored", func() bool { return strings.Contains(s.provMsg.Text, "Stored the key of oa.") })
	e.ask(t, []string{"oa/good", "oa/other"}, "What is the capital of Spain?")
	for _, col := range s.battle.cols {
		if !strings.Contains(col.status.Text, "401") {
			t.Errorf("column %s with a wrong key: status %q, want a 401", col.name, col.status.Text)
		}
	}
}
