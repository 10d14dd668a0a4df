package pipeline

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// testJPEG returns a small real JPEG file.
func testJPEG(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, testPicture(), nil); err != nil {
		t.Fatalf("encode JPEG: %v", err)
	}
	return b.Bytes()
}

// testPNG returns a small real PNG file.
func testPNG(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, testPicture()); err != nil {
		t.Fatalf("encode PNG: %v", err)
	}
	return b.Bytes()
}

// testPicture is a 16×12 gradient.
func testPicture() image.Image {
	img := image.NewRGBA(image.Rect(0, 0, 16, 12))
	for y := range 12 {
		for x := range 16 {
			img.Set(x, y, color.RGBA{uint8(x * 16), uint8(y * 20), 128, 255})
		}
	}
	return img
}

// writeFiles writes name → content under dir, making folders as needed.
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// openOnly opens spec, which must give one source.
func openOnly(t testing.TB, spec string, opts SourceOptions) Source {
	t.Helper()
	srcs, err := Open(spec, opts)
	if err != nil {
		t.Fatalf("Open(%q): %v", spec, err)
	}
	if len(srcs) != 1 {
		t.Fatalf("Open(%q) gave %d sources, want 1", spec, len(srcs))
	}
	return srcs[0]
}

// collect reads all items of src.
func collect(t testing.TB, src Source) ([]Item, error) {
	t.Helper()
	var items []Item
	err := src.Items(context.Background(), func(it Item) error {
		items = append(items, it)
		return nil
	})
	return items, err
}

// wantItem is what a test expects of one item.
type wantItem struct {
	Key, UID, URL, Caption string
	Image                  []byte // compared when not nil
	Extra                  map[string]string
	Reason                 Reason
}

// checkItems compares items with want, key by key.
func checkItems(t *testing.T, src Source, items []Item, want []wantItem) {
	t.Helper()
	if len(items) != len(want) {
		keys := make([]string, len(items))
		for i, it := range items {
			keys[i] = it.Key
		}
		t.Fatalf("got %d items %q, want %d", len(items), keys, len(want))
	}
	for i, w := range want {
		it := items[i]
		if it.Source != src.Name() {
			t.Errorf("item %d: Source = %q, want %q", i, it.Source, src.Name())
		}
		if it.Key != w.Key {
			t.Errorf("item %d: Key = %q, want %q", i, it.Key, w.Key)
			continue
		}
		var reason Reason
		if it.Err != nil {
			reason = it.Err.Reason
		}
		if reason != w.Reason {
			t.Errorf("%s: reason %q (%v), want %q", w.Key, reason, it.Err, w.Reason)
		}
		if w.Reason != "" {
			continue
		}
		if it.UID != w.UID || it.URL != w.URL || it.Caption != w.Caption {
			t.Errorf("%s: UID, URL, Caption = %q, %q, %q, want %q, %q, %q", w.Key, it.UID, it.URL, it.Caption, w.UID, w.URL, w.Caption)
		}
		if w.Image != nil && !bytes.Equal(it.Image, w.Image) {
			t.Errorf("%s: %d image bytes, not the %d of the file", w.Key, len(it.Image), len(w.Image))
		}
		if w.Image == nil && it.Image != nil {
			t.Errorf("%s: Image has %d bytes, want nil", w.Key, len(it.Image))
		}
		if !maps.Equal(it.Extra, w.Extra) {
			t.Errorf("%s: Extra = %v, want %v", w.Key, it.Extra, w.Extra)
		}
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"folder/a.txt":     "x",
		"s/00000.tar":      "",
		"s/00001.tar":      "",
		"list.CSV":         "url,caption\n",
		"list.tsv":         "url\tcaption\n",
		"list.jsonl":       "",
		"list.json":        "",
		"list.parquet":     "",
		"notes.md":         "",
		"folder.tar/x.txt": "", // a folder named like a shard is a folder
	})
	t.Chdir(dir)
	tests := []struct {
		spec     string
		wantType string // of each source, as %T
		wantN    int
		wantErr  string
	}{
		{"folder", "*pipeline.folderSource", 1, ""},
		{"folder.tar", "*pipeline.folderSource", 1, ""},
		{"s/{00000..00001}.tar", "*pipeline.tarSource", 2, ""},
		{"list.CSV", "*pipeline.tableSource", 1, ""},
		{"list.{tsv,jsonl,json}", "*pipeline.tableSource", 3, ""},
		{"list.parquet", "*pipeline.parquetSource", 1, ""},
		{"file://" + filepath.ToSlash(filepath.Join(dir, "list.parquet")), "*pipeline.parquetSource", 1, ""},
		{"http://127.0.0.1:1/list.csv?x=1", "*pipeline.remoteTableSource", 1, ""},
		{"notes.md", "", 0, "open notes.md: unknown dataset type"},
		{"s/{00000..00002}.tar", "", 0, "open s/00002.tar: no such file or folder"},
		{"s/{0..", "", 0, "unmatched '{'"},
		{"http://127.0.0.1:1/x.tar", "", 0, "unsupported remote dataset"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			srcs, err := Open(tt.spec, SourceOptions{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Open(%q) error = %v, want one containing %q", tt.spec, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q): %v", tt.spec, err)
			}
			if len(srcs) != tt.wantN {
				t.Fatalf("Open(%q) gave %d sources, want %d", tt.spec, len(srcs), tt.wantN)
			}
			for _, s := range srcs {
				if got := typeName(s); got != tt.wantType {
					t.Errorf("Open(%q) gave a %s, want a %s", tt.spec, got, tt.wantType)
				}
				if !isHTTP(s.Name()) && (!filepath.IsAbs(s.Name()) || filepath.Clean(s.Name()) != s.Name()) {
					t.Errorf("Open(%q): Name() = %q, want an absolute clean path", tt.spec, s.Name())
				}
			}
		})
	}
}

// typeName returns the dynamic type of s as %T writes it.
func typeName(s Source) string {
	switch s.(type) {
	case *folderSource:
		return "*pipeline.folderSource"
	case *tarSource:
		return "*pipeline.tarSource"
	case *tableSource:
		return "*pipeline.tableSource"
	case *parquetSource:
		return "*pipeline.parquetSource"
	case *remoteTableSource:
		return "*pipeline.remoteTableSource"
	}
	return "?"
}

func TestFolderSource(t *testing.T) {
	dir := t.TempDir()
	jpg, pngb := string(testJPEG(t)), string(testPNG(t))
	writeFiles(t, dir, map[string]string{
		"b.jpg":             jpg,
		"b.txt":             "a latte on a table\n",
		"a.PNG":             pngb,
		"a.json":            `{"caption": "a red square", "uid": "u1", "width": 16, "tags": ["x", "y"], "ok": true}`,
		"c.jpeg":            jpg,
		"d.webp":            "not really a webp", // bytes pass through; decoding is the runner's
		"d.txt":             "  ",
		"e.jpg":             jpg,
		"e.json":            `{"caption": `,
		"nested/deep/f.jpg": jpg,
		"nested/deep/f.txt": "deep",
		"nested/g.gif":      jpg,
		"nested/g.txt":      "both",
		"nested/g.json":     `{"caption": "the json one", "source": "web"}`,
		"h.jpg":             jpg,
		"h.png":             pngb,
		"h.txt":             "two images",
		"readme.txt":        "no image here",
		"big.bmp":           strings.Repeat("x", 2000),
		"big.txt":           "too large",
		".hidden/i.jpg":     jpg,
		".j.jpg":            jpg,
	})
	src := openOnly(t, dir, SourceOptions{MaxImageBytes: 1500})
	if src.Name() != dir {
		t.Errorf("Name() = %q, want %q", src.Name(), dir)
	}
	items, err := collect(t, src)
	if err != nil {
		t.Fatalf("Items: %v", err)
	}
	checkItems(t, src, items, []wantItem{
		{Key: "a", UID: "u1", Caption: "a red square", Image: []byte(pngb), Extra: map[string]string{"width": "16", "tags": `["x","y"]`, "ok": "true"}},
		{Key: "b", Caption: "a latte on a table", Image: []byte(jpg)},
		{Key: "big", Reason: ReasonTooLarge},
		{Key: "c", Reason: ReasonBadCaption},
		{Key: "d", Reason: ReasonBadCaption},
		{Key: "e", Reason: ReasonBadCaption},
		{Key: "h", Caption: "two images", Image: []byte(jpg)},
		{Key: "h", Reason: ReasonDuplicate},
		{Key: "nested/deep/f", Caption: "deep", Image: []byte(jpg)},
		{Key: "nested/g", Caption: "both", Image: []byte(jpg), Extra: map[string]string{"caption": "the json one", "source": "web"}},
	})
}

func TestFolderSourceCaptionColumn(t *testing.T) {
	dir := t.TempDir()
	jpg := string(testJPEG(t))
	writeFiles(t, dir, map[string]string{
		"a.jpg":  jpg,
		"a.json": `{"caption": "short", "long_caption": "a longer description"}`,
	})
	items, err := collect(t, openOnly(t, dir, SourceOptions{CaptionColumn: "long_caption"}))
	if err != nil {
		t.Fatalf("Items: %v", err)
	}
	if len(items) != 1 || items[0].Caption != "a longer description" || items[0].Extra["caption"] != "short" {
		t.Errorf("items = %+v, want the long_caption field as the caption", items)
	}
}

func TestCSVSource(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"data/list.csv": "\ufeffuid,filepath,caption,license\n" +
			"1,img/a.jpg,a cat,cc-by\n" +
			"2,/abs/b.png,\"a dog, running\",cc0\n" +
			"3,https://example.test/c.jpg,\"multi\nline\",\n" +
			"4,,no path,x\n" +
			"5,d.jpg,,x\n" +
			"6,e.jpg,bad \"quote,x\n" +
			"7,f.jpg,short row\n" +
			"8,g.jpg,after the bad rows,y\n",
	})
	src := openOnly(t, filepath.Join(dir, "data", "list.csv"), SourceOptions{})
	items, err := collect(t, src)
	if err != nil {
		t.Fatalf("Items: %v", err)
	}
	data := filepath.Join(dir, "data")
	checkItems(t, src, items, []wantItem{
		{Key: "row-0", UID: "1", URL: filepath.Join(data, "img", "a.jpg"), Caption: "a cat", Extra: map[string]string{"license": "cc-by"}},
		{Key: "row-1", UID: "2", URL: "/abs/b.png", Caption: "a dog, running", Extra: map[string]string{"license": "cc0"}},
		{Key: "row-2", UID: "3", URL: "https://example.test/c.jpg", Caption: "multi\nline", Extra: map[string]string{"license": ""}},
		{Key: "row-3", Reason: ReasonNotFound},
		{Key: "row-4", Reason: ReasonBadCaption},
		{Key: "row-5", Reason: ReasonCorrupt},
		{Key: "row-6", Reason: ReasonCorrupt},
		{Key: "row-7", UID: "8", URL: filepath.Join(data, "g.jpg"), Caption: "after the bad rows", Extra: map[string]string{"license": "y"}},
	})
}

func TestTableHeaderErrors(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"nourl.csv":     "name,caption\na,b\n",
		"nocaption.tsv": "url\talt\na\tb\n",
		"empty.csv":     "",
	})
	tests := []struct {
		file, opt, want string
	}{
		{"nourl.csv", "", "no url or path or image or filepath column (the columns are name, caption)"},
		{"nourl.csv", "link", "no link column"},
		{"nocaption.tsv", "", "no caption or text column (the columns are url, alt)"},
		{"empty.csv", "", "empty file"},
	}
	for _, tt := range tests {
		t.Run(tt.file+tt.opt, func(t *testing.T) {
			src := openOnly(t, filepath.Join(dir, tt.file), SourceOptions{URLColumn: tt.opt})
			_, err := collect(t, src)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), src.Name()) {
				t.Errorf("Items error = %v, want one naming %s and containing %q", err, src.Name(), tt.want)
			}
		})
	}
}

func TestTSVSource(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"list.tsv": "image\ttext\tscore\n" +
			"http://127.0.0.1/a.jpg\ta \"quoted\" word\t0.5\n" +
			"b.jpg\ttab-free caption\t0.25\n",
	})
	src := openOnly(t, filepath.Join(dir, "list.tsv"), SourceOptions{})
	items, err := collect(t, src)
	if err != nil {
		t.Fatalf("Items: %v", err)
	}
	checkItems(t, src, items, []wantItem{
		{Key: "row-0", URL: "http://127.0.0.1/a.jpg", Caption: `a "quoted" word`, Extra: map[string]string{"score": "0.5"}},
		{Key: "row-1", URL: filepath.Join(dir, "b.jpg"), Caption: "tab-free caption", Extra: map[string]string{"score": "0.25"}},
	})
}

func TestJSONLSource(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("x", 300)
	writeFiles(t, dir, map[string]string{
		"list.jsonl": `{"url": "a.jpg", "caption": "first", "uid": 12, "meta": {"w": 1}}` + "\n" +
			`{"url": "b.jpg", "caption": "broken` + "\n" +
			"\n" +
			`{"path": "c.jpg", "text": "third", "nsfw": null}` + "\r\n" +
			`["not", "an", "object"]` + "\n" +
			`{"url": "d.jpg", "caption": "` + long + `"}` + "\n" +
			`{"url": "e.jpg", "caption": "` + long + long + long + long + `"}` + "\n" +
			`{"url": "f.jpg", "caption": "\ud800 lone surrogate is replaced, so valid"}` + "\n" +
			`{"caption": "no url"}` + "\n" +
			`{"url": "g.jpg", "caption": "last, no newline"}`,
	})
	src := openOnly(t, filepath.Join(dir, "list.jsonl"), SourceOptions{MaxCaptionBytes: 400})
	// The line cap is MaxCaptionBytes + maxSidecarJSON; shrink nothing else.
	items, err := collect(t, src)
	if err != nil {
		t.Fatalf("Items: %v", err)
	}
	checkItems(t, src, items, []wantItem{
		{Key: "row-0", UID: "12", URL: filepath.Join(dir, "a.jpg"), Caption: "first", Extra: map[string]string{"meta": `{"w":1}`}},
		{Key: "row-1", Reason: ReasonCorrupt},
		{Key: "row-2", URL: filepath.Join(dir, "c.jpg"), Caption: "third", Extra: map[string]string{"nsfw": ""}},
		{Key: "row-3", Reason: ReasonCorrupt},
		{Key: "row-4", URL: filepath.Join(dir, "d.jpg"), Caption: long},
		{Key: "row-5", Reason: ReasonBadCaption},
		{Key: "row-6", URL: filepath.Join(dir, "f.jpg"), Caption: "\ufffd lone surrogate is replaced, so valid"},
		{Key: "row-7", Reason: ReasonNotFound},
		{Key: "row-8", URL: filepath.Join(dir, "g.jpg"), Caption: "last, no newline"},
	})
}

func TestJSONLLongLine(t *testing.T) {
	dir := t.TempDir()
	huge := strings.Repeat("y", DefaultMaxCaptionBytes+maxSidecarJSON+10)
	writeFiles(t, dir, map[string]string{
		"list.jsonl": `{"url": "a.jpg", "caption": "` + huge + `"}` + "\n" + `{"url": "b.jpg", "caption": "fine"}` + "\n",
	})
	src := openOnly(t, filepath.Join(dir, "list.jsonl"), SourceOptions{})
	items, err := collect(t, src)
	if err != nil {
		t.Fatalf("Items: %v", err)
	}
	checkItems(t, src, items, []wantItem{
		{Key: "row-0", Reason: ReasonCorrupt},
		{Key: "row-1", URL: filepath.Join(dir, "b.jpg"), Caption: "fine"},
	})
}

func TestJSONArraySource(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"list.json": "\ufeff [\n" + `{"url": "a.jpg", "caption": "one"}, 7, {"url": "b.jpg", "caption": "two", "n": 1.5}` + "\n]\n",
		"bad.json":  `[{"url": "a.jpg", "caption": "one"}, {"url": `,
	})
	src := openOnly(t, filepath.Join(dir, "list.json"), SourceOptions{})
	items, err := collect(t, src)
	if err != nil {
		t.Fatalf("Items: %v", err)
	}
	checkItems(t, src, items, []wantItem{
		{Key: "row-0", URL: filepath.Join(dir, "a.jpg"), Caption: "one"},
		{Key: "row-1", Reason: ReasonCorrupt},
		{Key: "row-2", URL: filepath.Join(dir, "b.jpg"), Caption: "two", Extra: map[string]string{"n": "1.5"}},
	})

	bad := openOnly(t, filepath.Join(dir, "bad.json"), SourceOptions{})
	items, err = collect(t, bad)
	if len(items) != 1 || err == nil || !strings.Contains(err.Error(), bad.Name()) || !strings.Contains(err.Error(), "row-1") {
		t.Errorf("Items of a broken array = %d items, %v; want 1 and an error naming the file and row-1", len(items), err)
	}
}

// parquetRow is the schema of the test Parquet file.
type parquetRow struct {
	URL     string   `parquet:"url"`
	Caption []byte   `parquet:"caption"`
	UID     string   `parquet:"uid"`
	Width   int32    `parquet:"width"`
	Bytes   int64    `parquet:"bytes"`
	Sim     float64  `parquet:"similarity"`
	Sim32   float32  `parquet:"sim32"`
	NSFW    *string  `parquet:"nsfw,optional"`
	Tags    []string `parquet:"tags,list"`
}

func TestParquetSource(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "part-0.parquet")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewGenericWriter[parquetRow](f, parquet.MaxRowsPerRowGroup(3))
	unlikely := "UNLIKELY"
	var rows []parquetRow
	for i := range 7 {
		rows = append(rows, parquetRow{
			URL: "img/" + string(rune('a'+i)) + ".jpg", Caption: []byte("caption " + string(rune('a'+i))),
			UID: "u" + string(rune('0'+i)), Width: int32(100 + i), Bytes: int64(1 << 40), Sim: 0.25, Sim32: 0.5,
		})
	}
	rows[1].NSFW = &unlikely
	rows[2].Tags = []string{"x", "y"}
	rows[4].Caption = []byte{0xff, 0xfe}
	rows[5].URL = "https://example.test/f.jpg"
	if _, err := w.Write(rows); err != nil {
		t.Fatalf("write parquet: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close parquet writer: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	src := openOnly(t, p, SourceOptions{})
	items, err := collect(t, src)
	if err != nil {
		t.Fatalf("Items: %v", err)
	}
	extra := func(width string, more ...string) map[string]string {
		m := map[string]string{"width": width, "bytes": "1099511627776", "similarity": "0.25", "sim32": "0.5"}
		for i := 0; i < len(more); i += 2 {
			m[more[i]] = more[i+1]
		}
		return m
	}
	checkItems(t, src, items, []wantItem{
		{Key: "row-0", UID: "u0", URL: filepath.Join(dir, "img", "a.jpg"), Caption: "caption a", Extra: extra("100")},
		{Key: "row-1", UID: "u1", URL: filepath.Join(dir, "img", "b.jpg"), Caption: "caption b", Extra: extra("101", "nsfw", "UNLIKELY")},
		{Key: "row-2", UID: "u2", URL: filepath.Join(dir, "img", "c.jpg"), Caption: "caption c", Extra: extra("102", "tags.list.element", "x,y")},
		{Key: "row-3", UID: "u3", URL: filepath.Join(dir, "img", "d.jpg"), Caption: "caption d", Extra: extra("103")},
		{Key: "row-4", Reason: ReasonBadCaption},
		{Key: "row-5", UID: "u5", URL: "https://example.test/f.jpg", Caption: "caption f", Extra: extra("105")},
		{Key: "row-6", UID: "u6", URL: filepath.Join(dir, "img", "g.jpg"), Caption: "caption g", Extra: extra("106")},
	})

	// Not a Parquet file: an error naming it.
	writeFiles(t, dir, map[string]string{"fake.parquet": "PAR1 but no"})
	fake := openOnly(t, filepath.Join(dir, "fake.parquet"), SourceOptions{})
	if _, err := collect(t, fake); err == nil || !strings.Contains(err.Error(), fake.Name()) {
		t.Errorf("Items of a fake Parquet file: error %v, want one naming it", err)
	}
}

func TestRemoteTableSource(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /lists/list.csv", func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.UserAgent(), "gata/") {
			http.Error(w, "bad agent "+r.UserAgent(), http.StatusForbidden)
			return
		}
		w.Write([]byte("url,caption\nimg/a.jpg,one\nhttps://example.test/b.jpg,two\n/c.jpg,three\n"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	src := openOnly(t, srv.URL+"/lists/list.csv", SourceOptions{})
	items, err := collect(t, src)
	if err != nil {
		t.Fatalf("Items: %v", err)
	}
	checkItems(t, src, items, []wantItem{
		{Key: "row-0", URL: srv.URL + "/lists/img/a.jpg", Caption: "one"},
		{Key: "row-1", URL: "https://example.test/b.jpg", Caption: "two"},
		{Key: "row-2", URL: srv.URL + "/c.jpg", Caption: "three"},
	})

	missing := openOnly(t, srv.URL+"/lists/missing.jsonl", SourceOptions{})
	if _, err := collect(t, missing); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("Items of a missing remote list: error %v, want a 404", err)
	}
}

func TestSourcesStop(t *testing.T) {
	dir := t.TempDir()
	jpg := string(testJPEG(t))
	writeFiles(t, dir, map[string]string{
		"folder/a.jpg": jpg, "folder/a.txt": "a", "folder/b.jpg": jpg, "folder/b.txt": "b",
		"list.csv":   "url,caption\na.jpg,a\nb.jpg,b\n",
		"list.jsonl": `{"url":"a","caption":"a"}` + "\n" + `{"url":"b","caption":"b"}` + "\n",
	})
	writeTar(t, filepath.Join(dir, "shard.tar"), []tarMember{
		{"a.jpg", jpg}, {"a.txt", "a"}, {"b.jpg", jpg}, {"b.txt", "b"},
	}, false)
	errStop := errors.New("enough")
	for _, name := range []string{"folder", "list.csv", "list.jsonl", "shard.tar"} {
		t.Run(name, func(t *testing.T) {
			src := openOnly(t, filepath.Join(dir, name), SourceOptions{})
			n := 0
			err := src.Items(context.Background(), func(Item) error { n++; return errStop })
			if !errors.Is(err, errStop) || n != 1 {
				t.Errorf("Items with a yield that fails: %d calls, error %v; want 1 and the yield's error", n, err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := src.Items(ctx, func(Item) error { return nil }); !errors.Is(err, context.Canceled) {
				t.Errorf("Items with a cancelled context: error %v, want context.Canceled", err)
			}
		})
	}
}

// FuzzJSONLSource checks that any JSON-lines file gives items or a source error, never a
// panic, and that every item either fails with a reason or has a URL and a valid caption.
func FuzzJSONLSource(f *testing.F) {
	f.Add([]byte(`{"url": "a.jpg", "caption": "x"}` + "\n" + `{"url": 1}` + "\n"))
	f.Add([]byte("[{\"url\": \"a\", \"caption\": \"b\"}, 3]"))
	f.Add([]byte("\ufeff{\"path\": \"a\", \"text\": \"\\u00e9\"}\r\n\n{"))
	f.Add([]byte(`{"url": "", "caption": "", "uid": null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, "fuzz.jsonl")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		src := &tableSource{path: p, ext: ".jsonl", opts: SourceOptions{MaxCaptionBytes: 64}.withDefaults()}
		_ = src.Items(context.Background(), func(it Item) error {
			if it.Err == nil && (it.URL == "" || checkCaption(it.Caption, 64) != nil) {
				t.Fatalf("item %s has no error but URL %q, caption %q", it.Key, it.URL, it.Caption)
			}
			if it.Err != nil && it.Err.Reason == "" {
				t.Fatalf("item %s fails without a reason: %v", it.Key, it.Err)
			}
			return nil
		})
	})
}
