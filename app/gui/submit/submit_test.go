package submit

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/app/gui/internal/widgettest"
	"github.com/gata-contrib/gata/storage"
	"github.com/gata-contrib/gata/storage/greenfield"
	"github.com/gata-contrib/gata/storage/wallet"
)

// env is the page in a window of Fyne's test app over a real core on a real SQLite file,
// the core's events applied to the page the way the window's shell applies them; the
// wallet goes to the keystore file (no keyring service) with a light scrypt cost. The
// core has the real uploader, whose Connect opens the wallet's account on the configured
// network as the app's does; it runs once serve is called, and a failed attempt waits
// an hour for the next.
type env struct {
	core   *core.Core
	st     *storage.Store
	screen *Screen
	ui     *widgettest.Queue
	win    fyne.Window
	serve  func() // starts the uploader
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
	var c *core.Core
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	up := greenfield.New(greenfield.Options{Store: st, Logger: quiet, MinBackoff: time.Hour, IdlePoll: 20 * time.Millisecond,
		Connect:  func(ctx context.Context) (greenfield.Chain, error) { return c.GreenfieldChain(ctx) },
		OnChange: func(id int64) { c.UploadChanged(id) }})
	c, err = core.New(core.Options{Version: "test", DataDir: dir, Store: st, Logger: quiet, Uploader: up,
		WalletScryptN: wallet.LightScryptN, Passphrase: func() (string, error) { return "gui pass", nil }})
	if err != nil {
		t.Fatal(err)
	}
	q := &widgettest.Queue{}
	w := test.NewWindow(nil)
	w.Resize(fyne.NewSize(1000, 2400))
	s := New(ctx, testSection, c, w, q.Do)
	w.SetContent(s.Content())
	follow := q.Follow(ctx, c, func(e core.Event) {
		switch d := e.Data.(type) {
		case core.UploadItem:
			s.ApplyUpload(d)
		case core.SubmitResult:
			s.ApplySubmissions()
		case []core.Setting:
			s.ApplySettings(d)
		}
	})
	served := make(chan error, 1)
	serving := false
	serve := func() {
		serving = true
		go func() { served <- up.Serve(ctx) }()
	}
	t.Cleanup(func() {
		cancel()
		follow()
		if serving {
			if err := <-served; err != nil {
				t.Errorf("uploader Serve = %v", err)
			}
		}
		s.Close()
		c.Close()
		st.Close()
		w.Close()
	})
	return &env{core: c, st: st, screen: s, ui: q, win: w, serve: serve}
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
	if len(rows) < 3 || !strings.HasPrefix(rows[0], "chat · 1 records · ") || rows[1] != "queued" ||
		rows[2] != fmt.Sprintf("Submission %d · nonce 2 · sha256 %s…", subs[0].ID, subs[0].Manifest.SHA256[:12]) {
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

// shot saves what the window draws to $GATA_ARTIFACTS/name.png, when that is set.
func (e *env) shot(t *testing.T, name string) {
	t.Helper()
	dir := os.Getenv("GATA_ARTIFACTS")
	if dir == "" {
		return
	}
	// Lay everything out afresh, as the window does before it draws.
	size := e.win.Canvas().Size()
	e.win.Resize(size.AddWidthHeight(1, 1))
	e.win.Resize(size)
	var b bytes.Buffer
	if err := png.Encode(&b, e.win.Canvas().Capture()); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// accountText is what the account card shows, its facts and its message.
func accountText(s *Screen) string {
	return strings.Join(append(widgettest.Labels(s.account), widgettest.Labels(s.accountMsg)...), "\n")
}

const (
	guiAddress = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266" // of the key below
	guiKey     = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
	guiReader  = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"
)

func TestUploadsAccountShareAndRetry(t *testing.T) {
	e := newEnv(t)
	s := e.screen
	ctx := context.Background()

	// The account: no wallet yet, then a custom network out of reach.
	e.ui.Until(t, "the account without a wallet", func() bool { return strings.Contains(accountText(s), "no wallet yet") })
	if txt := accountText(s); !strings.Contains(txt, "mainnet · greenfield_1017-1 (signed for chain id 1017)") {
		t.Errorf("account without a wallet = %q", txt)
	}
	test.Type(s.importKey, guiKey)
	test.Tap(s.importBtn)
	e.ui.Until(t, "the import", func() bool { return strings.Contains(s.walletInfo.Text, guiAddress) })
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // nothing listens on its port now
	rpc := dead.URL
	if _, err := e.core.UpdateSettings(ctx, map[string]string{core.SettingGreenfieldNetwork: "custom",
		core.SettingGreenfieldChainID: "greenfield_9000-121", core.SettingGreenfieldRPC: rpc}); err != nil {
		t.Fatal(err)
	}
	e.ui.Until(t, "the account on the custom network", func() bool { return strings.Contains(accountText(s), "connect to Greenfield") })
	for _, want := range []string{"custom · greenfield_9000-121 (signed for chain id 9000)", rpc, guiAddress, "gata-" + strings.ToLower(guiAddress[2:]),
		"Balance and read quota cannot be read: connect to Greenfield greenfield_9000-121 at " + rpc} {
		if !strings.Contains(accountText(s), want) {
			t.Errorf("account card lacks %q: %q", want, accountText(s))
		}
	}

	// A submission made in the page is queued.
	e.storeVotedBattle(t, "b1")
	test.Tap(s.submit)
	e.ui.Until(t, "the submission", func() bool { return len(s.rows) == 1 })
	subs, _ := e.core.Submissions(ctx, 0)
	id := subs[0].ID
	r := s.rows[id]
	if r.state.Text != "queued" || r.retry.Visible() || !strings.HasPrefix(r.progress.Text, "0 B of ") || !strings.Contains(r.object.Text, "chat/") {
		t.Errorf("queued row: state %q, retry %v, progress %q, object %q", r.state.Text, r.retry.Visible(), r.progress.Text, r.object.Text)
	}
	if got := s.shareTarget.Options; len(got) != 2 || got[0] != ShareAllText || !strings.HasPrefix(got[1], fmt.Sprintf("Submission %d: chat, 1 records, ", id)) {
		t.Errorf("share choices = %q", got)
	}

	// Progress as the uploader stores it, shown from its event.
	ob, err := e.st.OutboxBySubmission(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	e.st.SetUploadState(ctx, ob.ID, storage.OutboxUploading)
	e.st.SetUploadProgress(ctx, ob.ID, ob.Size/2, 2048)
	e.core.UploadChanged(ob.ID)
	e.ui.Until(t, "the progress", func() bool { return r.state.Text == "uploading" })
	if want := float64(ob.Size/2) / float64(ob.Size); math.Abs(r.bar.Value-want) > 1e-9 || !strings.Contains(r.progress.Text, "2.0 KiB/s") ||
		!strings.Contains(r.progress.Text, core.HumanBytes(ob.Size/2)+" of "+core.HumanBytes(ob.Size)) {
		t.Errorf("uploading row: bar %v (want %v), progress %q", r.bar.Value, want, r.progress.Text)
	}

	// The uploader resumes it, cannot reach the network, and waits for the next attempt.
	e.serve()
	e.ui.Until(t, "the failed attempt", func() bool { return r.state.Text == "retrying" })
	if !strings.Contains(r.progress.Text, "1 failed attempt · next try at ") || !r.err.Visible() || !strings.HasPrefix(r.err.Text, "connect to Greenfield") ||
		strings.Contains(r.err.Text, "\n") || !r.retry.Visible() || r.retry.Text != RetryNowLabel || r.state.Importance != widget.WarningImportance {
		t.Errorf("row after a failed attempt: progress %q, error %q (shown %v), retry %q (shown %v)", r.progress.Text, r.err.Text, r.err.Visible(), r.retry.Text, r.retry.Visible())
	}

	// Share: a bad address is refused; a good one waits for the upload.
	test.Type(s.shareAddr, "0x1234")
	test.Tap(s.shareBtn)
	e.ui.Until(t, "the refusal", func() bool { return s.shareMsg.Visible() })
	if !strings.Contains(s.shareMsg.Text, "want 0x and 40 hex digits") || s.shareMsg.Importance != widget.DangerImportance {
		t.Errorf("share of a bad address = %q", s.shareMsg.Text)
	}
	s.shareAddr.SetText(strings.ToLower(guiReader))
	s.shareTarget.SetSelected(s.shareTarget.Options[1])
	s.shareMsg.Hide()
	test.Tap(s.shareBtn)
	e.ui.Until(t, "the share", func() bool { return s.shareMsg.Visible() })
	if want := fmt.Sprintf("Submission %d shared with %s: 1 once its upload is done.", id, guiReader); s.shareMsg.Text != want {
		t.Errorf("share = %q, want %q", s.shareMsg.Text, want)
	}
	if want := guiReader + " granted once the upload is done"; !r.shares.Visible() || r.shares.Text != want {
		t.Errorf("shares = %q, want %q", r.shares.Text, want)
	}

	e.shot(t, "submit-gui-retrying")

	// The last attempt failed: Retry queues it for an attempt now, which fails again.
	e.st.UploadFailed(ctx, ob.ID, "put object: provider refused\nthe payload", time.Now().Add(time.Hour), true)
	e.core.UploadChanged(ob.ID)
	e.ui.Until(t, "the failure", func() bool { return r.state.Text == "failed" })
	if r.err.Text != "put object: provider refused the payload" || r.retry.Text != RetryLabel || strings.Contains(r.progress.Text, "next try") {
		t.Errorf("failed row: error %q, retry %q, progress %q", r.err.Text, r.retry.Text, r.progress.Text)
	}
	test.Tap(r.retry)
	e.ui.Until(t, "the answer", func() bool { return s.uploadMsg.Visible() })
	if want := fmt.Sprintf("Submission %d is queued for an attempt now (the count of attempts starts again).", id); s.uploadMsg.Text != want {
		t.Errorf("retry = %q, want %q", s.uploadMsg.Text, want)
	}
	e.ui.Until(t, "the new failed attempt", func() bool {
		return r.state.Text == "retrying" && strings.HasPrefix(r.err.Text, "connect to Greenfield") && strings.Contains(r.progress.Text, "1 failed attempt")
	})

	// Done: no Retry, no old error; the account is read again.
	seq := s.accountSeq
	e.st.UploadDone(ctx, ob.ID)
	e.core.UploadChanged(ob.ID)
	e.ui.Until(t, "the done upload", func() bool { return r.state.Text == "done" })
	if r.retry.Visible() || r.err.Visible() || !strings.Contains(r.progress.Text, "uploaded and sealed at") || r.bar.Value != 1 {
		t.Errorf("done row: retry %v, error %v, progress %q, bar %v", r.retry.Visible(), r.err.Visible(), r.progress.Text, r.bar.Value)
	}
	if s.accountSeq == seq {
		t.Error("a finished upload did not read the account again")
	}
}

func TestShowAccount(t *testing.T) {
	e := newEnv(t)
	s := e.screen
	n := core.Account{}
	n.Network.Name, n.Network.ChainID, n.Network.RPC = "testnet", "greenfield_5600-1", "https://rpc.example"
	for _, tt := range []struct {
		name      string
		a         core.Account
		want, not []string
	}{
		{"no bucket yet", func() core.Account {
			a := n
			a.EVMChainID, a.Address, a.Bucket = 5600, guiAddress, "gata-f39f"
			a.Status = &core.GreenfieldStatus{Address: guiAddress, Bucket: "gata-f39f", BalanceBNB: "1.5"}
			return a
		}(), []string{"testnet · greenfield_5600-1 (signed for chain id 5600)", "1.5 BNB", "gata-f39f (made with the first upload)"}, []string{"Read quota", "cannot be read"}},
		{"bucket and quota", func() core.Account {
			a := n
			a.EVMChainID, a.Address, a.Bucket = 5600, guiAddress, "gata-f39f"
			a.Status = &core.GreenfieldStatus{Address: guiAddress, Bucket: "gata-f39f", BucketMade: true, BalanceBNB: "0.25",
				Quota: &greenfield.Quota{FreeMonthly: 1 << 30, FreeConsumed: 3 << 20}}
			return a
		}(), []string{"0.25 BNB", "Read quota", "3.0 MiB of 1.0 GiB free this month used; 0 B of 0 B bought used"}, []string{"made with the first upload"}},
		{"bad network", core.Account{NetworkError: "a custom Greenfield network needs a chain id and an RPC endpoint"},
			[]string{"The network setting is not usable: a custom Greenfield network needs"}, []string{"Network"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s.showAccount(tt.a)
			got := accountText(s)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("account card lacks %q: %q", w, got)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(got, w) {
					t.Errorf("account card holds %q: %q", w, got)
				}
			}
		})
	}
}

// TestUploadsByAnotherProcess: while another process on the data folder holds the
// uploader's lease, the list says which one uploads.
func TestUploadsByAnotherProcess(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, ok, err := e.st.TakeLease(ctx, greenfield.LeaseName, "elsewhere pid 7", time.Now(), time.Hour); !ok || err != nil {
		t.Fatalf("take the lease: %v %v", ok, err)
	}
	e.serve()
	e.ui.Until(t, "the list tells of the other process", func() bool {
		e.screen.ApplySubmissions()
		for _, l := range widgettest.Labels(e.screen.list) {
			if strings.Contains(l, "Another gata process (elsewhere pid 7) uploads from this data folder") {
				return true
			}
		}
		return false
	})
}
