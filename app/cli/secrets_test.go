package cli

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/chat/chattest"
	"github.com/gata-contrib/gata/storage"
)

// TestChatProviderKeyCommands stores a key with --api-key-stdin, replaces it with
// set-key and deletes it, each command on a fresh core over the same data folder and its
// encrypted secrets file (no keyring service runs in tests).
func TestChatProviderKeyCommands(t *testing.T) {
	const key = "sk-cli-stored-0a1b2c3d"
	dir := t.TempDir()
	srv := chattest.NewOpenAI(t, chattest.Options{APIKey: key, Models: map[string]chattest.Behavior{
		"m1": {Reply: "Paris is the capital of France."},
		"m2": {Reply: "The capital is Paris."},
	}})
	pass := "cli passphrase"
	openCore := func(ctx context.Context, g Global) (*core.Core, func() error, error) {
		st, err := storage.Open(ctx, filepath.Join(dir, storage.DBName))
		if err != nil {
			return nil, nil, err
		}
		secrets, err := storage.OpenSecrets(dir, storage.SecretsOptions{ForceFile: true, Passphrase: func() (string, error) { return pass, nil }})
		if err != nil {
			return nil, nil, err
		}
		c, err := core.New(core.Options{Version: "test", DataDir: dir, Store: st, Secrets: secrets,
			Passphrase: func() (string, error) { return pass, nil },
			Logger:     slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			st.Close()
			return nil, nil, err
		}
		return c, func() error { c.Close(); return st.Close() }, nil
	}
	run := func(stdin string, args ...string) (int, string, string) {
		t.Helper()
		r := newRecorder()
		r.env.OpenCore = openCore
		r.env.Stdin = strings.NewReader(stdin)
		code := Run(context.Background(), &r.env, args)
		return code, r.stdout.String(), r.stderr.String()
	}

	code, out, errOut := run(key+"\n", "chat", "providers", "add", "--name", "oa", "--kind", "openai", "--base-url", srv.URL, "--api-key-stdin")
	if code != 0 || !strings.Contains(out, "encrypted secrets file") {
		t.Fatalf("providers add --api-key-stdin = %d, %q %q", code, out, errOut)
	}
	if _, out, _ := run("", "chat", "providers", "list"); !strings.Contains(out, "key stored") {
		t.Errorf("providers list = %q, want the key shown as stored", out)
	}
	code, out, errOut = run("", "chat", "ask", "--models", "oa/m1,oa/m2", "--vote", "a", "What is the capital of France?")
	if code != 0 || !strings.Contains(out, "Paris") {
		t.Fatalf("chat ask with the stored key = %d, %q %q", code, out, errOut)
	}
	for _, name := range []string{storage.DBName, storage.SecretsFileName} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(key)) {
			t.Errorf("%s holds the API key in clear", name)
		}
	}

	// A wrong passphrase: the command fails on one line and the file is untouched.
	pass = "not it"
	code, _, errOut = run("", "chat", "ask", "--models", "oa/m1,oa/m2", "What is the capital of Spain?")
	if code != 1 || !strings.Contains(errOut, "wrong passphrase") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("chat ask with a wrong passphrase = %d, %q; want exit 1 and one line naming the wrong passphrase", code, errOut)
	}
	pass = "cli passphrase"

	if code, out, _ := run("sk-replaced\n", "chat", "providers", "set-key", "oa"); code != 0 || !strings.Contains(out, "stored the API key of oa") {
		t.Errorf("set-key = %d, %q", code, out)
	}
	// The replaced key is wrong for the server: both columns say so.
	code, out, errOut = run("", "chat", "ask", "--models", "oa/m1,oa/m2", "What is the capital of Italy?")
	if strings.Count(out, "authentication failed, check the API key (401)") != 2 {
		t.Errorf("chat ask with a replaced, wrong key = %d, %q %q; want both columns to fail with 401", code, out, errOut)
	}
	if n := srv.Count("m1"); n < 2 {
		t.Errorf("the server saw m1 %d times, want at least 2", n)
	}
	if code, out, _ := run("\n", "chat", "providers", "set-key", "oa"); code != 0 || !strings.Contains(out, "deleted the stored API key") {
		t.Errorf("set-key with an empty key = %d, %q", code, out)
	}
	if _, out, _ := run("", "chat", "providers", "list"); !strings.Contains(out, "no key") {
		t.Errorf("providers list after deleting the key = %q, want no key", out)
	}
	if code, _, errOut := run("k\n", "chat", "providers", "set-key", "nobody"); code != 1 || !strings.Contains(errOut, "no such provider") {
		t.Errorf("set-key of an unknown provider = %d, %q", code, errOut)
	}
}
