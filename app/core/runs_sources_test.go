package core

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/gata-contrib/gata/dva/dvatest"
	"github.com/gata-contrib/gata/storage"
)

// pngBytes encodes a w×h gradient as PNG.
func pngBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 4), 128, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// hugeDeclaredPNG is a small PNG file whose header declares w×h pixels (a decompression bomb).
func hugeDeclaredPNG(t *testing.T, w, h uint32) []byte {
	b := pngBytes(t, 2, 2)
	// IHDR data starts after the 8-byte signature, 4-byte length and 4-byte type.
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

type member struct {
	name string
	data []byte
}

func writeShard(t *testing.T, path string, ms []member) {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, m := range ms {
		if err := tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(m.data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRunOverEverySourceKindAndBadItems scores one run over a folder, a CSV of local
// paths, a Parquet list of URLs on a loopback server and a WebDataset shard full of bad
// items, and checks that each item ends with the reason it deserves while the others score.
func TestRunOverEverySourceKindAndBadItems(t *testing.T) {
	ctx := context.Background()
	c, st := newTestCore(t)
	withValidate(t, c, nil)
	clip := dvatest.ClipDir(t)
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(clip, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cat, gray := read("chelsea.jpg"), read("camera_gray_224x229.png")
	root := t.TempDir()

	// A folder with sidecar captions.
	folder := filepath.Join(root, "folder")
	os.MkdirAll(filepath.Join(folder, "sub"), 0o755)
	os.WriteFile(filepath.Join(folder, "cat.jpg"), cat, 0o644)
	os.WriteFile(filepath.Join(folder, "cat.txt"), []byte("a tabby cat"), 0o644)
	os.WriteFile(filepath.Join(folder, "sub", "man.png"), gray, 0o644)
	os.WriteFile(filepath.Join(folder, "sub", "man.json"), []byte(`{"caption": "a man with a camera", "license": "cc-by"}`), 0o644)

	// A CSV of local paths, relative to the CSV, with an extra column and a missing file.
	table := filepath.Join(root, "table")
	os.MkdirAll(filepath.Join(table, "img"), 0o755)
	os.WriteFile(filepath.Join(table, "img", "a.jpg"), cat, 0o644)
	os.WriteFile(filepath.Join(table, "list.csv"), []byte("url,caption,lang\nimg/a.jpg,a cat on a chair,en\nimg/missing.jpg,nothing here,en\n"), 0o644)

	// A Parquet list of URLs served on 127.0.0.1: a photo, an opted-out one, a 404, a slow one.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok.jpg":
			w.Write(cat)
		case "/noai.jpg":
			w.Header().Set("X-Robots-Tag", "noai")
			w.Write(cat)
		case "/slow.jpg":
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	type row struct {
		URL     string `parquet:"url"`
		Caption string `parquet:"caption"`
		Width   int64  `parquet:"original_width"`
	}
	pq := filepath.Join(root, "urls.parquet")
	rows := []row{{srv.URL + "/ok.jpg", "a cat", 451}, {srv.URL + "/noai.jpg", "a cat, opted out", 451},
		{srv.URL + "/gone.jpg", "a missing cat", 1}, {srv.URL + "/slow.jpg", "a slow cat", 2}}
	if err := parquet.WriteFile(pq, rows); err != nil {
		t.Fatal(err)
	}

	// A WebDataset shard as img2dataset writes it, with every kind of bad item.
	png64 := pngBytes(t, 64, 64)
	shard := filepath.Join(root, "00000.tar")
	writeShard(t, shard, []member{
		{"000000000.jpg", cat}, {"000000000.txt", []byte("a cat looking up")}, {"000000000.json", []byte(`{"uid": "0123456789abcdef0123456789abcdef", "url": "http://example.invalid/cat.jpg"}`)},
		{"000000001.jpg", []byte("\xff\xd8\xff\xe0 this is no JPEG")}, {"000000001.txt", []byte("a corrupt jpeg")},
		{"000000002.png", png64[:len(png64)/2]}, {"000000002.txt", []byte("a truncated png")},
		{"000000003.png", hugeDeclaredPNG(t, 20000, 20000)}, {"000000003.txt", []byte("a decompression bomb")},
		{"000000004.jpg", cat}, {"000000004.txt", []byte("")},
		{"000000005.jpg", cat}, {"000000005.txt", []byte("caf\xe9 not utf-8")},
		{"000000006.png", gray}, {"000000006.txt", []byte("a man with a camera")},
		{"000000000.jpg", gray}, {"000000000.txt", []byte("the first key again")},
	})

	out := filepath.Join(root, "out")
	job, err := c.StartRun(ctx, RunRequest{Sources: []string{folder, filepath.Join(table, "list.csv"), pq, shard},
		Model: clip, Out: out, KeepTop: 0.5, FetchTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatalf("StartRun: %v", err)
	}
	info := waitJob(t, c, job)
	if info.State != JobDone {
		t.Fatalf("run ended %s: %s", info.State, info.Error)
	}
	id, _ := strconv.ParseInt(job.Subject, 10, 64)

	got := map[string]storage.DVAResult{}
	if err := st.EachResult(ctx, id, func(r storage.DVAResult) error {
		got[filepath.Base(r.Source)+"/"+r.Key] = r
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{ // item → reason ("" = scored)
		"folder/cat": "", "folder/sub/man": "",
		"list.csv/row-0": "", "list.csv/row-1": "not_found",
		"urls.parquet/row-0": "", "urls.parquet/row-1": "opted_out", "urls.parquet/row-2": "not_found", "urls.parquet/row-3": "timeout",
		"00000.tar/000000000": "", "00000.tar/000000001": "corrupt", "00000.tar/000000002": "corrupt",
		"00000.tar/000000003": "too_large", "00000.tar/000000004": "bad_caption", "00000.tar/000000005": "bad_caption",
		"00000.tar/000000006": "",
	}
	for k, reason := range want {
		r, ok := got[k]
		switch {
		case !ok:
			t.Errorf("%s: no result", k)
		case r.Reason != reason:
			t.Errorf("%s: reason %q (%s), want %q", k, r.Reason, r.Error, reason)
		case reason == "" && (r.Width == 0 || r.Height == 0 || r.UID == ""):
			t.Errorf("%s: scored without size or uid: %+v", k, r)
		case reason != "" && r.Error == "":
			t.Errorf("%s: failed with no message", k)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d results, want %d (the duplicate key dropped): %v", len(got), len(want), keysOf(got))
	}
	if r := got["00000.tar/000000000"]; r.Caption != "a cat looking up" {
		t.Errorf("duplicate key: the result has caption %q, want the first one's", r.Caption)
	}
	if r := got["00000.tar/000000000"]; r.UID != "0123456789abcdef0123456789abcdef" {
		t.Errorf("shard uid = %q, want the one in its JSON", r.UID)
	}
	if r := got["list.csv/row-0"]; r.Extra["lang"] != "en" {
		t.Errorf("CSV extra columns = %v, want lang carried through", r.Extra)
	}
	if r := got["folder/sub/man"]; r.Extra["license"] != "cc-by" {
		t.Errorf("sidecar JSON extra = %v, want license carried through", r.Extra)
	}

	res := info.Result.(*RunResult)
	if res.Stats.Duplicates != 1 || res.Summary.Scored != 6 || res.Stats.Reasons["too_large"] != 1 {
		t.Errorf("stats %+v, summary scored %d; want 1 duplicate, 6 scored, 1 too large", res.Stats, res.Summary.Scored)
	}
	for _, f := range []string{"scores.parquet", "uids.npy", "summary.json", "shards/00000.tar"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("output %s: %v", f, err)
		}
	}
}

func keysOf(m map[string]storage.DVAResult) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
