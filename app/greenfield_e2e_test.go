//go:build e2e && greenfield

package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/storage"
	"github.com/gata-contrib/gata/storage/greenfield"
	"github.com/gata-contrib/gata/storage/greenfield/localnet"
)

// gataCLI runs the gata binary on one data folder with the wallet in the keystore file.
type gataCLI struct {
	t    *testing.T
	ctx  context.Context
	bin  string
	data string
	env  []string
}

func (g *gataCLI) cmd(args ...string) *exec.Cmd {
	cmd := exec.CommandContext(g.ctx, g.bin, append(args, "--data-dir", g.data)...)
	cmd.Env = append(os.Environ(), g.env...)
	return cmd
}

func (g *gataCLI) ok(args ...string) string {
	g.t.Helper()
	var stderr bytes.Buffer
	cmd := g.cmd(args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		g.t.Fatalf("gata %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// storeBattles keeps n voted chat battles whose answers are size bytes long.
func storeBattles(t *testing.T, data, prefix string, n, size int) {
	t.Helper()
	ctx := context.Background()
	st, err := storage.Open(ctx, filepath.Join(data, storage.DBName))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Now().Add(-time.Hour)
	for i := range n {
		answer := strings.Repeat(fmt.Sprintf("answer %s-%d ", prefix, i), size/12+1)[:size]
		ans := storage.ChatAnswer{Text: answer, Started: t0, FirstToken: t0.Add(time.Second), Finished: t0.Add(2 * time.Second)}
		err := st.SaveChatBattle(ctx, storage.ChatBattle{ID: fmt.Sprintf("%s-%d", prefix, i), Created: t0, Blind: true,
			Models: []string{"oa/a", "oa/b"}, Prompts: []string{fmt.Sprintf("Question %s %d?", prefix, i)},
			Sides: []storage.ChatSide{
				{Column: "A", Model: "oa/a", Answers: []storage.ChatAnswer{ans}},
				{Column: "B", Model: "oa/b", Answers: []storage.ChatAnswer{ans}},
			},
			Vote:    &storage.ChatVote{Outcome: "A", At: t0.Add(time.Minute)},
			Quality: &storage.ChatQuality{Score: 0.9, Diversity: 1, Assessed: t0.Add(time.Minute)}})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// outboxItem reads one submission's upload from the database, as another process would.
func outboxItem(t *testing.T, data string, id int64) storage.OutboxItem {
	t.Helper()
	st, err := storage.Open(context.Background(), filepath.Join(data, storage.DBName))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	it, err := st.OutboxBySubmission(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return it
}

// TestGreenfieldEndToEnd runs the whole way of a submission on a real local Greenfield
// network: a wallet funded in genesis, submissions queued by gata submit and uploaded by
// gata serve, which is killed with SIGKILL in the middle of a large upload and started
// again; then the objects are read back and compared byte for byte, their tags checked,
// read access shared with a second address and checked on the chain.
func TestGreenfieldEndToEnd(t *testing.T) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	bin := binary(t)
	net, err := localnet.Start(ctx, localnet.Options{Accounts: 3, Log: testLog{t}})
	if err != nil {
		t.Fatalf("start the local network: %v", err)
	}
	defer net.Stop()
	defer func() {
		if t.Failed() {
			t.Logf("network logs:\n%s", net.Logs(3000))
		}
	}()
	t.Logf("network up in %s", time.Since(start).Round(time.Second))

	g := &gataCLI{t: t, ctx: ctx, bin: bin, data: t.TempDir(), env: []string{"KEY=" + net.Keys[0], "GATA_PASSPHRASE=greenfield e2e"}}
	g.ok("wallet", "import", "--private-key-env", "KEY")
	g.ok("submit", "network", "custom", "--chain-id", net.ChainID, "--rpc", net.RPC)

	// Two submissions: a small one, then one of 40 MiB (multipart, resumable).
	storeBattles(t, g.data, "small", 2, 200)
	var small, large core.SubmitResult
	json.Unmarshal([]byte(g.ok("submit", "chat", "--json")), &small)
	storeBattles(t, g.data, "large", 20, 1<<20)
	json.Unmarshal([]byte(g.ok("submit", "chat", "--json")), &large)
	if small.ID == 0 || large.ID == 0 || large.Manifest.Bytes < 32<<20 || small.Manifest.ChainID != 9000 {
		t.Fatalf("submissions: %+v / %+v", small, large)
	}

	// gata serve uploads; kill it with SIGKILL once the large payload is on its way.
	serve := startServeEnv(t, g)
	var at storage.OutboxItem
	deadline := time.Now().Add(10 * time.Minute)
	for {
		at = outboxItem(t, g.data, large.ID)
		if (at.State == storage.OutboxUploading && at.BytesSent > 0) || at.State == storage.OutboxSealing || at.State == storage.OutboxDone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the large upload did not start in 10 min: %+v; small: %+v\n%s", at, outboxItem(t, g.data, small.ID), serve.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s := outboxItem(t, g.data, small.ID); s.Attempts > 0 {
		t.Logf("the small submission took %d failed attempts (last error: %q)", s.Attempts, s.Error)
	}
	serve.cmd.Process.Signal(syscall.SIGKILL)
	serve.cmd.Wait()
	left := outboxItem(t, g.data, large.ID)
	t.Logf("killed gata serve with the large upload %s, %d of %d bytes sent (%s since start)",
		left.State, left.BytesSent, left.Size, time.Since(start).Round(time.Second))
	if left.State == storage.OutboxDone {
		t.Fatalf("the large upload was done before the kill; the test needs a kill in the middle")
	}
	if s := outboxItem(t, g.data, small.ID); s.State != storage.OutboxDone {
		t.Errorf("the small submission is %s (%s), want done before the large one started", s.State, s.Error)
	}

	// Started again, it finishes the outbox.
	serve = startServeEnv(t, g)
	var status struct {
		Uploads []core.UploadItem `json:"uploads"`
	}
	if err := json.Unmarshal([]byte(g.ok("submit", "status", "--wait", "--json")), &status); err != nil {
		t.Fatal(err)
	}
	for _, it := range status.Uploads {
		t.Logf("submission %d: %s after %d failed attempts (last error: %q)", it.SubmissionID, it.State, it.Attempts, it.Error)
		if it.State != storage.OutboxDone {
			t.Fatalf("after the restart submission %d is %s: %s\n%s", it.SubmissionID, it.State, it.Error, serve.stderr.String())
		}
	}
	t.Logf("outbox done after the restart (%s since start)", time.Since(start).Round(time.Second))

	// Read everything back from the chain and the providers.
	sdk, err := greenfield.Dial(ctx, greenfield.Network{Name: "custom", ChainID: net.ChainID, RPC: net.RPC}, net.Keys[0])
	if err != nil {
		t.Fatal(err)
	}
	bucket := greenfield.BucketName(sdk.Address())
	for _, sub := range []core.SubmitResult{small, large} {
		m := sub.Manifest
		object := m.ObjectName()
		want, _ := os.ReadFile(sub.JSONLPath)
		got, err := sdk.GetObject(ctx, bucket, object)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("object %s: %d bytes, %v; want the %d bytes of %s", object, len(got), err, len(want), sub.JSONLPath)
		}
		manifest := strings.TrimSuffix(object, ".jsonl") + ".manifest.json"
		wantM, _ := os.ReadFile(sub.ManifestPath)
		gotM, err := sdk.GetObject(ctx, bucket, manifest)
		if err != nil || !bytes.Equal(gotM, wantM) {
			t.Errorf("manifest %s = %q, %v; want %q", manifest, gotM, err, wantM)
		}
		info, err := sdk.HeadObject(ctx, bucket, object)
		wantTags := map[string]string{"kind": "chat", "records": fmt.Sprint(m.Records), "sha256": m.SHA256, "schema": greenfield.Schema}
		if err != nil || info.Status != greenfield.StatusSealed || fmt.Sprint(info.Tags) != fmt.Sprint(wantTags) {
			t.Errorf("object %s: %+v, %v; want sealed with tags %v", object, info, err, wantTags)
		}
		// What came back verifies as what was signed.
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, m.SHA256+".jsonl"), got, 0o600)
		os.WriteFile(filepath.Join(dir, m.SHA256+".manifest.json"), gotM, 0o600)
		if out := g.ok("verify", filepath.Join(dir, m.SHA256+".manifest.json")); !strings.Contains(out, sdk.Address()) {
			t.Errorf("gata verify of the downloaded submission = %q", out)
		}
	}

	// Private until shared: the second account may read the small submission only.
	reader, stranger := net.Addrs[1], net.Addrs[2]
	if out := g.ok("submit", "share", reader, "--id", fmt.Sprint(small.ID)); !strings.Contains(out, "can read 1 submissions now") {
		t.Errorf("gata submit share = %q", out)
	}
	for _, c := range []struct {
		addr   string
		object string
		want   bool
	}{
		{reader, small.Manifest.ObjectName(), true},
		{reader, strings.TrimSuffix(small.Manifest.ObjectName(), ".jsonl") + ".manifest.json", true},
		{reader, large.Manifest.ObjectName(), false},
		{stranger, small.Manifest.ObjectName(), false},
	} {
		ok, err := sdk.CanRead(ctx, bucket, c.object, c.addr)
		if err != nil || ok != c.want {
			t.Errorf("IsObjectPermissionAllowed(%s, %s) = %v, %v; want %v", c.addr, c.object, ok, err, c.want)
		}
	}
	out := g.ok("submit", "status")
	for _, want := range []string{"account  " + sdk.Address(), "bucket   " + bucket, reader + " shared"} {
		if !strings.Contains(out, want) {
			t.Errorf("gata submit status = %q, want %q", out, want)
		}
	}
	serve.stop(t)
	t.Logf("done in %s", time.Since(start).Round(time.Second))
}

// startServeEnv runs gata serve on g's data folder with g's environment.
func startServeEnv(t *testing.T, g *gataCLI) *served {
	t.Helper()
	for _, kv := range g.env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return startServe(t, g.bin, g.data)
}

type testLog struct{ t *testing.T }

func (l testLog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
