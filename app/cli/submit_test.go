package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/storage"
)

// storeVotedBattle keeps a voted two-column battle of quality q in the data folder, as
// `gata chat ask --vote` would have.
func (h *walletCLI) storeVotedBattle(id string, q float64) {
	h.t.Helper()
	ctx := context.Background()
	st, err := storage.Open(ctx, filepath.Join(h.dir, storage.DBName))
	if err != nil {
		h.t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Now().Add(-time.Hour)
	ans := func(text string) storage.ChatAnswer {
		return storage.ChatAnswer{Text: text, Started: t0, FirstToken: t0.Add(time.Second), Finished: t0.Add(2 * time.Second)}
	}
	err = st.SaveChatBattle(ctx, storage.ChatBattle{ID: id, Created: t0, Blind: true, Models: []string{"oa/a", "oa/b"},
		Prompts: []string{"Why is the sky blue? " + id},
		Sides: []storage.ChatSide{
			{Column: "A", Model: "oa/a", Answers: []storage.ChatAnswer{ans("Rayleigh scattering.")}},
			{Column: "B", Model: "oa/b", Answers: []storage.ChatAnswer{ans("Because of the sea.")}},
		},
		Vote:    &storage.ChatVote{Outcome: "A", At: t0.Add(time.Minute)},
		Quality: &storage.ChatQuality{Score: q, Diversity: 1, Assessed: t0.Add(time.Minute)}})
	if err != nil {
		h.t.Fatal(err)
	}
}

func TestSubmitUsage(t *testing.T) {
	h := newWalletCLI(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no kind", []string{"submit"}, "missing kind (chat, dva)"},
		{"unknown kind", []string{"submit", "votes"}, `unknown kind "votes"`},
		{"dry run without out", []string{"submit", "chat", "--dry-run"}, "--dry-run needs --out DIR"},
		{"out without dry run", []string{"submit", "dva", "--out", "x"}, "--out goes with --dry-run"},
		{"stray", []string{"submit", "chat", "x"}, `unexpected argument "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := h.run(tt.args...)
			if code != 2 || !strings.Contains(errOut, tt.want) || strings.Count(errOut, "\n") != 1 {
				t.Errorf("gata %q = %d, stderr %q; want 2 and one line with %q", tt.args, code, errOut, tt.want)
			}
		})
	}
	for _, args := range [][]string{{"submit", "--help"}, {"submit", "chat", "-h"}, {"help", "submit"}} {
		if code, out, _ := h.run(args...); code != 0 || !strings.Contains(out, "usage") {
			t.Errorf("gata %q = %d, %q; want help", args, code, out)
		}
	}
}

func TestSubmitChatCommand(t *testing.T) {
	h := newWalletCLI(t)
	if code, _, errOut := h.run("submit", "chat"); code != 1 || !strings.Contains(errOut, "no wallet yet") {
		t.Errorf("submit without a wallet = %d, %q", code, errOut)
	}
	h.vars["KEY"] = cliTestKey
	h.ok("wallet", "import", "--private-key-env", "KEY")
	if out := h.ok("submit", "chat"); !strings.Contains(out, "nothing new to submit") {
		t.Errorf("submit with nothing = %q", out)
	}
	h.storeVotedBattle("b1", 0.9)
	h.storeVotedBattle("b2", 0.05) // below the quality floor

	out := filepath.Join(t.TempDir(), "dry")
	dry := h.ok("submit", "chat", "--dry-run", "--out", out)
	if !strings.Contains(dry, "1 records from 1 battles") || !strings.Contains(dry, "dry run: nothing recorded or uploaded") || !strings.Contains(dry, "signed by "+cliTestAddress) {
		t.Errorf("submit --dry-run = %q", dry)
	}
	files, _ := filepath.Glob(filepath.Join(out, "*.manifest.json"))
	if len(files) != 1 {
		t.Fatalf("dry run wrote manifests %v", files)
	}
	if v := h.ok("verify", files[0]); !strings.Contains(v, "ok: signed by "+cliTestAddress) {
		t.Errorf("verify of the dry run = %q", v)
	}

	var res core.SubmitResult
	if err := json.Unmarshal([]byte(h.ok("submit", "chat", "--json")), &res); err != nil {
		t.Fatal(err)
	}
	if res.ID == 0 || res.Manifest.Records != 1 || res.Manifest.Nonce != 2 || res.Manifest.Submitter != cliTestAddress ||
		filepath.Dir(res.JSONLPath) != filepath.Join(h.dir, core.SubmissionsDir) {
		t.Errorf("submit --json = %+v", res)
	}
	if _, err := os.Stat(res.ManifestPath); err != nil {
		t.Errorf("no manifest file: %v", err)
	}
	if out := h.ok("submit", "chat"); !strings.Contains(out, "nothing new to submit") {
		t.Errorf("submit again = %q", out)
	}
	var nothing map[string]any
	if err := json.Unmarshal([]byte(h.ok("submit", "chat", "--json")), &nothing); err != nil || nothing["nothing"] != true {
		t.Errorf("submit --json with nothing = %v, %v", nothing, err)
	}
}
