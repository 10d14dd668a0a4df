package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/chat/chattest"
)

const chatFakeKey = "sk-test-chat"

// newChatServer serves a fresh core and starts an OpenAI-compatible fake with three
// models; the provider is not added yet.
func newChatServer(t *testing.T) (*chattest.Server, string) {
	t.Helper()
	fake := chattest.NewOpenAI(t, chattest.Options{APIKey: chatFakeKey, Models: map[string]chattest.Behavior{
		"alpha": {Reply: "Paris is the capital of France, on the Seine."},
		"beta":  {Reply: "The capital is Paris; Lyon is the second city."},
		"gamma": {Reply: "France's capital city is Paris."},
	}})
	t.Setenv("GATA_WEB_TEST_CHAT_KEY", chatFakeKey)
	_, ts, _ := newTestServer(t, Options{})
	return fake, ts.URL
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestChatBattleFlow(t *testing.T) {
	fake, url := newChatServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := openStream(t, ctx, url+"/api/events", nil)

	r := call(t, "POST", url+"/api/chat/providers", mustJSON(t, core.ProviderInput{
		Name: "fake", Kind: "openai", BaseURL: fake.URL, APIKeyEnv: "GATA_WEB_TEST_CHAT_KEY",
	}), withKey(nil))
	if r.status != http.StatusCreated {
		t.Fatalf("add provider = %d %s", r.status, r.body)
	}
	var provs []core.ProviderInfo
	call(t, "GET", url+"/api/chat/providers", "", withKey(nil)).json(t, &provs)
	if len(provs) != 1 || provs[0].Name != "fake" || !provs[0].HasKey {
		t.Fatalf("providers = %+v", provs)
	}
	var models []core.ProviderModels
	call(t, "GET", url+"/api/chat/models", "", withKey(nil)).json(t, &models)
	if len(models) != 1 || len(models[0].Models) != 3 {
		t.Fatalf("models = %+v", models)
	}
	if r := call(t, "GET", url+"/ui/chat/models", "", withKey(nil)); r.status != 200 || !strings.Contains(r.body, `value="fake/beta"`) {
		t.Errorf("model picker = %d %s", r.status, r.body)
	}

	picked := []string{"fake/alpha", "fake/beta", "fake/gamma"}
	r = call(t, "POST", url+"/api/chat/battles", mustJSON(t, core.BattleInput{Models: picked, Prompt: "What is the capital of France?", Blind: true}), withKey(nil))
	if r.status != http.StatusAccepted {
		t.Fatalf("start battle = %d %s", r.status, r.body)
	}
	var b core.BattleInfo
	r.json(t, &b)
	if len(b.Columns) != 3 || len(b.Models) != 0 {
		t.Fatalf("started battle = %+v, want 3 columns and no names", b)
	}

	// The stream carries the answers column by column and ends with "end".
	text := map[string]string{}
	deadline := time.After(30 * time.Second)
	for ended := false; !ended; {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatal("event stream ended")
			}
			if e.event != core.EventChat {
				continue
			}
			var ce core.ChatEvent
			if err := json.Unmarshal([]byte(e.data), &ce); err != nil {
				t.Fatal(err)
			}
			if ce.Battle != b.ID {
				continue
			}
			if ce.Model != "" || len(ce.Models) != 0 {
				t.Errorf("blind battle event names a model: %s", e.data)
			}
			switch ce.Kind {
			case core.ChatDelta:
				text[ce.Column] += ce.Text
			case core.ChatError:
				t.Errorf("column %s failed: %s", ce.Column, ce.Error)
			case core.ChatEnd:
				ended = true
			}
		case <-deadline:
			t.Fatal("no end event")
		}
	}
	if len(text) != 3 {
		t.Errorf("streamed text of %d columns, want 3: %v", len(text), text)
	}

	r = call(t, "GET", url+"/api/chat/battles/"+b.ID, "", withKey(nil))
	r.json(t, &b)
	if b.Running || b.Revealed || len(b.Models) != 0 {
		t.Fatalf("ended blind battle = %+v, want not running and no names", b)
	}
	for _, c := range b.Columns {
		if c.Model != "" || len(c.Answers) != 1 || c.Answers[0].Text != text[c.Column] || !c.Answers[0].Done {
			t.Errorf("column %+v, streamed %q", c, text[c.Column])
		}
	}
	ui := call(t, "GET", url+"/ui/chat/battles/"+b.ID, "", withKey(nil))
	if ui.status != 200 || strings.Contains(ui.body, "fake/") || !strings.Contains(ui.body, "Model C") ||
		!strings.Contains(ui.body, `data-testid="chat-vote-A"`) || strings.Contains(ui.body, `data-testid="chat-vote-A" disabled`) {
		t.Errorf("battle partial before the vote = %d %s", ui.status, ui.body)
	}

	r = call(t, "POST", url+"/api/chat/battles/"+b.ID+"/vote", `{"outcome":"B","reason":"names the river"}`, withKey(nil))
	if r.status != 200 {
		t.Fatalf("vote = %d %s", r.status, r.body)
	}
	r.json(t, &b)
	if !b.Revealed || len(b.Models) != 3 || b.Vote == nil || b.Quality == nil {
		t.Fatalf("voted battle = %+v, want names, vote and quality", b)
	}
	ui = call(t, "GET", url+"/ui/chat/battles/"+b.ID, "", withKey(nil))
	if !strings.Contains(ui.body, "fake/alpha") || !strings.Contains(ui.body, `data-testid="chat-quality"`) {
		t.Errorf("battle partial after the vote = %s", ui.body)
	}
	if r := call(t, "POST", url+"/api/chat/battles/"+b.ID+"/vote", `{"outcome":"A"}`, withKey(nil)); r.status != http.StatusConflict {
		t.Errorf("second vote = %d %s, want 409", r.status, r.body)
	}

	// A vote this fast scores low, so the export asks for low-quality battles too.
	r = call(t, "GET", url+"/api/chat/export?format=dpo&include_low=true", "", withKey(nil))
	if r.status != 200 || !strings.Contains(r.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("export = %d %v %s", r.status, r.header, r.body)
	}
	lines := strings.Split(strings.TrimSpace(r.body), "\n")
	if len(lines) != 2 { // B beat A and C
		t.Fatalf("dpo export has %d lines, want 2: %s", len(lines), r.body)
	}
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("dpo line %q: %v", l, err)
		}
		if _, ok := rec["chosen"]; !ok {
			t.Errorf("dpo line %q has no chosen", l)
		}
	}
	if r := call(t, "GET", url+"/api/chat/export?format=arena&include_low=true", "", withKey(nil)); r.status != 200 || strings.Count(strings.TrimSpace(r.body), "\n") != 2 {
		t.Errorf("arena export = %d %s, want 3 lines", r.status, r.body)
	}
	var lb core.Leaderboard
	if r := call(t, "GET", url+"/api/chat/leaderboard", "", withKey(nil)); r.status != 200 {
		t.Errorf("leaderboard = %d %s", r.status, r.body)
	} else {
		r.json(t, &lb)
	}
	if r := call(t, "GET", url+"/ui/chat/leaderboard", "", withKey(nil)); r.status != 200 || !strings.Contains(r.body, "voted battles counted") {
		t.Errorf("leaderboard partial = %d %s", r.status, r.body)
	}
	var list []core.BattleInfo
	call(t, "GET", url+"/api/chat/battles", "", withKey(nil)).json(t, &list)
	if len(list) != 1 || list[0].ID != b.ID {
		t.Errorf("battles = %+v", list)
	}

	if r := call(t, "DELETE", url+"/api/chat/providers/fake", "", withKey(nil)); r.status != http.StatusNoContent {
		t.Errorf("remove provider = %d %s", r.status, r.body)
	}
	if r := call(t, "GET", url+"/ui/chat/providers", "", withKey(nil)); !strings.Contains(r.body, "No providers yet") {
		t.Errorf("providers partial after removal = %s", r.body)
	}
}

func TestChatErrors(t *testing.T) {
	fake, url := newChatServer(t)
	if r := call(t, "POST", url+"/api/chat/providers", mustJSON(t, core.ProviderInput{Name: "fake", Kind: "openai", BaseURL: fake.URL, APIKeyEnv: "GATA_WEB_TEST_CHAT_KEY"}), withKey(nil)); r.status != 201 {
		t.Fatalf("add provider = %d %s", r.status, r.body)
	}
	tests := []struct {
		method, path, body string
		want               int
	}{
		{"POST", "/api/chat/providers", `{"name":"bad name","kind":"openai","base_url":"http://127.0.0.1:1/v1"}`, 400},
		{"POST", "/api/chat/providers", `not json`, 400},
		{"POST", "/api/chat/providers", mustJSON(t, core.ProviderInput{Name: "fake", Kind: "openai", BaseURL: fake.URL}), 409},
		{"DELETE", "/api/chat/providers/nope", "", 404},
		{"POST", "/api/chat/battles", `{"models":["fake/alpha"],"prompt":"hi","blind":true}`, 400},
		{"POST", "/api/chat/battles", `{"models":["fake/alpha","fake/beta"],"prompt":"  ","blind":true}`, 400},
		{"GET", "/api/chat/battles/nope", "", 404},
		{"GET", "/ui/chat/battles/nope", "", 404},
		{"POST", "/api/chat/battles/nope/vote", `{"outcome":"A"}`, 404},
		{"POST", "/api/chat/battles/nope/continue", `{"prompt":"more"}`, 404},
		{"POST", "/api/chat/battles/nope/regenerate", `{"column":"A"}`, 404},
		{"POST", "/api/chat/battles/nope/stop", "", 404},
		{"GET", "/api/chat/battles?limit=x", "", 400},
		{"GET", "/api/chat/export?format=csv", "", 400},
		{"GET", "/api/chat/export?format=dpo&include_low=maybe", "", 400},
	}
	for _, tt := range tests {
		r := call(t, tt.method, url+tt.path, tt.body, withKey(nil))
		if r.status != tt.want {
			t.Errorf("%s %s %s = %d %s, want %d", tt.method, tt.path, tt.body, r.status, r.body, tt.want)
			continue
		}
		var e apiError
		r.json(t, &e)
		if e.Error == "" {
			t.Errorf("%s %s: error body %q has no message", tt.method, tt.path, r.body)
		}
	}

	// A bad vote on a real battle is 400.
	r := call(t, "POST", url+"/api/chat/battles", `{"models":["fake/alpha","fake/beta"],"prompt":"hi","blind":true}`, withKey(nil))
	var b core.BattleInfo
	r.json(t, &b)
	waitChatBattle(t, url, b.ID)
	if r := call(t, "POST", url+"/api/chat/battles/"+b.ID+"/vote", `{"outcome":"Z"}`, withKey(nil)); r.status != 400 {
		t.Errorf("vote Z = %d %s, want 400", r.status, r.body)
	}
	if r := call(t, "POST", url+"/api/chat/battles/"+b.ID+"/regenerate", `{"column":"Q"}`, withKey(nil)); r.status != 400 {
		t.Errorf("regenerate Q = %d %s, want 400", r.status, r.body)
	}
	// A follow-up runs a second turn.
	if r := call(t, "POST", url+"/api/chat/battles/"+b.ID+"/continue", `{"prompt":"And of Italy?"}`, withKey(nil)); r.status != 202 {
		t.Fatalf("continue = %d %s", r.status, r.body)
	}
	b = waitChatBattle(t, url, b.ID)
	if len(b.Prompts) != 2 || len(b.Columns[0].Answers) != 2 {
		t.Errorf("after a follow-up: %+v", b)
	}
	if r := call(t, "POST", url+"/api/chat/battles/"+b.ID+"/regenerate", `{"column":"a"}`, withKey(nil)); r.status != 202 {
		t.Fatalf("regenerate = %d %s", r.status, r.body)
	}
	waitChatBattle(t, url, b.ID)
}

// waitChatBattle polls a battle until it stops running.
func waitChatBattle(t *testing.T, url, id string) core.BattleInfo {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var b core.BattleInfo
		r := call(t, "GET", url+"/api/chat/battles/"+id, "", withKey(nil))
		if r.status != 200 {
			t.Fatalf("battle %s = %d %s", id, r.status, r.body)
		}
		r.json(t, &b)
		if !b.Running {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("battle %s still running", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestChatNeedsCSRF(t *testing.T) {
	_, url := newChatServer(t)
	r := call(t, "POST", url+"/api/session", "", withKey(nil))
	cookie := sessionCookie(t, r).String()
	for _, p := range []string{"POST /api/chat/providers", "DELETE /api/chat/providers/x", "POST /api/chat/battles", "POST /api/chat/battles/x/vote", "POST /api/chat/battles/x/stop"} {
		method, path, _ := strings.Cut(p, " ")
		if r := call(t, method, url+path, "{}", map[string]string{"Cookie": cookie}); r.status != http.StatusForbidden {
			t.Errorf("%s without CSRF = %d %s, want 403", p, r.status, r.body)
		}
	}
	// Reading and the download need only the session.
	if r := call(t, "GET", url+"/api/chat/export?format=arena", "", map[string]string{"Cookie": cookie}); r.status != 200 {
		t.Errorf("export with a session = %d %s", r.status, r.body)
	}
}

func TestChatSection(t *testing.T) {
	_, url := newChatServer(t)
	r := call(t, "GET", url+"/ui/section/chat", "", withKey(nil))
	if r.status != 200 {
		t.Fatalf("chat section = %d %s", r.status, r.body)
	}
	for _, want := range []string{`id="chat-battle-form"`, `id="chat-prompt"`, `id="chat-blind" name="blind" data-testid="chat-blind" checked`,
		`id="chat-provider-form"`, `name="api_key_env"`, `href="/api/chat/export?format=dpo"`, `id="chat-leaderboard"`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("chat section lacks %s", want)
		}
	}
	if r := call(t, "GET", url+"/ui/chat/models", "", withKey(nil)); !strings.Contains(r.body, "add a provider first") {
		t.Errorf("model picker without providers = %s", r.body)
	}
}
