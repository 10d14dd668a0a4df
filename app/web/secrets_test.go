package web

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/chat/chattest"
	"github.com/gata-contrib/gata/storage"
)

// TestChatKeysThroughSecrets: the providers card asks for the secrets file's passphrase,
// a key given in the form is stored there (not in the database), can be replaced and
// deleted, and battles use it; the history fragment lists the battle.
func TestChatKeysThroughSecrets(t *testing.T) {
	const key = "sk-web-stored-5e6f7a"
	fake := chattest.NewOpenAI(t, chattest.Options{APIKey: key, Models: map[string]chattest.Behavior{
		"alpha": {Reply: "Paris is the capital of France."},
		"beta":  {Reply: "The capital is Paris."},
	}})
	var c *core.Core
	c = newTestCoreWith(t, func(o *core.Options) {
		s, err := storage.OpenSecrets(o.DataDir, storage.SecretsOptions{ForceFile: true, Passphrase: func() (string, error) { return c.Passphrase() }})
		if err != nil {
			t.Fatal(err)
		}
		o.Secrets = s
	})
	_, ts, _ := serveCore(t, c, Options{})
	url := ts.URL

	var info core.SecretsInfo
	call(t, "GET", url+"/api/secrets", "", withKey(nil)).json(t, &info)
	if !info.Available || info.Backend != core.SecretsFile || !info.Locked {
		t.Fatalf("GET /api/secrets = %+v, want a locked file", info)
	}
	if r := call(t, "GET", url+"/ui/chat/providers", "", withKey(nil)); !strings.Contains(r.body, `id="chat-unlock-form"`) {
		t.Errorf("providers card while locked has no passphrase form: %s", r.body)
	}
	add := mustJSON(t, core.ProviderInput{Name: "fake", Kind: "openai", BaseURL: fake.URL, APIKey: key})
	if r := call(t, "POST", url+"/api/chat/providers", add, withKey(nil)); r.status != http.StatusLocked {
		t.Errorf("add provider with a key while locked = %d %s, want 423", r.status, r.body)
	}
	if r := call(t, "POST", url+"/api/secrets/unlock", `{"passphrase":"web pass"}`, withKey(nil)); r.status != 200 {
		t.Fatalf("unlock = %d %s", r.status, r.body)
	}
	if r := call(t, "POST", url+"/api/chat/providers", add, withKey(nil)); r.status != http.StatusCreated {
		t.Fatalf("add provider = %d %s", r.status, r.body)
	} else if strings.Contains(r.body, key) {
		t.Errorf("the add reply echoes the key: %s", r.body)
	}
	r := call(t, "GET", url+"/ui/chat/providers", "", withKey(nil))
	if strings.Contains(r.body, `id="chat-unlock-form"`) || !strings.Contains(r.body, "key stored") || strings.Contains(r.body, key) {
		t.Errorf("providers card after unlock = %s", r.body)
	}

	r = call(t, "POST", url+"/api/chat/battles", mustJSON(t, core.BattleInput{Models: []string{"fake/alpha", "fake/beta"}, Prompt: "What is the capital of France?", Blind: true}), withKey(nil))
	if r.status != http.StatusAccepted {
		t.Fatalf("start battle = %d %s", r.status, r.body)
	}
	var b core.BattleInfo
	r.json(t, &b)
	done := waitChatBattle(t, url, b.ID)
	for _, col := range done.Columns {
		if a := col.Answers[0]; a.Error != "" {
			t.Errorf("column %s failed with the stored key: %s", col.Column, a.Error)
		}
	}
	h := call(t, "GET", url+"/ui/chat/history", "", withKey(nil))
	if !strings.Contains(h.body, `data-battle="`+b.ID+`"`) || !strings.Contains(h.body, "What is the capital of France?") || !strings.Contains(h.body, "no vote") {
		t.Errorf("history = %s", h.body)
	}

	if r := call(t, "PUT", url+"/api/chat/providers/fake/key", `{"api_key":"sk with spaces"}`, withKey(nil)); r.status != http.StatusBadRequest {
		t.Errorf("PUT a key with spaces = %d %s, want 400", r.status, r.body)
	}
	if r := call(t, "PUT", url+"/api/chat/providers/nobody/key", `{"api_key":"sk-1"}`, withKey(nil)); r.status != http.StatusNotFound {
		t.Errorf("PUT the key of an unknown provider = %d, want 404", r.status)
	}
	if r := call(t, "PUT", url+"/api/chat/providers/fake/key", `{"api_key":""}`, withKey(nil)); r.status != http.StatusNoContent {
		t.Fatalf("delete key = %d %s", r.status, r.body)
	}
	var provs []core.ProviderInfo
	call(t, "GET", url+"/api/chat/providers", "", withKey(nil)).json(t, &provs)
	if len(provs) != 1 || provs[0].HasKey || provs[0].KeyStored {
		t.Errorf("providers after deleting the key = %+v", provs)
	}
}

func TestUnlockWrongPassphrase(t *testing.T) {
	var c *core.Core
	c = newTestCoreWith(t, func(o *core.Options) {
		// Another process made the file with the passphrase "first".
		other, err := storage.OpenSecrets(o.DataDir, storage.SecretsOptions{ForceFile: true, Passphrase: func() (string, error) { return "first", nil }})
		if err != nil {
			t.Fatal(err)
		}
		if err := other.Set("chat.provider.x", "sk-1"); err != nil {
			t.Fatal(err)
		}
		s, err := storage.OpenSecrets(o.DataDir, storage.SecretsOptions{ForceFile: true, Passphrase: func() (string, error) { return c.Passphrase() }})
		if err != nil {
			t.Fatal(err)
		}
		o.Secrets = s
	})
	_, ts, _ := serveCore(t, c, Options{})
	for _, tt := range []struct {
		body string
		want int
	}{
		{`{"passphrase":""}`, http.StatusLocked},
		{`{"passphrase":1}`, http.StatusBadRequest},
		{`{"passphrase":"wrong"}`, http.StatusForbidden},
		{`{"passphrase":"first"}`, http.StatusOK},
	} {
		if r := call(t, "POST", ts.URL+"/api/secrets/unlock", tt.body, withKey(nil)); r.status != tt.want {
			t.Errorf("unlock %s = %d %s, want %d", tt.body, r.status, r.body, tt.want)
		}
	}
	var info core.SecretsInfo
	call(t, "GET", ts.URL+"/api/secrets", "", withKey(nil)).json(t, &info)
	if info.Locked {
		t.Errorf("secrets after the right passphrase = %+v, want unlocked", info)
	}
}
