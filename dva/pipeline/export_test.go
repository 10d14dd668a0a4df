package pipeline

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

func tinyImages(t *testing.T) (pngData, jpgData []byte) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 4, 3))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	img.Set(0, 0, color.RGBA{255, 0, 0, 255})
	var p, j bytes.Buffer
	if err := png.Encode(&p, img); err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(&j, img, nil); err != nil {
		t.Fatal(err)
	}
	return p.Bytes(), j.Bytes()
}

// exportResults makes n synthetic results over two sources: every 15th failed, every 40th
// judged "reject" and every 45th "keep", extras of four kinds (one clashing with a fixed
// column), a key with a dot, two sources sharing keys, and a few uids that are not hex.
func exportResults(n int) []Result {
	var rs []Result
	for i := range n {
		src := "/data/a.tar"
		if i%2 == 1 {
			src = "/data/b"
		}
		r := Result{
			Source:  src,
			Key:     fmt.Sprintf("%05d", i/2), // the same keys in both sources
			UID:     fmt.Sprintf("%016x%016x", uint64(n-i)*0x9e3779b97f4a7c15, uint64(i)),
			URL:     fmt.Sprintf("https://example.com/%d.jpg", i),
			Caption: fmt.Sprintf("a photo of thing %d", i),
			Score:   float32((i*37)%200)/200 - 0.3,
			Width:   320 + i%5,
			Height:  240,
			Extra:   map[string]string{"lang": "en"},
		}
		if i%3 == 0 {
			r.Extra["license"] = "cc-by"
		}
		if i%4 == 0 {
			r.Extra["url"] = "https://page.example/" + fmt.Sprint(i)
		}
		if i%50 == 7 {
			r.Extra["rare"] = "yes"
		}
		if i == 11 {
			r.Key = "img.v2"
		}
		if i%97 == 5 {
			r.UID = fmt.Sprintf("custom-%d", i)
		}
		if i%15 == 0 {
			r.Reason, r.Error, r.Score, r.Width, r.Height = ReasonCorrupt, "truncated JPEG", 0, 0, 0
		}
		if i%40 == 1 {
			r.Verdict = "reject"
		}
		if i%45 == 2 {
			r.Verdict = "keep"
		}
		rs = append(rs, r)
	}
	return rs
}

func eachOf(rs []Result) func(fn func(Result) error) error {
	return func(fn func(Result) error) error {
		for _, r := range rs {
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestExport(t *testing.T) {
	ctx := context.Background()
	pngData, jpgData := tinyImages(t)
	rs := exportResults(640)
	brokenImage := map[string]bool{}
	images := func(ctx context.Context, r Result) ([]byte, string, error) {
		switch {
		case strings.HasSuffix(r.Key, "3"):
			brokenImage[r.Source+"/"+r.Key] = true
			return nil, "", errors.New("gone from the source")
		case strings.HasSuffix(r.Key, "1"):
			return pngData, "", nil // sniffed
		case strings.HasSuffix(r.Key, "2"):
			return pngData, ".PNG", nil
		}
		return jpgData, "jpeg", nil
	}
	dir := filepath.Join(t.TempDir(), "out")
	const fraction = 0.5
	sum, err := Export(ctx, ExportOptions{
		Dir: dir, KeepFraction: fraction, ShardSize: 100, RowGroupSize: 64, MaxExtraColumns: 3,
		Images: images, Model: "apple/DFN2B-CLIP-ViT-B-16", ModelSHA256: strings.Repeat("cd", 32),
		Sources: []string{"/data/a.tar", "/data/b"}, Timings: map[string]float64{"score": 12.5},
	}, eachOf(rs))
	if err != nil {
		t.Fatalf("Export: %v", err)
	}

	// The expected decisions, from DataComp's rule computed here on its own.
	var scores []float32
	for _, r := range rs {
		if r.Scored() {
			scores = append(scores, r.Score)
		}
	}
	sort.Slice(scores, func(i, j int) bool { return scores[i] > scores[j] })
	threshold := scores[int(float64(len(scores))*fraction)]
	var kept []Result
	var wantUIDs []string
	failed := map[Reason]int64{}
	for _, r := range rs {
		if !r.Scored() {
			failed[r.Reason]++
		}
		if Kept(r, threshold, nil, nil) {
			kept = append(kept, r)
			if _, ok := parseUID(r.UID); ok {
				wantUIDs = append(wantUIDs, r.UID)
			}
		}
	}
	slices.Sort(wantUIDs)
	wantUIDs = slices.Compact(wantUIDs)
	if len(kept) < 250 {
		t.Fatalf("test data keeps only %d results, want at least 250 for three shards", len(kept))
	}

	t.Run("scores.parquet", func(t *testing.T) { checkScoresParquet(t, filepath.Join(dir, ScoresFile), rs, threshold) })
	t.Run("shards", func(t *testing.T) {
		checkShards(t, filepath.Join(dir, ShardsDir), kept, brokenImage, 100, pngData, jpgData)
	})
	t.Run("uids.npy", func(t *testing.T) { checkUIDs(t, filepath.Join(dir, UIDsFile), wantUIDs) })
	t.Run("summary.json", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(dir, SummaryFile))
		if err != nil {
			t.Fatal(err)
		}
		var got Summary
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("summary.json: %v", err)
		}
		if !reflect.DeepEqual(got, sum) {
			t.Errorf("summary.json = %+v\nExport returned %+v", got, sum)
		}
		written := int64(len(kept) - len(brokenImage))
		if got.Total != int64(len(rs)) || got.Scored != int64(len(scores)) || got.Kept != int64(len(kept)) ||
			!reflect.DeepEqual(got.Failed, failed) || got.Threshold == nil || *got.Threshold != threshold ||
			got.KeepFraction != fraction || got.UIDs != int64(len(wantUIDs)) || got.UIDsInvalid == 0 ||
			got.ShardSamples != written || got.Shards != int((written+99)/100) ||
			got.ImageErrors != int64(len(brokenImage)) || !strings.Contains(got.FirstImageError, "gone from the source") ||
			got.Model != "apple/DFN2B-CLIP-ViT-B-16" || got.ModelSHA256 != strings.Repeat("cd", 32) ||
			!reflect.DeepEqual(got.Sources, []string{"/data/a.tar", "/data/b"}) || got.Timings["score"] != 12.5 ||
			!reflect.DeepEqual(got.ExtraColumns, []string{"lang", "license", "extra_url"}) {
			t.Errorf("summary = %+v", got)
		}
		var vk, vr int64
		var hist int64
		for _, r := range rs {
			vk += b2i(r.Verdict == "keep")
			vr += b2i(r.Verdict == "reject")
		}
		for _, c := range got.Histogram.Counts {
			hist += c
		}
		if got.VerdictKeep != vk || got.VerdictReject != vr {
			t.Errorf("verdicts keep %d reject %d, want %d and %d", got.VerdictKeep, got.VerdictReject, vk, vr)
		}
		if got.Histogram.Bins != 50 || len(got.Histogram.Counts) != 50 || got.Histogram.Min != -1 || got.Histogram.Max != 1 || hist != got.Scored {
			t.Errorf("histogram %+v holds %d scores, want 50 bins over [-1, 1] holding %d", got.Histogram, hist, got.Scored)
		}
		// Score -0.3 falls in bin floor(0.7/0.04) = 17, 0.695 in bin 42.
		if got.Histogram.Counts[17] == 0 || got.Histogram.Counts[42] == 0 || got.Histogram.Counts[0] != 0 {
			t.Errorf("histogram counts %v: want bins 17 and 42 used and bin 0 empty", got.Histogram.Counts)
		}
		if got.Scores.Min != -0.3 || got.Scores.Max != 0.695 {
			t.Errorf("score stats %+v, want min -0.3 max 0.695", got.Scores)
		}
	})
	t.Run("no staging left", func(t *testing.T) {
		entries, _ := os.ReadDir(dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if !reflect.DeepEqual(names, []string{ScoresFile, ShardsDir, SummaryFile, UIDsFile}) {
			t.Errorf("output folder holds %v", names)
		}
	})
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func checkScoresParquet(t *testing.T, path string, rs []Result, threshold float32) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatalf("parquet.OpenFile: %v", err)
	}
	wantCols := []string{"uid", "key", "source", "url", "caption", "score", "width", "height", "kept", "reason", "error", "verdict", "lang", "license", "extra_url", "extra"}
	var cols []string
	for _, c := range pf.Schema().Columns() {
		cols = append(cols, strings.Join(c, "."))
	}
	if !slices.Equal(cols, wantCols) {
		t.Errorf("columns = %v, want %v", cols, wantCols)
	}
	if pf.NumRows() != int64(len(rs)) || len(pf.RowGroups()) != (len(rs)+63)/64 {
		t.Errorf("%d rows in %d row groups, want %d in %d", pf.NumRows(), len(pf.RowGroups()), len(rs), (len(rs)+63)/64)
	}
	reader := parquet.NewReader(f)
	defer reader.Close()
	buf := make([]parquet.Row, 50)
	i := 0
	for {
		n, err := reader.ReadRows(buf)
		for _, row := range buf[:n] {
			if i >= len(rs) {
				t.Fatalf("more rows than results")
			}
			checkRow(t, i, row, rs[i], Kept(rs[i], threshold, nil, nil))
			i++
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("ReadRows: %v", err)
		}
	}
	if i != len(rs) {
		t.Errorf("read %d rows, want %d", i, len(rs))
	}
}

func checkRow(t *testing.T, i int, row parquet.Row, r Result, kept bool) {
	t.Helper()
	got := map[string]any{}
	names := []string{"uid", "key", "source", "url", "caption", "score", "width", "height", "kept", "reason", "error", "verdict", "lang", "license", "extra_url", "extra"}
	for _, v := range row {
		name := names[v.Column()]
		switch {
		case v.IsNull():
			got[name] = nil
		case name == "score":
			got[name] = v.Float()
		case name == "width" || name == "height":
			got[name] = int(v.Int32())
		case name == "kept":
			got[name] = v.Boolean()
		default:
			got[name] = string(v.ByteArray())
		}
	}
	opt := func(k string) any {
		if v, ok := r.Extra[k]; ok {
			return v
		}
		return nil
	}
	want := map[string]any{
		"uid": r.UID, "key": r.Key, "source": r.Source, "url": r.URL, "caption": r.Caption,
		"score": nil, "width": r.Width, "height": r.Height, "kept": kept, "reason": string(r.Reason),
		"error": r.Error, "verdict": r.Verdict, "lang": opt("lang"), "license": opt("license"),
		"extra_url": opt("url"), "extra": nil,
	}
	if r.Scored() {
		want["score"] = r.Score
	}
	if v, ok := r.Extra["rare"]; ok {
		want["extra"] = `{"rare":"` + v + `"}`
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("row %d = %v\nwant %v", i, got, want)
	}
}

func checkShards(t *testing.T, dir string, kept []Result, broken map[string]bool, size int, pngData, jpgData []byte) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var want []Result
	for _, r := range kept {
		if !broken[r.Source+"/"+r.Key] {
			want = append(want, r)
		}
	}
	nShards := (len(want) + size - 1) / size
	if len(entries) != nShards {
		t.Fatalf("%d shard files, want %d", len(entries), nShards)
	}
	next := 0
	for s, e := range entries {
		if e.Name() != fmt.Sprintf("%05d.tar", s) {
			t.Errorf("shard %d is named %q", s, e.Name())
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(f)
		var members []string
		data := map[string][]byte{}
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("shard %s: %v", e.Name(), err)
			}
			b, _ := io.ReadAll(tr)
			members = append(members, h.Name)
			data[h.Name] = b
		}
		f.Close()
		wantSamples := min(size, len(want)-next)
		if len(members) != 3*wantSamples {
			t.Errorf("shard %s has %d members, want %d", e.Name(), len(members), 3*wantSamples)
		}
		seen := map[string]bool{}
		for m := 0; m+2 < len(members); m += 3 {
			r := want[next]
			next++
			key, ext, _ := strings.Cut(filepath.Base(members[m]), ".")
			if strings.ContainsRune(r.Key, '.') {
				if key != strings.ReplaceAll(r.Key, ".", "_") {
					t.Errorf("key %q became %q, want dots replaced", r.Key, key)
				}
			} else if key != r.Key && !strings.HasPrefix(key, r.Key+"_") {
				t.Errorf("sample %d of shard %s has key %q, want %q", m/3, e.Name(), key, r.Key)
			}
			if seen[key] {
				t.Errorf("key %q twice in shard %s", key, e.Name())
			}
			seen[key] = true
			if members[m+1] != key+".txt" || members[m+2] != key+".json" {
				t.Errorf("sample %q members %v", key, members[m:m+3])
			}
			wantExt, wantData := "jpg", jpgData
			if strings.HasSuffix(r.Key, "1") || strings.HasSuffix(r.Key, "2") {
				wantExt, wantData = "png", pngData
			}
			if ext != wantExt || !bytes.Equal(data[members[m]], wantData) {
				t.Errorf("sample %q image %q (%d bytes), want .%s with the original bytes", key, members[m], len(data[members[m]]), wantExt)
			}
			if string(data[key+".txt"]) != r.Caption {
				t.Errorf("sample %q caption %q, want %q", key, data[key+".txt"], r.Caption)
			}
			var meta map[string]any
			if err := json.Unmarshal(data[key+".json"], &meta); err != nil {
				t.Fatalf("sample %q json: %v", key, err)
			}
			wantMeta := map[string]any{
				"uid": r.UID, "key": r.Key, "source": r.Source, "url": r.URL, "caption": r.Caption,
				"score": float64(r.Score), "width": float64(r.Width), "height": float64(r.Height),
			}
			if r.Verdict != "" {
				wantMeta["verdict"] = r.Verdict
			}
			for k, v := range r.Extra {
				if k == "url" {
					wantMeta["extra"] = map[string]any{"url": v}
				} else {
					wantMeta[k] = v
				}
			}
			meta["score"] = float64(float32(meta["score"].(float64)))
			if !reflect.DeepEqual(meta, wantMeta) {
				t.Errorf("sample %q json = %v\nwant %v", key, meta, wantMeta)
			}
		}
	}
	if next != len(want) {
		t.Errorf("shards hold %d samples, want %d", next, len(want))
	}
}

func checkUIDs(t *testing.T, path string, want []string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 10 || string(b[:8]) != "\x93NUMPY\x01\x00" {
		t.Fatalf("uids.npy starts %q, want the .npy 1.0 magic", b[:min(len(b), 10)])
	}
	hlen := int(binary.LittleEndian.Uint16(b[8:10]))
	if (10+hlen)%64 != 0 || b[10+hlen-1] != '\n' {
		t.Errorf("header length %d: data starts at %d, want a multiple of 64 after a newline", hlen, 10+hlen)
	}
	header := strings.TrimRight(string(b[10:10+hlen]), " \n")
	wantHeader := fmt.Sprintf("{'descr': [('f0', '<u8'), ('f1', '<u8')], 'fortran_order': False, 'shape': (%d,), }", len(want))
	if header != wantHeader {
		t.Errorf("header %q, want %q", header, wantHeader)
	}
	data := b[10+hlen:]
	if len(data) != 16*len(want) {
		t.Fatalf("%d data bytes, want %d", len(data), 16*len(want))
	}
	var got []string
	for i := 0; i < len(data); i += 16 {
		got = append(got, fmt.Sprintf("%016x%016x", binary.LittleEndian.Uint64(data[i:]), binary.LittleEndian.Uint64(data[i+8:])))
	}
	if !slices.IsSorted(got) || !slices.Equal(got, want) {
		t.Errorf("uids.npy holds %d uids (sorted %v), want the %d kept ones sorted", len(got), slices.IsSorted(got), len(want))
	}

	if exec.Command("/usr/bin/python3", "-c", "import numpy").Run() != nil {
		t.Log("numpy is not installed: uids.npy checked in Go only")
		return
	}
	script := `import sys, numpy as np
a = np.load(sys.argv[1])
assert a.dtype == np.dtype("u8,u8"), a.dtype
assert a.shape == (int(sys.argv[2]),), a.shape
assert (np.sort(a) == a).all()
for x in a:
    print("%016x%016x" % (int(x["f0"]), int(x["f1"])))
`
	out, err := exec.Command("/usr/bin/python3", "-c", script, path, fmt.Sprint(len(want))).CombinedOutput()
	if err != nil {
		t.Fatalf("numpy.load(uids.npy): %v\n%s", err, out)
	}
	if lines := strings.Fields(string(out)); !slices.Equal(lines, want) {
		t.Errorf("numpy reads %d uids, want the %d kept ones", len(lines), len(want))
	}
}

func TestExportReplacesAndFailsCleanly(t *testing.T) {
	ctx := context.Background()
	pngData, _ := tinyImages(t)
	images := func(context.Context, Result) ([]byte, string, error) { return pngData, "png", nil }
	dir := t.TempDir()
	rs := exportResults(50)
	min := float32(0.1)
	if _, err := Export(ctx, ExportOptions{Dir: dir, MinScore: &min, Images: images, ShardSize: 5}, eachOf(rs)); err != nil {
		t.Fatalf("Export: %v", err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, SummaryFile))

	// An export that fails half way leaves the earlier outputs as they were.
	boom := errors.New("disk on fire")
	calls := 0
	failing := func(fn func(Result) error) error {
		calls++
		for i, r := range rs {
			if calls == 2 && i == 30 {
				return boom
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	}
	if _, err := Export(ctx, ExportOptions{Dir: dir, Images: images}, failing); !errors.Is(err, boom) {
		t.Fatalf("Export(failing source) err = %v, want %v", err, boom)
	}
	after, _ := os.ReadFile(filepath.Join(dir, SummaryFile))
	if !bytes.Equal(before, after) {
		t.Error("a failed export changed summary.json")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".export-*")); len(m) != 0 {
		t.Errorf("a failed export left %v", m)
	}

	// Cancelled while reading images.
	cctx, cancel := context.WithCancel(ctx)
	cancelling := func(ctx context.Context, r Result) ([]byte, string, error) { cancel(); return nil, "", ctx.Err() }
	if _, err := Export(cctx, ExportOptions{Dir: dir, Images: cancelling}, eachOf(rs)); !errors.Is(err, context.Canceled) {
		t.Errorf("Export(cancelled) err = %v, want context.Canceled", err)
	}

	// A new export without images replaces everything, shards included.
	sum, err := Export(ctx, ExportOptions{Dir: dir, Threshold: &min}, eachOf(rs))
	if err != nil {
		t.Fatalf("Export(no images): %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ShardsDir)); !os.IsNotExist(err) {
		t.Errorf("old shards still there after an export without images: %v", err)
	}
	if sum.Shards != 0 || sum.Threshold == nil || *sum.Threshold != min || slices.Contains(sum.Files, ShardsDir+"/") {
		t.Errorf("summary = %+v", sum)
	}

	if _, err := Export(ctx, ExportOptions{Dir: dir, KeepFraction: 1.5}, eachOf(rs)); err == nil {
		t.Error("Export(keep fraction 1.5) succeeded, want an error")
	}
	if _, err := Export(ctx, ExportOptions{}, eachOf(rs)); err == nil {
		t.Error("Export(no folder) succeeded, want an error")
	}
}

func TestExportEmptyRun(t *testing.T) {
	dir := t.TempDir()
	sum, err := Export(context.Background(), ExportOptions{Dir: dir, KeepFraction: 0.3}, eachOf(nil))
	if err != nil {
		t.Fatalf("Export(no results): %v", err)
	}
	if sum.Total != 0 || sum.Kept != 0 || sum.UIDs != 0 {
		t.Errorf("summary = %+v", sum)
	}
	b, err := os.ReadFile(filepath.Join(dir, UIDsFile))
	if err != nil || len(b) != 128 && len(b) != 64 || !bytes.Contains(b, []byte("'shape': (0,)")) {
		t.Errorf("empty uids.npy = %q, %v", b, err)
	}
}

func TestNpyHeaderAlignment(t *testing.T) {
	for _, n := range []int{0, 1, 9, 10, 12345, 1 << 40} {
		h := npyHeader(n)
		if len(h)%64 != 0 || h[len(h)-1] != '\n' || int(binary.LittleEndian.Uint16(h[8:10])) != len(h)-10 {
			t.Errorf("npyHeader(%d) = %q: length %d", n, h, len(h))
		}
	}
}
