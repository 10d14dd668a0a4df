package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/storage"
	"github.com/gata-contrib/gata/storage/greenfield"
	"github.com/gata-contrib/gata/storage/wallet"
)

// newSubmitServer serves a core whose secrets and wallet go to encrypted files (no
// keyring service), locked until a passphrase is given through the API.
func newSubmitServer(t *testing.T) (string, *storage.Store) {
	t.Helper()
	var c *core.Core
	var st *storage.Store
	c = newTestCoreWith(t, func(o *core.Options) {
		st = o.Store.(*storage.Store)
		o.WalletScryptN = wallet.LightScryptN
		secrets, err := storage.OpenSecrets(o.DataDir, storage.SecretsOptions{ForceFile: true, Passphrase: func() (string, error) { return c.Passphrase() }})
		if err != nil {
			t.Fatal(err)
		}
		o.Secrets = secrets
	})
	_, ts, _ := serveCore(t, c, Options{})
	return ts.URL, st
}

func storeVotedBattle(t *testing.T, st *storage.Store, id string) {
	t.Helper()
	t0 := time.Now().Add(-time.Hour)
	ans := func(text string) storage.ChatAnswer {
		return storage.ChatAnswer{Text: text, Started: t0, FirstToken: t0.Add(time.Second), Finished: t0.Add(2 * time.Second)}
	}
	err := st.SaveChatBattle(context.Background(), storage.ChatBattle{ID: id, Created: t0, Blind: true, Models: []string{"f/a", "f/b"},
		Prompts: []string{"What is the capital of France? " + id},
		Sides: []storage.ChatSide{
			{Column: "A", Model: "f/a", Answers: []storage.ChatAnswer{ans("Paris.")}},
			{Column: "B", Model: "f/b", Answers: []storage.ChatAnswer{ans("Lyon.")}},
		},
		Vote:    &storage.ChatVote{Outcome: "A", At: t0.Add(time.Minute)},
		Quality: &storage.ChatQuality{Score: 0.9, Diversity: 1, Assessed: t0.Add(time.Minute)}})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSubmitSectionThroughTheAPI(t *testing.T) {
	url, st := newSubmitServer(t)
	var bodies []string // every answer, checked for the key at the end
	do := func(method, path, body string) reply {
		t.Helper()
		r := call(t, method, url+path, body, withKey(nil))
		bodies = append(bodies, r.body)
		return r
	}

	if r := do("GET", "/ui/section/submit", ""); r.status != 200 || !strings.Contains(r.body, `data-testid="submit-form"`) || !strings.Contains(r.body, `id="submit-wallet"`) {
		t.Fatalf("submit section = %d %s", r.status, r.body)
	}
	var info core.WalletInfo
	do("GET", "/api/wallet", "").json(t, &info)
	if info.Exists || !info.Locked || info.Where != wallet.WhereFile {
		t.Fatalf("wallet before = %+v, want none, locked, in the keystore file", info)
	}
	if r := do("GET", "/ui/submit/wallet", ""); !strings.Contains(r.body, "submit-unlock-form") || !strings.Contains(r.body, "submit-new-wallet") {
		t.Errorf("wallet card without a wallet = %s", r.body)
	}

	r := do("POST", "/api/wallet/new", "")
	if r.status != http.StatusCreated {
		t.Fatalf("new wallet = %d %s", r.status, r.body)
	}
	newAnswer := len(bodies) - 1 // the one answer that may show the words
	var nw core.NewWallet
	r.json(t, &nw)
	if len(nw.Words) != wallet.MnemonicWords || len(nw.Confirm) != 3 {
		t.Fatalf("new wallet = %+v", nw)
	}
	k, err := wallet.FromMnemonic(strings.Join(nw.Words, " "))
	if err != nil || k.Address().Hex() != nw.Address {
		t.Fatalf("the words give %v, %v; want %s", k, err, nw.Address)
	}
	answers := map[int]string{}
	for _, p := range nw.Confirm {
		answers[p] = nw.Words[p-1]
	}
	wrong := map[int]string{nw.Confirm[0]: "zzz", nw.Confirm[1]: answers[nw.Confirm[1]], nw.Confirm[2]: answers[nw.Confirm[2]]}
	if r := do("POST", "/api/wallet/confirm", mustJSON(t, map[string]any{"words": wrong})); r.status != http.StatusBadRequest {
		t.Errorf("confirm with a wrong word = %d %s, want 400", r.status, r.body)
	}
	if r := do("POST", "/api/wallet/confirm", mustJSON(t, map[string]any{"words": answers})); r.status != http.StatusLocked {
		t.Errorf("confirm while locked = %d %s, want 423", r.status, r.body)
	}
	if r := do("POST", "/api/secrets/unlock", `{"passphrase":"web pass"}`); r.status != 200 {
		t.Fatalf("unlock = %d %s", r.status, r.body)
	}
	r = do("POST", "/api/wallet/confirm", mustJSON(t, map[string]any{"words": answers}))
	if r.status != 200 {
		t.Fatalf("confirm = %d %s", r.status, r.body)
	}
	r.json(t, &info)
	if !info.Exists || info.Address != nw.Address || info.Locked {
		t.Errorf("wallet after confirm = %+v", info)
	}
	if r := do("GET", "/ui/submit/wallet", ""); !strings.Contains(r.body, nw.Address) || strings.Contains(r.body, "submit-new-wallet") {
		t.Errorf("wallet card = %s", r.body)
	}
	if r := do("POST", "/api/wallet/import", `{"mnemonic":"test test test test test test test test test test test junk"}`); r.status != http.StatusConflict {
		t.Errorf("import over a wallet = %d %s, want 409", r.status, r.body)
	}
	if r := do("POST", "/api/wallet/import", `{"private_key":"0x12"}`); r.status != http.StatusBadRequest {
		t.Errorf("import of a bad key = %d %s, want 400", r.status, r.body)
	}
	if r := do("POST", "/api/wallet/export", `{"format":"hex","confirm":true}`); r.status != http.StatusNotFound {
		t.Errorf("export through the web UI = %d, want 404 (there is none)", r.status)
	}

	// Submissions.
	if r := do("POST", "/api/submissions", `{"kind":"chat"}`); r.status != http.StatusConflict {
		t.Errorf("submit with nothing = %d %s, want 409", r.status, r.body)
	}
	storeVotedBattle(t, st, "b1")
	storeVotedBattle(t, st, "b2")
	out := filepath.Join(t.TempDir(), "dry")
	r = do("POST", "/api/submissions", mustJSON(t, map[string]any{"kind": "chat", "dry_run": true, "out_dir": out}))
	if r.status != http.StatusCreated {
		t.Fatalf("dry run = %d %s", r.status, r.body)
	}
	var dry core.SubmitResult
	r.json(t, &dry)
	if !dry.DryRun || filepath.Dir(dry.ManifestPath) != out {
		t.Errorf("dry run = %+v", dry)
	}
	r = do("POST", "/api/submissions", `{"kind":"chat"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("submit = %d %s", r.status, r.body)
	}
	var res core.SubmitResult
	r.json(t, &res)
	if res.Manifest.Records != 2 || res.Manifest.Submitter != nw.Address || res.Manifest.Nonce != dry.Manifest.Nonce+1 {
		t.Errorf("submit = %+v", res)
	}
	for _, bad := range []string{`{"kind":"votes"}`, `{"kind":"chat","dry_run":true}`, `{"kind":"chat","extra":1}`} {
		if r := do("POST", "/api/submissions", bad); r.status != http.StatusBadRequest {
			t.Errorf("submit %s = %d %s, want 400", bad, r.status, r.body)
		}
	}
	var list []core.SubmitResult
	do("GET", "/api/submissions", "").json(t, &list)
	if len(list) != 1 || list[0].ID != res.ID {
		t.Errorf("submissions = %+v", list)
	}
	if r := do("GET", "/ui/submit/list", ""); !strings.Contains(r.body, `data-testid="submit-row"`) || !strings.Contains(r.body, "queued") ||
		!strings.Contains(r.body, res.Manifest.SHA256[:12]) {
		t.Errorf("submissions card = %s", r.body)
	}

	// Verify.
	var v core.VerifyResult
	r = do("POST", "/api/verify", mustJSON(t, map[string]string{"manifest_path": res.ManifestPath}))
	if r.status != 200 {
		t.Fatalf("verify = %d %s", r.status, r.body)
	}
	r.json(t, &v)
	if v.Signer != nw.Address {
		t.Errorf("verify = %+v", v)
	}
	jsonl, _ := os.ReadFile(res.JSONLPath)
	tampered := filepath.Join(t.TempDir(), "t.jsonl")
	os.WriteFile(tampered, append(jsonl, "{\"x\":1}\n"...), 0o600)
	if r := do("POST", "/api/verify", mustJSON(t, map[string]string{"manifest_path": res.ManifestPath, "jsonl_path": tampered})); r.status != http.StatusUnprocessableEntity ||
		!strings.Contains(r.body, "content hash mismatch") {
		t.Errorf("verify of a tampered file = %d %s, want 422", r.status, r.body)
	}
	if r := do("POST", "/api/verify", `{}`); r.status != http.StatusBadRequest {
		t.Errorf("verify without a manifest = %d", r.status)
	}

	secret := strings.TrimPrefix(k.ExportHex(), "0x")
	for i, b := range bodies {
		if strings.Contains(strings.ToLower(b), secret) {
			t.Errorf("answer %d holds the private key: %s", i, b)
		}
		if i != newAnswer && (strings.Contains(b, strings.Join(nw.Words[:3], " ")) || strings.Contains(b, fmt.Sprintf("%q,%q,%q", nw.Words[0], nw.Words[1], nw.Words[2]))) {
			t.Errorf("answer %d repeats the words: %s", i, b)
		}
	}
}

// uploadServer is a core with the real uploader, whose Connect opens the wallet's
// account on the configured network as the app's does; the wallet goes to the keystore
// file with a fixed passphrase. The uploader runs once serve is called; a failed attempt
// waits an hour for the next, so a test sees every state it waits for.
type uploadServer struct {
	url   string
	srv   *Server
	core  *core.Core
	st    *storage.Store
	serve func()
}

func newUploadServer(t *testing.T) *uploadServer {
	t.Helper()
	var c *core.Core
	var st *storage.Store
	var up *greenfield.Uploader
	c = newTestCoreWith(t, func(o *core.Options) {
		st = o.Store.(*storage.Store)
		o.WalletScryptN = wallet.LightScryptN
		o.Passphrase = func() (string, error) { return "web pass", nil }
		up = greenfield.New(greenfield.Options{Store: st, Logger: quiet, MinBackoff: time.Hour, IdlePoll: 20 * time.Millisecond,
			Connect:  func(ctx context.Context) (greenfield.Chain, error) { return c.GreenfieldChain(ctx) },
			OnChange: func(id int64) { c.UploadChanged(id) }})
		o.Uploader = up
	})
	srv, ts, _ := serveCore(t, c, Options{})
	serve := func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- up.Serve(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("uploader Serve = %v", err)
			}
		})
	}
	return &uploadServer{url: ts.URL, srv: srv, core: c, st: st, serve: serve}
}

func (u *uploadServer) do(t *testing.T, method, path, body string) reply {
	t.Helper()
	return call(t, method, u.url+path, body, withKey(nil))
}

// upload waits until the upload of submission id satisfies cond.
func (u *uploadServer) upload(t *testing.T, id int64, what string, cond func(core.UploadItem) bool) core.UploadItem {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var it core.UploadItem
		u.do(t, "GET", fmt.Sprintf("/api/uploads/%d", id), "").json(t, &it)
		if cond(it) {
			return it
		}
		if time.Now().After(deadline) {
			t.Fatalf("upload of submission %d never became %s: %+v", id, what, it)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wantAll fails unless body holds every one of want.
func wantAll(t *testing.T, what, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, body)
		}
	}
}

const (
	uploadMnemonic = "test test test test test test test test test test test junk"
	uploadAddress  = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
	shareReader    = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"
)

func TestSubmitUploadsAndAccount(t *testing.T) {
	u := newUploadServer(t)
	ctx := context.Background()

	// The account: the default network without a wallet, then a custom network out of reach.
	r := u.do(t, "GET", "/ui/submit/account", "")
	wantAll(t, "account card without a wallet", r.body, "mainnet", "greenfield_1017-1", "chain id 1017", "cannot be read: no wallet yet", `href="#/settings"`)
	if r := u.do(t, "POST", "/api/wallet/import", mustJSON(t, core.WalletImport{Mnemonic: uploadMnemonic})); r.status != 200 {
		t.Fatalf("import = %d %s", r.status, r.body)
	}
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // nothing listens on its port now
	rpc := dead.URL
	if r := u.do(t, "PATCH", "/api/settings", mustJSON(t, map[string]string{core.SettingGreenfieldNetwork: "custom",
		core.SettingGreenfieldChainID: "greenfield_9000-121", core.SettingGreenfieldRPC: rpc})); r.status != 200 {
		t.Fatalf("settings = %d %s", r.status, r.body)
	}
	var acct core.Account
	u.do(t, "GET", "/api/account", "").json(t, &acct)
	if acct.Network.RPC != rpc || acct.EVMChainID != 9000 || acct.Address != uploadAddress || acct.Status != nil || !strings.Contains(acct.Error, "connect to Greenfield") {
		t.Errorf("account on a closed port = %+v", acct)
	}
	r = u.do(t, "GET", "/ui/submit/account", "")
	wantAll(t, "account card", r.body, "custom", "greenfield_9000-121", rpc, uploadAddress, "gata-"+strings.ToLower(uploadAddress[2:]),
		`data-testid="submit-account-problem"`, "Balance and read quota cannot be read: connect to Greenfield")

	// A submission is queued; its row says so before the uploader runs.
	storeVotedBattle(t, u.st, "b1")
	var res core.SubmitResult
	u.do(t, "POST", "/api/submissions", `{"kind":"chat"}`).json(t, &res)
	var items []core.UploadItem
	u.do(t, "GET", "/api/uploads", "").json(t, &items)
	if len(items) != 1 || items[0].SubmissionID != res.ID || items[0].State != "queued" || items[0].Size != int64(res.Manifest.Bytes) {
		t.Fatalf("uploads = %+v", items)
	}
	r = u.do(t, "GET", "/ui/submit/list", "")
	wantAll(t, "list of a queued upload", r.body, `data-state="queued"`, ">queued<", "0 B of "+byteSize(items[0].Size)+" (0 %)", items[0].Object)
	if strings.Contains(r.body, `data-testid="submit-retry"`) {
		t.Error("a queued upload offers Retry before it failed")
	}
	if r := u.do(t, "GET", "/ui/submit/share-options", ""); !strings.Contains(r.body, fmt.Sprintf(`<option value="%d">Submission %d: chat, 1 records`, res.ID, res.ID)) {
		t.Errorf("share options = %s", r.body)
	}

	// Progress as the uploader stores it, and its event.
	ob, err := u.st.OutboxBySubmission(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := openStream(t, sctx, u.url+"/api/events", nil)
	if err := u.st.SetUploadState(ctx, ob.ID, storage.OutboxUploading); err != nil {
		t.Fatal(err)
	}
	if err := u.st.SetUploadProgress(ctx, ob.ID, ob.Size/2, 2048); err != nil {
		t.Fatal(err)
	}
	u.core.UploadChanged(ob.ID)
	e := nextEvents(t, events, 1)[0]
	var ev core.UploadItem
	if err := json.Unmarshal([]byte(e.data), &ev); err != nil || e.event != core.EventUpload || ev.State != "uploading" || ev.BytesSent != ob.Size/2 {
		t.Errorf("event = %+v (%v), want the upload's progress", e, err)
	}
	r = u.do(t, "GET", "/ui/submit/list", "")
	wantAll(t, "list while uploading", r.body, ">uploading<", "state-running", byteSize(ob.Size/2)+" of "+byteSize(ob.Size), "2.0 KB/s",
		fmt.Sprintf(`value="%d"`, int(100*float64(ob.Size/2)/float64(ob.Size)+0.5)))

	// The uploader resumes it, cannot reach the network, and waits for the next attempt.
	u.serve()
	it := u.upload(t, res.ID, "waiting after a failed attempt", func(it core.UploadItem) bool { return it.Attempts == 1 })
	if it.State != "queued" || !strings.Contains(it.Error, "connect to Greenfield") || it.NextAttempt.IsZero() {
		t.Fatalf("after a failed attempt: %+v", it)
	}
	r = u.do(t, "GET", "/ui/submit/list", "")
	wantAll(t, "list after a failed attempt", r.body, ">retrying<", "state-paused", "1 failed attempt</span>", "next try at "+it.NextAttempt.Local().Format("15:04:05"),
		`data-testid="submit-upload-error"`, "connect to Greenfield", rpc, `data-action="submit-retry"`, ">Retry now<")

	// Shares: checked, recorded, granted once the upload is done.
	for _, bad := range []struct{ body, want string }{
		{`{"address":"0x12","submission_id":1}`, "want 0x and 40 hex digits"},
		{fmt.Sprintf(`{"address":%q,"submission_id":999}`, shareReader), "submission 999: not found"},
		{fmt.Sprintf(`{"address":%q,"submission_id":-1}`, shareReader), "submission_id"},
		{`{"address":"` + shareReader + `","id":1}`, "unknown field"},
	} {
		if r := u.do(t, "POST", "/api/uploads/share", bad.body); r.status != http.StatusBadRequest || !strings.Contains(r.body, bad.want) {
			t.Errorf("share %s = %d %s, want 400 %q", bad.body, r.status, r.body, bad.want)
		}
	}
	r = u.do(t, "POST", "/api/uploads/share", fmt.Sprintf(`{"address":%q,"submission_id":%d}`, strings.ToLower(shareReader), res.ID))
	var shared []core.UploadItem
	r.json(t, &shared)
	if r.status != 200 || len(shared) != 1 || len(shared[0].Shares) != 1 || shared[0].Shares[0].Address != shareReader || shared[0].Shares[0].Granted {
		t.Fatalf("share = %d %s, want one pending share with the checksummed address", r.status, r.body)
	}
	r = u.do(t, "GET", "/ui/submit/list", "")
	wantAll(t, "list with a share", r.body, `data-testid="submit-share-item" data-address="`+shareReader+`" data-granted="false"`, shareReader+"</code> granted once the upload is done")

	// The last attempt failed: Retry queues it for an attempt now, which fails again.
	if err := u.st.UploadFailed(ctx, ob.ID, "put object: provider refused\nthe payload", time.Now().Add(time.Hour), true); err != nil {
		t.Fatal(err)
	}
	r = u.do(t, "GET", "/ui/submit/list", "")
	wantAll(t, "list of a failed upload", r.body, ">failed<", "state-failed", "2 failed attempts", "put object: provider refused the payload", ">Retry<")
	if strings.Contains(r.body, "next try at") {
		t.Error("a failed upload shows a next try")
	}
	r = u.do(t, "POST", fmt.Sprintf("/api/uploads/%d/retry", res.ID), "")
	var retried core.UploadItem
	r.json(t, &retried)
	if r.status != 200 || retried.State != "queued" {
		t.Fatalf("retry = %d %s", r.status, r.body)
	}
	again := u.upload(t, res.ID, "failed again after the retry", func(it core.UploadItem) bool {
		return it.Attempts == 1 && strings.Contains(it.Error, "connect to Greenfield")
	})
	if again.State != "queued" || !again.NextAttempt.After(it.NextAttempt) {
		t.Errorf("after the retry: %+v, want a new attempt that failed (next attempt after %v)", again, it.NextAttempt)
	}
	for _, bad := range []string{"/api/uploads/999/retry", "/api/uploads/x/retry"} {
		if r := u.do(t, "POST", bad, ""); r.status != http.StatusNotFound {
			t.Errorf("POST %s = %d %s, want 404", bad, r.status, r.body)
		}
	}
	if r := u.do(t, "GET", "/api/uploads/999", ""); r.status != http.StatusNotFound {
		t.Errorf("GET /api/uploads/999 = %d, want 404", r.status)
	}

	// A done upload is shared at once; the network being out of reach is the answer.
	if err := u.st.UploadDone(ctx, ob.ID); err != nil {
		t.Fatal(err)
	}
	r = u.do(t, "POST", "/api/uploads/share", fmt.Sprintf(`{"address":%q,"submission_id":0}`, uploadAddress))
	if r.status != http.StatusBadGateway || !strings.Contains(r.body, "connect to Greenfield") {
		t.Errorf("share of a done upload on a closed port = %d %s, want 502 with the reason", r.status, r.body)
	}
	r = u.do(t, "GET", "/ui/submit/list", "")
	wantAll(t, "list of a done upload", r.body, ">done<", "state-done", "uploaded and sealed at", uploadAddress+"</code> not granted: connect to Greenfield", shareReader+"</code> not granted yet")
	if strings.Contains(r.body, `data-testid="submit-retry"`) || strings.Contains(r.body, `data-testid="submit-upload-error"`) {
		t.Error("a done upload offers Retry or shows its old error")
	}
	if r := u.do(t, "POST", fmt.Sprintf("/api/uploads/%d/retry", res.ID), ""); r.status != 200 || !strings.Contains(r.body, `"state":"done"`) {
		t.Errorf("retry of a done upload = %d %s, want it done as it was", r.status, r.body)
	}
}

// TestSubmitAccountCard renders the account card of an account the chain answered for
// (the balance and the quota come from a real network only in the Greenfield end-to-end
// test).
func TestSubmitAccountCard(t *testing.T) {
	u := newUploadServer(t)
	n := greenfield.Testnet
	for _, tt := range []struct {
		name string
		page submitAccountPage
		want []string
		not  []string
	}{
		{"no bucket yet", submitAccountPage{Account: core.Account{Network: n, EVMChainID: 5600, Address: uploadAddress, Bucket: "gata-f39f",
			Status: &core.GreenfieldStatus{Network: n, Address: uploadAddress, Bucket: "gata-f39f", Balance: "1500000000000000000", BalanceBNB: "1.5"}}},
			[]string{"testnet", "greenfield_5600-1", "chain id 5600", "1.5 BNB", "gata-f39f</code> (made with the first upload)"},
			[]string{"Read quota", "submit-account-problem"}},
		{"bucket and quota", submitAccountPage{Account: core.Account{Network: n, EVMChainID: 5600, Address: uploadAddress, Bucket: "gata-f39f",
			Status: &core.GreenfieldStatus{Network: n, Address: uploadAddress, Bucket: "gata-f39f", BucketMade: true, BalanceBNB: "0.25",
				Quota: &greenfield.Quota{Charged: 0, FreeMonthly: 1 << 30, FreeConsumed: 3 << 20}}},
			FreeUsed: 3 << 20, FreeMonthly: 1 << 30},
			[]string{"0.25 BNB", "3.0 MB of 1.0 GB free this month used; 0 B of 0 B bought used"},
			[]string{"made with the first upload"}},
		{"bad network", submitAccountPage{Account: core.Account{NetworkError: "a custom Greenfield network needs a chain id and an RPC endpoint"}},
			[]string{"The network setting is not usable: a custom Greenfield network needs", `href="#/settings"`},
			[]string{"<dt>Network</dt>"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := u.srv.tmpl.ExecuteTemplate(&b, "submit-account", tt.page); err != nil {
				t.Fatal(err)
			}
			wantAll(t, "account card", b.String(), tt.want...)
			for _, s := range tt.not {
				if strings.Contains(b.String(), s) {
					t.Errorf("account card holds %q:\n%s", s, b.String())
				}
			}
		})
	}
}

// TestUploadsByAnotherProcess: while another process on the data folder holds the
// uploader's lease, this one's uploader waits, and the list says who uploads.
func TestUploadsByAnotherProcess(t *testing.T) {
	u := newUploadServer(t)
	ctx := context.Background()
	if _, ok, err := u.st.TakeLease(ctx, greenfield.LeaseName, "elsewhere pid 7", time.Now(), time.Hour); !ok || err != nil {
		t.Fatalf("take the lease: %v %v", ok, err)
	}
	u.serve()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := u.do(t, "GET", "/ui/submit/list", "")
		if strings.Contains(r.body, `data-testid="submit-elsewhere"`) {
			if !strings.Contains(r.body, "Another gata process (elsewhere pid 7) uploads from this data folder") {
				t.Errorf("the list says %s", r.body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the list never told of the other process: %s", r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := u.st.ReleaseLease(ctx, greenfield.LeaseName, "elsewhere pid 7"); err != nil {
		t.Fatal(err)
	}
}
