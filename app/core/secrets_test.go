package core

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/gata-contrib/gata/chat/chattest"
	"github.com/gata-contrib/gata/storage"
)

// withFileSecrets gives c the encrypted-file secret store in its data dir, asking c for
// the passphrase as the composition root does.
func withFileSecrets(t *testing.T, c *Core) *storage.Secrets {
	t.Helper()
	s, err := storage.OpenSecrets(c.opts.DataDir, storage.SecretsOptions{ForceFile: true, Passphrase: c.Passphrase})
	if err != nil {
		t.Fatal(err)
	}
	c.opts.Secrets = s
	return s
}

func TestChatProviderKeyInSecrets(t *testing.T) {
	ctx := context.Background()
	c, st := newTestCore(t)
	const key = "sk-stored-key-9f8e7d6c5b4a"
	srv := chattest.NewOpenAI(t, chattest.Options{APIKey: key, Models: map[string]chattest.Behavior{
		"m1": {Reply: "Paris is the capital of France."},
		"m2": {Reply: "It is Paris."},
	}})

	// No secret store: a key cannot be kept, the user is told to name a variable.
	if _, err := c.AddProvider(ctx, ProviderInput{Name: "oa", Kind: "openai", BaseURL: srv.URL, APIKey: key}); !errors.Is(err, ErrNoSecrets) || !errors.Is(err, ErrBadChat) {
		t.Fatalf("AddProvider with a key and no secret store = %v, want ErrNoSecrets (400)", err)
	}
	if got := c.Secrets(ctx); got.Available {
		t.Errorf("Secrets() with none = %+v, want unavailable", got)
	}

	secrets := withFileSecrets(t, c)
	if got := c.Secrets(ctx); !got.Available || got.Backend != storage.BackendFile || !got.Locked {
		t.Errorf("Secrets() before unlock = %+v, want an available, locked file", got)
	}
	_, err := c.AddProvider(ctx, ProviderInput{Name: "oa", Kind: "openai", BaseURL: srv.URL, APIKey: key})
	if !errors.Is(err, ErrSecretsLocked) {
		t.Fatalf("AddProvider while locked = %v, want ErrSecretsLocked", err)
	}
	if ps, _ := c.Providers(ctx); len(ps) != 0 {
		t.Fatalf("a provider whose key could not be stored was saved: %+v", ps)
	}
	if err := c.UnlockSecrets(ctx, ""); !errors.Is(err, ErrSecretsLocked) {
		t.Errorf("UnlockSecrets(\"\") = %v, want ErrSecretsLocked", err)
	}
	if err := c.UnlockSecrets(ctx, "first passphrase"); err != nil {
		t.Fatalf("UnlockSecrets of a new file: %v", err)
	}
	if got := c.Secrets(ctx); got.Locked {
		t.Errorf("Secrets() after unlock = %+v, want unlocked", got)
	}
	p, err := c.AddProvider(ctx, ProviderInput{Name: "oa", Kind: "openai", BaseURL: srv.URL, APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if !p.HasKey || !p.KeyStored || p.KeyError != "" {
		t.Errorf("AddProvider = %+v, want a stored key", p)
	}

	// The key works for a battle and is nowhere in the database or the data dir's files
	// other than sealed in the secrets file.
	b, err := c.StartBattle(ctx, BattleInput{Prompt: "What is the capital of France?", Models: []string{"oa/m1", "oa/m2"}})
	if err != nil {
		t.Fatal(err)
	}
	done := waitBattle(t, c, b.ID)
	for _, col := range done.Columns {
		if a := col.Answers[len(col.Answers)-1]; a.Error != "" || a.Text == "" {
			t.Errorf("column %s: %q, error %q (the stored key was not used)", col.Column, a.Text, a.Error)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(c.opts.DataDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if data, _ := os.ReadFile(path); bytes.Contains(data, []byte(key)) {
			t.Errorf("%s holds the API key in clear", path)
		}
		return nil
	})
	if v, err := secrets.Get(ctx, ChatKeyName("oa")); err != nil || v != key {
		t.Errorf("secrets.Get = %q, %v; want the key", v, err)
	}
}

func TestUnlockSecretsWrongPassphrase(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCore(t)
	secrets := withFileSecrets(t, c)
	if err := c.UnlockSecrets(ctx, "right"); err != nil {
		t.Fatal(err)
	}
	if err := secrets.Set(ChatKeyName("x"), "sk-1"); err != nil {
		t.Fatal(err)
	}

	// A second process (a fresh core over the same file) with the wrong passphrase.
	c2, _ := newTestCore(t)
	c2.opts.DataDir = c.opts.DataDir
	withFileSecrets(t, c2)
	if err := c2.UnlockSecrets(ctx, "wrong"); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("UnlockSecrets(wrong) = %v, want ErrWrongPassphrase", err)
	}
	if got := c2.Secrets(ctx); !got.Locked {
		t.Errorf("Secrets() after a wrong passphrase = %+v, want still locked", got)
	}
	if err := c2.UnlockSecrets(ctx, "right"); err != nil {
		t.Fatalf("UnlockSecrets(right) after a wrong one: %v", err)
	}
	if v, err := c2.opts.Secrets.Get(ctx, ChatKeyName("x")); err != nil || v != "sk-1" {
		t.Errorf("Get after unlock = %q, %v", v, err)
	}
}

func TestSetProviderKeyAndRemove(t *testing.T) {
	ctx := context.Background()
	e := newChatCore(t) // "oa" reads its key from GATA_TEST_OA_KEY
	secrets := withFileSecrets(t, e.c)
	e.c.opts.Passphrase = func() (string, error) { return "from the terminal", nil }
	if got := e.c.Secrets(ctx); got.Locked {
		t.Errorf("Secrets() with a passphrase prompt = %+v, want unlocked", got)
	}
	if err := e.c.SetProviderKey(ctx, "nobody", "sk-x"); !errors.Is(err, ErrNoProvider) {
		t.Errorf("SetProviderKey of an unknown provider = %v, want ErrNoProvider", err)
	}
	if err := e.c.SetProviderKey(ctx, "oa", "sk with space"); !errors.Is(err, ErrBadChat) {
		t.Errorf("SetProviderKey with a space = %v, want ErrBadChat", err)
	}
	// A stored key wins over the environment: a wrong one makes the column fail with 401.
	if err := e.c.SetProviderKey(ctx, "oa", "sk-wrong-key"); err != nil {
		t.Fatal(err)
	}
	b, err := e.c.StartBattle(ctx, BattleInput{Prompt: "What is the capital of France?", Models: []string{"oa/good", "an/sonnet-x"}, Blind: false})
	if err != nil {
		t.Fatal(err)
	}
	var oaErr string
	for _, col := range waitBattle(t, e.c, b.ID).Columns {
		if col.Model == "oa/good" {
			oaErr = col.Answers[len(col.Answers)-1].Error
		}
	}
	if oaErr == "" {
		t.Errorf("the oa column succeeded with a wrong stored key; the stored key must win over the environment")
	}
	// Deleting the stored key falls back to the environment variable.
	if err := e.c.SetProviderKey(ctx, "oa", ""); err != nil {
		t.Fatal(err)
	}
	ps, err := e.c.Providers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.Name == "oa" && (!p.HasKey || p.KeyStored) {
			t.Errorf("after deleting the stored key: %+v, want the key from the environment", p)
		}
	}
	if err := e.c.SetProviderKey(ctx, "an", "sk-ant-stored"); err != nil {
		t.Fatal(err)
	}
	if err := e.c.RemoveProvider(ctx, "an"); err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.Get(ctx, ChatKeyName("an")); !errors.Is(err, storage.ErrSecretNotFound) {
		t.Errorf("the key of a removed provider: %v, want it deleted", err)
	}
}
