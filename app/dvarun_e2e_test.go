//go:build e2e

package app

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gata-contrib/gata/dva/dvatest"
	"github.com/gata-contrib/gata/storage"
)

// writeShard writes a WebDataset shard of n samples (copies of small shared photos, each
// with a caption) and returns its path.
func writeShard(t *testing.T, n int) string {
	t.Helper()
	clip := dvatest.ClipDir(t)
	files := []string{"chelsea.jpg", "camera_gray_224x229.png"}
	var imgs [][]byte
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(clip, f))
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, b)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		k := fmt.Sprintf("%09d", i)
		add(k+filepath.Ext(files[i%2]), imgs[i%2])
		add(k+".txt", fmt.Appendf(nil, "photo number %d of a cat or a camera", i))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "shard-00000.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDVARunKilledAndResumed kills `gata dva run` with SIGKILL once some results are
// committed, resumes it, and checks that every item has exactly one result and that the
// outputs are complete.
func TestDVARunKilledAndResumed(t *testing.T) {
	const n = 300
	bin := binary(t)
	model := dvatest.ClipDir(t)
	shard := writeShard(t, n)
	data := t.TempDir()
	out := filepath.Join(t.TempDir(), "out")
	args := []string{"dva", "run", shard, "--data-dir", data, "--model", model, "--out", out, "--keep-top", "0.3",
		"--batch-size", "1", "--workers", "1", "--commit-every", "1"}
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	ctx := context.Background()
	var st *storage.Store
	defer func() {
		if st != nil {
			st.Close()
		}
	}()
	var committed int64
	for committed < 20 {
		select {
		case err := <-exited:
			t.Fatalf("gata dva run exited (%v) before it was killed; stderr:\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if st == nil {
			if _, err := os.Stat(filepath.Join(data, storage.DBName)); err != nil {
				continue
			}
			s, err := storage.Open(ctx, filepath.Join(data, storage.DBName))
			if err != nil {
				continue
			}
			st = s
		}
		scored, failed, err := st.RunCounts(ctx, 1)
		if err != nil {
			continue
		}
		committed = scored
		for _, v := range failed {
			committed += v
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	scored, _, err := st.RunCounts(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if scored >= n {
		t.Fatalf("the run had finished all %d items before the kill", n)
	}
	if _, err := os.Stat(filepath.Join(out, "summary.json")); err == nil {
		t.Fatal("summary.json exists after the kill")
	}

	// Resume with no id: the last unfinished run of the same shard.
	res := exec.Command(bin, "dva", "run", shard, "--data-dir", data, "--resume", "--json")
	var rout, rerr bytes.Buffer
	res.Stdout, res.Stderr = &rout, &rerr
	if err := res.Run(); err != nil {
		t.Fatalf("gata dva run --resume: %v\n%s%s", err, rout.String(), rerr.String())
	}
	var got struct {
		Run struct {
			ID     int64 `json:"id"`
			Scored int64 `json:"scored"`
		} `json:"run"`
		Stats struct {
			Skipped int64 `json:"skipped"`
			Scored  int64 `json:"scored"`
		} `json:"stats"`
		Summary struct {
			Total        int64 `json:"total"`
			Scored       int64 `json:"scored"`
			Kept         int64 `json:"kept"`
			ShardSamples int64 `json:"shard_samples"`
			UIDs         int64 `json:"uids"`
		} `json:"summary"`
	}
	if err := json.Unmarshal(rout.Bytes(), &got); err != nil {
		t.Fatalf("resume output: %v\n%s", err, rout.String())
	}
	if got.Run.ID != 1 || got.Run.Scored != n || got.Stats.Skipped < scored || got.Stats.Skipped+got.Stats.Scored != n {
		t.Errorf("resumed run = %+v, want run 1 with all %d scored, %d of them before the kill", got, n, scored)
	}
	if s := got.Summary; s.Total != n || s.Scored != n || s.Kept != n*3/10+1 || s.ShardSamples != s.Kept || s.UIDs != s.Kept {
		t.Errorf("summary = %+v, want %d results, %d kept in the shards and uids", s, n, n*3/10+1)
	}

	// Exactly one result per key of the shard.
	seen := map[string]int{}
	err = st.EachResult(ctx, 1, func(r storage.DVAResult) error {
		seen[r.Key]++
		if r.Reason != "" || r.Source != shard {
			return fmt.Errorf("result %s/%s: %q %s", r.Source, r.Key, r.Reason, r.Error)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if k := fmt.Sprintf("%09d", i); seen[k] != 1 {
			t.Errorf("key %s has %d results, want 1", k, seen[k])
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct keys have results, want %d", len(seen), n)
	}
	for _, f := range []string{"scores.parquet", "uids.npy", "summary.json", "shards/00000.tar"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("output %s: %v", f, err)
		}
	}
}
