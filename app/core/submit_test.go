package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gata-contrib/gata/storage"
	"github.com/gata-contrib/gata/storage/submission"
	"github.com/gata-contrib/gata/storage/wallet/etherstest"
)

// storeBattle keeps a voted two-column battle with the given quality score (no
// quality record when q < 0, no vote when outcome is "").
func storeBattle(t *testing.T, st *storage.Store, id, outcome string, q float64) {
	t.Helper()
	t0 := time.Now().Add(-time.Hour)
	ans := func(text string) storage.ChatAnswer {
		return storage.ChatAnswer{Text: text, Started: t0, FirstToken: t0.Add(time.Second), Finished: t0.Add(2 * time.Second), StopReason: "stop"}
	}
	b := storage.ChatBattle{ID: id, Created: t0, Blind: true, Language: "English", Models: []string{"oa/good", "an/sonnet"},
		Prompts: []string{"What is the capital of France? (" + id + ")"},
		Sides: []storage.ChatSide{
			{Column: "A", Model: "oa/good", Answers: []storage.ChatAnswer{ans("Paris, on the Seine.")}},
			{Column: "B", Model: "an/sonnet", Answers: []storage.ChatAnswer{ans("The capital is Paris.")}},
		}}
	if outcome != "" {
		b.Vote = &storage.ChatVote{Outcome: outcome, At: t0.Add(time.Minute)}
	}
	if q >= 0 {
		b.Quality = &storage.ChatQuality{Score: q, Diversity: 1, Assessed: t0.Add(time.Minute)}
	}
	if err := st.SaveChatBattle(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

// storeRun keeps a DVA run in state with n scored items and one failed one.
func storeRun(t *testing.T, st *storage.Store, state string, n int) int64 {
	t.Helper()
	ctx := context.Background()
	id, err := st.CreateRun(ctx, storage.DVARun{Sources: []string{"/data/set"}, Model: "apple/DFN2B-CLIP-ViT-B-16", ModelSHA256: strings.Repeat("ab", 32)})
	if err != nil {
		t.Fatal(err)
	}
	var rs []storage.DVAResult
	for i := range n {
		rs = append(rs, storage.DVAResult{Source: "set", Key: fmt.Sprintf("%03d", i), Caption: fmt.Sprintf("caption %d <b>&</b>", i),
			Score: 0.1 + float32(i)/100, Width: 224, Height: 224})
	}
	rs = append(rs, storage.DVAResult{Source: "set", Key: "bad", Reason: "decode", Error: "not an image"})
	if err := st.SaveResults(ctx, id, rs); err != nil {
		t.Fatal(err)
	}
	if state != storage.RunRunning {
		if err := st.UpdateRun(ctx, id, state, "", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

func readJSONL(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return readLines(t, b)
}

func TestSubmitChat(t *testing.T) {
	ctx := context.Background()
	c, st, logs := newWalletCore(t)
	if _, err := c.Submit(ctx, SubmitChat, SubmitOptions{}); !errors.Is(err, ErrNoWallet) {
		t.Fatalf("Submit without a wallet = %v, want ErrNoWallet", err)
	}
	if _, err := c.ImportWallet(ctx, WalletImport{Mnemonic: testMnemonic}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Submit(ctx, SubmitChat, SubmitOptions{}); !errors.Is(err, ErrNothingToSubmit) {
		t.Fatalf("Submit with no battles = %v, want ErrNothingToSubmit", err)
	}
	storeBattle(t, st, "b-good", "A", 0.9)
	storeBattle(t, st, "b-tie", "tie", 0.8)
	storeBattle(t, st, "b-junk", "B", 0.1)   // below the quality floor
	storeBattle(t, st, "b-unvoted", "", 0.9) // no vote
	storeBattle(t, st, "b-unassessed", "A", -1)

	res, err := c.Submit(ctx, SubmitChat, SubmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Manifest
	if res.ID == 0 || res.DryRun || res.Items != 2 || m.Records != 2 || m.Kind != SubmitChat || m.Submitter != testAddress ||
		m.Nonce != 1 || m.ChainID != submission.ChainIDMainnet || m.App != "gata/test" {
		t.Fatalf("Submit = %+v", res)
	}
	dir := filepath.Join(c.opts.DataDir, SubmissionsDir)
	if res.JSONLPath != filepath.Join(dir, m.SHA256+".jsonl") || res.ManifestPath != filepath.Join(dir, m.SHA256+".manifest.json") {
		t.Errorf("paths = %s, %s", res.JSONLPath, res.ManifestPath)
	}
	recs := readJSONL(t, res.JSONLPath)
	got := map[string]string{}
	for _, r := range recs {
		got[r["question_id"].(string)] = r["winner"].(string)
		if r["judge"] != testAddress {
			t.Errorf("record judge = %v, want the wallet's address", r["judge"])
		}
	}
	if len(got) != 2 || got["b-good"] != "model_a" || got["b-tie"] != "tie" {
		t.Errorf("records = %v, want b-good (model_a) and b-tie", got)
	}
	mb, _ := os.ReadFile(res.ManifestPath)
	if pm, err := submission.ParseManifest(mb); err != nil || pm != m {
		t.Errorf("the manifest file parses as %+v, %v", pm, err)
	}
	v, err := c.Verify(ctx, res.ManifestPath, "")
	if err != nil || v.Signer != testAddress || v.JSONLPath != res.JSONLPath {
		t.Errorf("Verify = %+v, %v", v, err)
	}
	it, err := st.OutboxBySubmission(ctx, res.ID)
	if err != nil || it.SHA256 != m.SHA256 || it.Object != m.ObjectName() || it.JSONLPath != res.JSONLPath || it.ManifestPath != res.ManifestPath {
		t.Errorf("outbox item of the submission = %+v, %v; want it queued with its files", it, err)
	}
	list, err := c.Submissions(ctx, 0)
	if err != nil || len(list) != 1 || list[0].Manifest != m || list[0].ID != res.ID {
		t.Errorf("Submissions = %+v, %v", list, err)
	}
	evs, _ := c.Events(0)
	var seen bool
	for _, e := range evs {
		seen = seen || e.Type == EventSubmission
	}
	if !seen {
		t.Errorf("no %s event", EventSubmission)
	}

	// Only what is new goes into the next submission.
	if _, err := c.Submit(ctx, SubmitChat, SubmitOptions{}); !errors.Is(err, ErrNothingToSubmit) {
		t.Errorf("Submit again = %v, want ErrNothingToSubmit", err)
	}
	storeBattle(t, st, "b-new", "B", 0.7)
	res2, err := c.Submit(ctx, SubmitChat, SubmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res2.Manifest.Nonce != 2 || res2.Items != 1 {
		t.Errorf("second Submit = %+v, want nonce 2 and one battle", res2)
	}
	if recs := readJSONL(t, res2.JSONLPath); len(recs) != 1 || recs[0]["question_id"] != "b-new" {
		t.Errorf("second submission = %v", recs)
	}
	assertNoSecrets(t, logs.String(), testKeyHex[2:], testMnemonic)
}

func TestSubmitDryRun(t *testing.T) {
	ctx := context.Background()
	c, st, _ := newWalletCore(t)
	if _, err := c.ImportWallet(ctx, WalletImport{PrivateKey: testKeyHex}); err != nil {
		t.Fatal(err)
	}
	storeBattle(t, st, "b1", "A", 0.9)
	out := filepath.Join(t.TempDir(), "out")
	res, err := c.Submit(ctx, SubmitChat, SubmitOptions{DryRun: true, OutDir: out, ChainID: submission.ChainIDTestnet})
	if err != nil {
		t.Fatal(err)
	}
	if !res.DryRun || res.ID != 0 || res.Manifest.ChainID != submission.ChainIDTestnet || filepath.Dir(res.JSONLPath) != out {
		t.Errorf("dry run = %+v", res)
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != 2 {
		t.Errorf("the dry run left %d files in %s, want the JSONL and the manifest", len(entries), out)
	}
	if v, err := c.Verify(ctx, res.ManifestPath, res.JSONLPath); err != nil || v.Signer != testAddress {
		t.Errorf("Verify of the dry run = %+v, %v", v, err)
	}
	if list, _ := c.Submissions(ctx, 0); len(list) != 0 {
		t.Errorf("a dry run was recorded: %+v", list)
	}
	if items, _ := st.Outbox(ctx); len(items) != 0 {
		t.Errorf("a dry run was queued for upload: %+v", items)
	}
	if _, err := os.Stat(filepath.Join(c.opts.DataDir, SubmissionsDir, res.Manifest.JSONLName())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a dry run wrote into the data folder")
	}
	// The battle is still to submit; the dry run's nonce is used up.
	real, err := c.Submit(ctx, SubmitChat, SubmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if real.Items != 1 || real.Manifest.Nonce != res.Manifest.Nonce+1 {
		t.Errorf("real Submit after a dry run = %+v", real)
	}
}

func TestSubmitDVA(t *testing.T) {
	ctx := context.Background()
	c, st, _ := newWalletCore(t)
	if _, err := c.ImportWallet(ctx, WalletImport{PrivateKey: testKeyHex}); err != nil {
		t.Fatal(err)
	}
	done1 := storeRun(t, st, storage.RunDone, 3)
	storeRun(t, st, storage.RunRunning, 2) // not finished
	storeRun(t, st, storage.RunFailed, 2)
	done2 := storeRun(t, st, storage.RunDone, 2)
	storeRun(t, st, storage.RunDone, 0) // nothing scored
	res, err := c.Submit(ctx, SubmitDVA, SubmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Items != 2 || res.Manifest.Records != 5 || res.Manifest.Kind != SubmitDVA {
		t.Fatalf("Submit(dva) = %+v, want 5 records of 2 runs", res)
	}
	recs := readJSONL(t, res.JSONLPath)
	if recs[0]["run"] != float64(done1) || recs[3]["run"] != float64(done2) {
		t.Errorf("records out of run order: %v", recs)
	}
	if recs[0]["score"] != 0.1 || recs[1]["score"] != 0.11 || recs[0]["caption"] != "caption 0 <b>&</b>" || recs[0]["model"] != "apple/DFN2B-CLIP-ViT-B-16" {
		t.Errorf("first records = %v", recs[:2])
	}
	for _, r := range recs {
		if r["key"] == "bad" {
			t.Errorf("a failed item was submitted: %v", r)
		}
	}
	raw, _ := os.ReadFile(res.JSONLPath)
	if !bytes.Contains(raw, []byte(`"score":0.1,`)) {
		t.Errorf("scores are not written in their shortest form: %s", raw[:200])
	}
	if _, err := c.Submit(ctx, SubmitDVA, SubmitOptions{}); !errors.Is(err, ErrNothingToSubmit) {
		t.Errorf("Submit(dva) again = %v, want ErrNothingToSubmit", err)
	}
}

func TestSubmitBadRequests(t *testing.T) {
	ctx := context.Background()
	c, _, _ := newWalletCore(t)
	for _, tt := range []struct {
		kind string
		opts SubmitOptions
	}{
		{"votes", SubmitOptions{}},
		{SubmitChat, SubmitOptions{DryRun: true}},
		{SubmitChat, SubmitOptions{OutDir: t.TempDir()}},
	} {
		if _, err := c.Submit(ctx, tt.kind, tt.opts); !errors.Is(err, ErrBadSubmit) {
			t.Errorf("Submit(%q, %+v) = %v, want ErrBadSubmit", tt.kind, tt.opts, err)
		}
	}
}

func TestVerifyTampered(t *testing.T) {
	ctx := context.Background()
	c, st, _ := newWalletCore(t)
	if _, err := c.ImportWallet(ctx, WalletImport{PrivateKey: testKeyHex}); err != nil {
		t.Fatal(err)
	}
	storeBattle(t, st, "b1", "A", 0.9)
	storeBattle(t, st, "b2", "B", 0.9)
	res, err := c.Submit(ctx, SubmitChat, SubmitOptions{DryRun: true, OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	jsonl, _ := os.ReadFile(res.JSONLPath)
	manifest, _ := os.ReadFile(res.ManifestPath)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	goodM, goodJ := write("good.manifest.json", manifest), write("good.jsonl", jsonl)
	if v, err := c.Verify(ctx, goodM, goodJ); err != nil || v.Signer != testAddress {
		t.Fatalf("Verify of the copies = %+v, %v", v, err)
	}
	// without a JSONL path: good.manifest.json finds good.jsonl beside it
	if v, err := c.Verify(ctx, goodM, ""); err != nil || v.JSONLPath != goodJ {
		t.Errorf("Verify(manifest, \"\") = %+v, %v", v, err)
	}
	nonce := []byte(fmt.Sprintf(`"nonce": %d`, res.Manifest.Nonce))
	tests := []struct {
		name           string
		manifest, file []byte
		want           string
	}{
		{"tampered file", manifest, bytes.Replace(jsonl, []byte("model_a"), []byte("model_b"), 1), "content hash mismatch"},
		{"line dropped", manifest, jsonl[:bytes.IndexByte(jsonl, '\n')+1], "content hash mismatch"},
		{"nonce changed", bytes.Replace(manifest, nonce, []byte(`"nonce": 99`), 1), jsonl, "wrong signer"},
		{"submitter changed", bytes.Replace(manifest, []byte(testAddress), []byte("0x9858EfFD232B4033E47d90003D41EC34EcaEda94"), 1), jsonl, "wrong signer"},
		{"signature damaged", bytes.Replace(manifest, []byte(res.Manifest.Signature[len(res.Manifest.Signature)-2:]+`"`), []byte(`1d"`), 1), jsonl, "bad signature"},
		{"not a manifest", []byte(`{"schema":"other"}`), jsonl, "bad manifest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, j := write("t.manifest.json", tt.manifest), write("t.jsonl", tt.file)
			_, err := c.Verify(ctx, m, j)
			if !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Verify = %v, want ErrVerify with %q", err, tt.want)
			}
		})
	}
	if _, err := c.Verify(ctx, filepath.Join(dir, "missing.manifest.json"), ""); err == nil || errors.Is(err, ErrVerify) {
		t.Errorf("Verify of a missing manifest = %v, want a plain error", err)
	}
}

// ethers' verifyTypedData, given the manifest's typed data, recovers the submitter.
func TestSubmitVerifiesWithEthers(t *testing.T) {
	ctx := context.Background()
	c, st, _ := newWalletCore(t)
	if _, err := c.ImportWallet(ctx, WalletImport{PrivateKey: testKeyHex}); err != nil {
		t.Fatal(err)
	}
	storeBattle(t, st, "b1", "A", 0.9)
	res, err := c.Submit(ctx, SubmitChat, SubmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	td := res.Manifest.TypedData()
	var got struct {
		Recovered string `json:"recovered"`
	}
	etherstest.Run(t, `
const types = { ...input.td.types };
delete types.EIP712Domain;
out({ recovered: ethers.verifyTypedData(input.td.domain, types, input.td.message, input.sig) });
`, map[string]any{"td": td, "sig": res.Manifest.Signature}, &got)
	if got.Recovered != testAddress {
		t.Errorf("ethers recovered %s, want %s", got.Recovered, testAddress)
	}
}
