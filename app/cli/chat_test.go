package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/chat/chattest"
	"github.com/gata-contrib/gata/storage"
)

const testOAKey = "sk-cli-test-openai-42"

// chatCLI runs commands in-process against a data folder of its own, the way the app
// opens it for one command: a fresh core on the SQLite file each time.
type chatCLI struct {
	t   *testing.T
	dir string
	oa  *chattest.Server
	an  *chattest.Server
}

func newChatCLI(t *testing.T) *chatCLI {
	t.Helper()
	h := &chatCLI{t: t, dir: t.TempDir()}
	h.oa = chattest.NewOpenAI(t, chattest.Options{APIKey: testOAKey, Models: map[string]chattest.Behavior{
		"good":   {Reply: "Paris is the capital of France."},
		"broken": {Reply: "Paris is the capital", CutAfter: 2},
	}})
	h.an = chattest.NewAnthropic(t, chattest.Options{Models: map[string]chattest.Behavior{
		"sonnet-x": {Reply: "The capital of France is Paris."},
	}})
	t.Setenv("GATA_CLI_TEST_KEY", testOAKey)
	return h
}

func (h *chatCLI) openCore(ctx context.Context, g Global) (*core.Core, func() error, error) {
	st, err := storage.Open(ctx, filepath.Join(h.dir, storage.DBName))
	if err != nil {
		return nil, nil, err
	}
	c, err := core.New(core.Options{Version: "test", DataDir: h.dir, Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return c, func() error { c.Close(); return st.Close() }, nil
}

// run runs one command line and returns its exit status, stdout and stderr.
func (h *chatCLI) run(args ...string) (int, string, string) {
	h.t.Helper()
	r := newRecorder()
	r.env.OpenCore = h.openCore
	code := Run(context.Background(), &r.env, args)
	return code, r.stdout.String(), r.stderr.String()
}

func (h *chatCLI) ok(args ...string) string {
	h.t.Helper()
	code, out, errOut := h.run(args...)
	if code != 0 {
		h.t.Fatalf("gata %s exited %d: %s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func (h *chatCLI) addProviders() {
	h.t.Helper()
	h.ok("chat", "providers", "add", "--name", "oa", "--kind", "openai", "--base-url", h.oa.URL, "--api-key-env", "GATA_CLI_TEST_KEY", "--model", "pinned")
	h.ok("chat", "providers", "add", "--name", "an", "--kind", "anthropic", "--base-url", h.an.URL)
}

func TestChatUsage(t *testing.T) {
	h := newChatCLI(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no subcommand", []string{"chat"}, "chat: missing subcommand"},
		{"unknown subcommand", []string{"chat", "frob"}, `unknown subcommand "frob"`},
		{"providers no subcommand", []string{"chat", "providers"}, "missing subcommand (add, set-key, list, remove)"},
		{"add without name", []string{"chat", "providers", "add", "--kind", "openai", "--base-url", "http://127.0.0.1:1"}, "--name is required"},
		{"add without kind", []string{"chat", "providers", "add", "--name", "x", "--base-url", "http://127.0.0.1:1"}, "--kind is required"},
		{"add without url", []string{"chat", "providers", "add", "--name", "x", "--kind", "openai"}, "--base-url is required"},
		{"add bad kind", []string{"chat", "providers", "add", "--name", "x", "--kind", "gemini", "--base-url", "http://127.0.0.1:1"}, `not "gemini"`},
		{"add bad url", []string{"chat", "providers", "add", "--name", "x", "--kind", "openai", "--base-url", "localhost"}, "not an http:// or https:// URL"},
		{"remove without name", []string{"chat", "providers", "remove"}, "name one provider"},
		{"ask one model", []string{"chat", "ask", "--models", "oa/good", "hi"}, "--models wants 2 to 4 model ids, got 1"},
		{"ask five models", []string{"chat", "ask", "--models", "a/1,a/2,a/3,a/4,a/5", "hi"}, "got 5"},
		{"ask no prompt", []string{"chat", "ask", "--models", "oa/good,an/sonnet-x"}, "the PROMPT is missing"},
		{"ask vote c of two", []string{"chat", "ask", "--models", "oa/good,an/sonnet-x", "--vote", "c", "hi"}, `--vote "c" is not one of a, b, tie, bad`},
		{"ask reason alone", []string{"chat", "ask", "--models", "oa/good,an/sonnet-x", "--reason", "x", "hi"}, "--reason goes with --vote"},
		{"ask bad model id", []string{"chat", "ask", "--models", "good,an/sonnet-x", "hi"}, `parse model id "good"`},
		{"export no format", []string{"chat", "export"}, "--format must be arena or dpo"},
		{"export bad flag", []string{"chat", "export", "--format", "dpo", "--bogus"}, "flag provided but not defined: -bogus"},
		{"leaderboard stray", []string{"chat", "leaderboard", "x"}, `unexpected argument "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := h.run(tt.args...)
			if code != 2 || !strings.Contains(errOut, tt.want) || strings.Count(errOut, "\n") != 1 {
				t.Errorf("gata %q = %d, stderr %q; want 2 and one line with %q", tt.args, code, errOut, tt.want)
			}
		})
	}
	for _, args := range [][]string{{"chat", "--help"}, {"chat", "ask", "-h"}, {"chat", "providers", "add", "-h"}, {"chat", "export", "-h"}, {"help", "chat"}} {
		code, out, _ := h.run(args...)
		if code != 0 || !strings.Contains(out, "usage") {
			t.Errorf("gata %q = %d, stdout %q; want help", args, code, out)
		}
	}
	if _, out, _ := h.run("help"); !strings.Contains(out, "chat") {
		t.Errorf("gata help does not list chat: %q", out)
	}
}

func TestChatProvidersCommands(t *testing.T) {
	h := newChatCLI(t)
	if out := h.ok("chat", "providers", "list"); !strings.Contains(out, "no providers") {
		t.Errorf("providers list with none = %q", out)
	}
	h.addProviders()
	if code, _, errOut := h.run("chat", "providers", "add", "--name", "oa", "--kind", "openai", "--base-url", h.oa.URL); code != 1 || !strings.Contains(errOut, "exists") {
		t.Errorf("adding oa twice = %d, %q; want 1 and 'exists'", code, errOut)
	}
	out := h.ok("chat", "providers", "list")
	for _, want := range []string{"an ", "anthropic", "oa ", "key from $GATA_CLI_TEST_KEY", "models: pinned"} {
		if !strings.Contains(out, want) {
			t.Errorf("providers list = %q, want %q", out, want)
		}
	}
	if strings.Contains(out, testOAKey) {
		t.Errorf("providers list prints the key: %q", out)
	}
	out = h.ok("chat", "models")
	for _, want := range []string{"oa/good\n", "oa/broken\n", "oa/pinned\n", "an/sonnet-x\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("chat models = %q, want %q", out, want)
		}
	}
	h.ok("chat", "providers", "remove", "an")
	if code, _, errOut := h.run("chat", "providers", "remove", "an"); code != 1 || !strings.Contains(errOut, "no such provider") {
		t.Errorf("removing an twice = %d, %q", code, errOut)
	}
	if out := h.ok("chat", "models"); strings.Contains(out, "an/") {
		t.Errorf("chat models after remove = %q", out)
	}
}

var statsRE = regexp.MustCompile(`\[\d+ ms to first token · \d+ tokens · [\d.]+ tokens/s\]`)

func TestChatAskVoteExport(t *testing.T) {
	h := newChatCLI(t)
	h.addProviders()
	// Blind, no vote: three labelled blocks in column order, no names; the broken one fails.
	out := h.ok("chat", "ask", "--models", "oa/good,oa/broken,an/sonnet-x", "What", "is the capital of France?")
	iA, iB, iC := strings.Index(out, "── Model A ──\n"), strings.Index(out, "── Model B ──\n"), strings.Index(out, "── Model C ──\n")
	if iA < 0 || iB < iA || iC < iB {
		t.Fatalf("ask output = %q, want blocks Model A, B, C in order", out)
	}
	for _, name := range []string{"oa/good", "oa/broken", "an/sonnet-x", "broken"} {
		if strings.Contains(out, name) {
			t.Errorf("blind ask output names %q: %q", name, out)
		}
	}
	for _, want := range []string{"Paris is the capital of France.\n", "The capital of France is Paris.\n", "[failed: ", "battle "} {
		if !strings.Contains(out, want) {
			t.Errorf("ask output = %q, want %q", out, want)
		}
	}
	if n := len(statsRE.FindAllString(out, -1)); n != 2 {
		t.Errorf("ask output has %d stats lines, want 2: %q", n, out)
	}

	// With the quality floor at 0, every vote counts on the leaderboard and in exports.
	c, closeCore, err := h.openCore(context.Background(), Global{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateSettings(context.Background(), map[string]string{core.SettingChatQualityMin: "0"}); err != nil {
		t.Fatal(err)
	}
	closeCore()

	// Named, with a vote: the names in the labels, the vote and its quality printed.
	out = h.ok("chat", "ask", "--models", "oa/good,an/sonnet-x", "--named", "--vote", "a", "--reason", "shorter", "Which city is the capital of France?")
	for _, want := range []string{"── Model A (oa/good) ──\n", "── Model B (an/sonnet-x) ──\n", "vote: Model A is best\n",
		"  Model A was oa/good\n", "  Model B was an/sonnet-x\n", "quality: ", "fast_vote: voted"} {
		if !strings.Contains(out, want) {
			t.Errorf("ask --vote output = %q, want %q", out, want)
		}
	}
	// Blind with a vote: the names only after it.
	out = h.ok("chat", "ask", "--models", "oa/good,an/sonnet-x", "--vote", "tie", "Tell me about the Seine river in Paris.")
	vote := strings.Index(out, "vote: a tie")
	if vote < 0 || strings.Index(out, "oa/good") < vote || strings.Index(out, "an/sonnet-x") < vote {
		t.Errorf("blind ask --vote output = %q, want the names after the vote only", out)
	}

	out = h.ok("chat", "leaderboard")
	if !strings.Contains(out, "2 voted battles counted") || !strings.Contains(out, "oa/good") || !strings.Contains(out, "1/1/0") {
		t.Errorf("leaderboard = %q, want oa/good with a win and a tie", out)
	}

	// Exports: arena to stdout, dpo to a file, both JSON lines.
	code, arena, errOut := h.run("chat", "export", "--format", "arena")
	if code != 0 || !strings.Contains(errOut, "wrote 2 arena records") {
		t.Fatalf("export arena = %d, stderr %q", code, errOut)
	}
	winners := map[string]bool{}
	for _, r := range jsonLines(t, strings.NewReader(arena)) {
		winners[r["winner"].(string)] = true
		if r["model_a"] == nil || r["conversation_a"] == nil {
			t.Errorf("arena record %v lacks fields", r)
		}
	}
	if !winners["model_a"] || !winners["tie"] {
		t.Errorf("arena winners = %v, want model_a and tie", winners)
	}
	file := filepath.Join(t.TempDir(), "dpo.jsonl")
	if out := h.ok("chat", "export", "--format", "dpo", "--out", file); !strings.Contains(out, "wrote 1 dpo records to "+file) {
		t.Errorf("export dpo = %q", out)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dpo := jsonLines(t, f)
	if len(dpo) != 1 || dpo[0]["chosen_model"] != "oa/good" || dpo[0]["rejected_model"] != "an/sonnet-x" {
		t.Errorf("dpo records = %v, want oa/good over an/sonnet-x", dpo)
	}
}

func jsonLines(t *testing.T, r io.Reader) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestChatExportLowQualityExcluded(t *testing.T) {
	h := newChatCLI(t)
	h.addProviders()
	// Voted at once after the answers: too fast to have read them, so below the floor.
	out := h.ok("chat", "ask", "--models", "oa/good,an/sonnet-x", "--vote", "b", "What is the capital of France?")
	if !strings.Contains(out, "kept here, left out of exports") {
		t.Errorf("ask output = %q, want the battle below the floor", out)
	}
	if code, arena, errOut := h.run("chat", "export", "--format", "arena"); code != 0 || arena != "" || !strings.Contains(errOut, "wrote 0 arena records") {
		t.Errorf("export arena = %d, %q, %q; want nothing", code, arena, errOut)
	}
	if code, arena, _ := h.run("chat", "export", "--format", "arena", "--all"); code != 0 || len(jsonLines(t, strings.NewReader(arena))) != 1 {
		t.Errorf("export arena --all = %d, %q; want one record", code, arena)
	}
	if out := h.ok("chat", "leaderboard"); !strings.Contains(out, "0 voted battles counted, 1 left out for quality below 0.5") {
		t.Errorf("leaderboard = %q", out)
	}
}
