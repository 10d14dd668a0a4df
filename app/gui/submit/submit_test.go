package submit

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/app/gui/internal/widgettest"
	"github.com/gata-contrib/gata/storage"
	"github.com/gata-contrib/gata/storage/wallet"
)

// env is the page in a window of Fyne's test app over a real core on a real SQLite file;
// the wallet goes to the keystore file (no keyring service) with a light scrypt cost.
type env struct {
	core   *core.Core
	st     *storage.Store
	screen *Screen
	ui     *widgettest.Queue
}

var testSection = core.Section{ID: "submit", Title: "Submit", Summary: "Sign and upload what you made."}

func newEnv(t *testing.T) *env {
	t.Helper()
	test.NewTempApp(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := storage.Open(ctx, filepath.Join(dir, storage.DBName))
	if err != nil {
		t.Fatal(err)
	}
	c, err := core.New(core.Options{Version: "test", DataDir: dir, Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		WalletScryptN: wallet.LightScryptN, Passphrase: func() (string, error) { return "gui pass", nil }})
	if err != nil {
		t.Fatal(err)
	}
	q := &widgettest.Queue{}
	w := test.NewWindow(nil)
	w.Resize(fyne.NewSize(1000, 1600))
	s := New(ctx, testSection, c, w, q.Do)
	w.SetContent(s.Content())
	t.Cleanup(func() {
		cancel()
		s.Close()
		c.Close()
		st.Close()
		w.Close()
	})
	return &env{core: c, st: st, screen: s, ui: q}
}

func (e *env) storeVotedBattle(t *testing.T, id string) {
	t.Helper()
	t0 := time.Now().Add(-time.Hour)
	ans := func(text string) storage.ChatAnswer {
		return storage.ChatAnswer{Text: text, Started: t0, FirstToken: t0.Add(time.Second), Finished: t0.Add(2 * time.Second)}
	}
	err := e.st.SaveChatBattle(context.Background(), storage.ChatBattle{ID: id, Created: t0, Blind: true, Models: []string{"f/a", "f/b"},
		Prompts: []string{"Name a prime number. " + id},
		Sides: []storage.ChatSide{
			{Column: "A", Model: "f/a", Answers: []storage.ChatAnswer{ans("Seven.")}},
			{Column: "B", Model: "f/b", Answers: []storage.ChatAnswer{ans("Nine.")}},
		},
		Vote:    &storage.ChatVote{Outcome: "A", At: t0.Add(time.Minute)},
		Quality: &storage.ChatQuality{Score: 0.9, Diversity: 1, Assessed: t0.Add(time.Minute)}})
	if err != nil {
		t.Fatal(err)
	}
}

var wordLabel = regexp.MustCompile(`^(\d+)\. ([a-z]+)$`)

// createWallet taps Create, reads the words off the page and types back the asked ones
// (one of them wrong when wrong is set), then taps Save.
func (e *env) createWallet(t *testing.T, wrong bool) []string {
	t.Helper()
	s := e.screen
	test.Tap(s.createBtn)
	e.ui.Until(t, "the words", func() bool { return s.words.Visible() && len(s.words.Objects) == wallet.MnemonicWords })
	words := make([]string, wallet.MnemonicWords)
	for _, l := range widgettest.Labels(s.words) {
		m := wordLabel.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("word label %q", l)
		}
		n, _ := strconv.Atoi(m[1])
		words[n-1] = m[2]
	}
	if len(s.confirm) != 3 {
		t.Fatalf("%d words asked back, want 3", len(s.confirm))
	}
	first := true
	for p, entry := range s.confirm {
		w := words[p-1]
		if wrong && first {
			w += "x"
		}
		first = false
		test.Type(entry, w)
	}
	test.Tap(widgettest.Button(t, s.Content(), SaveLabel))
	return words
}

func TestCreateExportSubmitVerify(t *testing.T) {
	e := newEnv(t)
	s := e.screen
	if !strings.HasPrefix(s.walletInfo.Text, "No wallet yet") || !s.newBox.Visible() || s.exportBox.Visible() {
		t.Fatalf("page without a wallet: %q, create shown %v", s.walletInfo.Text, s.newBox.Visible())
	}
	words := e.createWallet(t, false)
	k, err := wallet.FromMnemonic(strings.Join(words, " "))
	if err != nil {
		t.Fatal(err)
	}
	e.ui.Until(t, "the wallet saved", func() bool { return strings.Contains(s.walletInfo.Text, k.Address().Hex()) })
	if s.newBox.Visible() || !s.exportBox.Visible() || s.words.Visible() || len(s.words.Objects) != 0 {
		t.Errorf("after saving: create shown %v, export shown %v, words still there %v", s.newBox.Visible(), s.exportBox.Visible(), len(s.words.Objects))
	}

	// Export needs the confirmation ticked.
	if !s.exportBtn.Disabled() {
		t.Error("the export button is enabled before the confirmation")
	}
	s.exportOK.SetChecked(true)
	test.Tap(s.exportBtn)
	e.ui.Until(t, "the key", func() bool { return s.exported.Visible() })
	if s.exported.Text != k.ExportHex() {
		t.Errorf("exported %q, want the key of the words", s.exported.Text)
	}
	test.Tap(s.hideBtn)
	if s.exported.Visible() || s.exported.Text != "" || s.exportOK.Checked {
		t.Error("Hide left the key on the page")
	}

	// Submit: nothing yet, then a battle; a dry run first.
	test.Tap(s.submit)
	e.ui.Until(t, "the answer", func() bool { return s.result.Visible() })
	if !strings.Contains(s.result.Text, "nothing new to submit") {
		t.Errorf("submit with nothing = %q", s.result.Text)
	}
	e.storeVotedBattle(t, "b1")
	out := filepath.Join(t.TempDir(), "dry")
	s.dryRun.SetChecked(true)
	if s.outDir.Disabled() {
		t.Error("the folder stays disabled for a dry run")
	}
	test.Type(s.outDir, out)
	s.result.Hide()
	test.Tap(s.submit)
	e.ui.Until(t, "the dry run", func() bool { return s.result.Visible() })
	if !strings.Contains(s.result.Text, "written to "+out) {
		t.Fatalf("dry run = %q", s.result.Text)
	}
	s.dryRun.SetChecked(false)
	s.result.Hide()
	test.Tap(s.submit)
	e.ui.Until(t, "the submission", func() bool { return s.result.Visible() })
	if !strings.Contains(s.result.Text, "queued for upload") || !strings.Contains(s.result.Text, k.Address().Hex()) {
		t.Fatalf("submit = %q", s.result.Text)
	}
	subs, err := e.core.Submissions(context.Background(), 0)
	if err != nil || len(subs) != 1 {
		t.Fatalf("submissions = %+v, %v", subs, err)
	}
	rows := widgettest.Labels(s.list)
	if len(rows) != 1 || !strings.HasPrefix(rows[0], "chat · 1 records · nonce 2 · "+subs[0].Manifest.SHA256[:12]) || !strings.HasSuffix(rows[0], "queued") {
		t.Errorf("submissions list = %q", rows)
	}

	// Verify the dry run's files, then a tampered copy.
	files, _ := filepath.Glob(filepath.Join(out, "*.manifest.json"))
	if len(files) != 1 {
		t.Fatalf("dry run files %v", files)
	}
	test.Type(s.manifest, files[0])
	test.Tap(s.verifyBtn)
	e.ui.Until(t, "the check", func() bool { return s.verified.Visible() })
	if !strings.Contains(s.verified.Text, "Signed by "+k.Address().Hex()) {
		t.Errorf("verify = %q", s.verified.Text)
	}
	jsonl := strings.TrimSuffix(files[0], ".manifest.json") + ".jsonl"
	b, _ := os.ReadFile(jsonl)
	tampered := filepath.Join(t.TempDir(), "t.jsonl")
	os.WriteFile(tampered, append(b, "{}\n"...), 0o600)
	test.Type(s.jsonl, tampered)
	s.verified.Hide()
	test.Tap(s.verifyBtn)
	e.ui.Until(t, "the failed check", func() bool { return s.verified.Visible() })
	if !strings.Contains(s.verified.Text, "content hash mismatch") {
		t.Errorf("verify of a tampered file = %q", s.verified.Text)
	}
}

func TestWrongWordAndImport(t *testing.T) {
	e := newEnv(t)
	s := e.screen
	e.createWallet(t, true)
	e.ui.Until(t, "the refusal", func() bool { return s.walletMsg.Visible() })
	if !strings.Contains(s.walletMsg.Text, "does not match") || !s.newBox.Visible() {
		t.Errorf("a wrong word: %q, create still shown %v", s.walletMsg.Text, s.newBox.Visible())
	}
	if info, _ := e.core.WalletStatus(context.Background()); info.Exists {
		t.Fatal("a wallet was saved with a wrong word")
	}
	test.Type(s.importKey, "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
	test.Tap(s.importBtn)
	e.ui.Until(t, "the import", func() bool { return strings.Contains(s.walletInfo.Text, "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266") })
	if s.importKey.Text != "" {
		t.Error("the key stays in the import field")
	}
	if !strings.Contains(s.walletInfo.Text, "keystore file") {
		t.Errorf("wallet info = %q", s.walletInfo.Text)
	}
}
