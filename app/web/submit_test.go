package web

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/storage"
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
