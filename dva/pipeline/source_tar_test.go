package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gata-contrib/gata/dva/dvatest"
	"github.com/gata-contrib/gata/dva/internal/refdata"
)

// tarMember is one file of a test shard.
type tarMember struct {
	name, data string
}

// tarBytes returns a tar archive of members, in order (dvatest.TarBytes).
func tarBytes(t testing.TB, members []tarMember) []byte {
	t.Helper()
	ms := make([]dvatest.TarMember, len(members))
	for i, m := range members {
		ms[i] = dvatest.TarMember{Name: m.name, Data: m.data}
	}
	return dvatest.TarBytes(t, ms...)
}

// writeTar writes a shard of members at p; truncated cuts it in the middle of the last
// member's data.
func writeTar(t testing.TB, p string, members []tarMember, truncated bool) {
	t.Helper()
	data := tarBytes(t, members)
	if truncated {
		last := members[len(members)-1]
		// The archive ends with the last member's data padded to 512 bytes, then 1024 zeros.
		end := len(data) - 1024 - (512-len(last.data)%512)%512
		data = data[:end-len(last.data)/2]
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// img2datasetJSON returns the JSON sidecar img2dataset writes for a key.
func img2datasetJSON(t testing.TB, key, url, caption string, more map[string]any) string {
	t.Helper()
	m := map[string]any{"url": url, "key": key, "status": "success", "error_message": nil, "width": 16, "height": 12}
	if caption != "" {
		m["caption"] = caption
	}
	for k, v := range more {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTarSource(t *testing.T) {
	dir := t.TempDir()
	jpg, pngb := string(testJPEG(t)), string(testPNG(t))
	corrupt := jpg[:len(jpg)/3] // a JPEG cut short: bytes pass through, decoding fails later
	js := func(key, caption string, more map[string]any) string {
		return img2datasetJSON(t, key, "https://example.test/"+key+".jpg", caption, more)
	}
	members := []tarMember{
		{"000000000.jpg", jpg}, {"000000000.txt", "a latte on a table"}, {"000000000.json", js("000000000", "a latte on a table", nil)},
		{"000000001.png", pngb}, {"000000001.txt", "a gradient\n"}, {"000000001.json", js("000000001", "", map[string]any{"uid": "abc123"})},
		{"000000002.jpg", corrupt}, {"000000002.txt", "cut short"},
		{"000000003.jpg", jpg}, {"000000003.txt", ""},
		{"000000004.jpg", jpg}, {"000000004.txt", "caf\xe9 latin-1"},
		{"000000005.txt", "no image"}, {"000000005.json", js("000000005", "no image", nil)},
		{"000000006.jpg", jpg}, {"000000006.json", js("000000006", "caption from json", nil)}, {"000000006.cls", "3"},
		{"000000007.jpg", jpg}, // neither txt nor a caption in JSON
		{"000000000.jpg", jpg}, {"000000000.txt", "again"},
		{"sub/000000008.jpeg", jpg}, {"sub/000000008.txt", "in a folder"},
		{"000000009.webp", strings.Repeat("w", 3000)}, {"000000009.txt", "too big"},
		{"000000010.jpg", jpg}, {"000000010.txt", strings.Repeat("c", 200)},
		{"000000011.jpg", jpg}, {"000000011.txt", "cut off here"},
		{"000000012.jpg", jpg}, {"000000012.txt", "this member's data is cut in half"},
	}
	p := filepath.Join(dir, "00000.tar")
	writeTar(t, p, members, true)
	src := openOnly(t, p, SourceOptions{MaxImageBytes: 2500, MaxCaptionBytes: 100})
	items, err := collect(t, src)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "truncated") || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Items error = %v, want one naming %s as truncated", err, p)
	}
	info := func(key string) map[string]string {
		return map[string]string{"key": key, "status": "success", "error_message": "", "width": "16", "height": "12"}
	}
	checkItems(t, src, items, []wantItem{
		{Key: "000000000", URL: "https://example.test/000000000.jpg", Caption: "a latte on a table", Image: []byte(jpg),
			Extra: map[string]string{"key": "000000000", "status": "success", "error_message": "", "width": "16", "height": "12", "caption": "a latte on a table"}},
		{Key: "000000001", UID: "abc123", URL: "https://example.test/000000001.jpg", Caption: "a gradient", Image: []byte(pngb), Extra: info("000000001")},
		{Key: "000000002", Caption: "cut short", Image: []byte(corrupt)},
		{Key: "000000003", Reason: ReasonBadCaption},
		{Key: "000000004", Reason: ReasonBadCaption},
		{Key: "000000005", Reason: ReasonNotFound},
		{Key: "000000006", URL: "https://example.test/000000006.jpg", Caption: "caption from json", Image: []byte(jpg), Extra: info("000000006")},
		{Key: "000000007", Reason: ReasonBadCaption},
		{Key: "000000000", Reason: ReasonDuplicate},
		{Key: "sub/000000008", Caption: "in a folder", Image: []byte(jpg)},
		{Key: "000000009", Reason: ReasonTooLarge},
		{Key: "000000010", Reason: ReasonBadCaption},
		{Key: "000000011", Caption: "cut off here", Image: []byte(jpg)},
		{Key: "000000012", Reason: ReasonCorrupt},
	})
}

func TestTarSourceSharedImages(t *testing.T) {
	clip := refdata.Clip(t)
	coffee, err := os.ReadFile(filepath.Join(clip, "coffee.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	chelsea, err := os.ReadFile(filepath.Join(clip, "chelsea.png"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "shard.tar")
	writeTar(t, p, []tarMember{
		{"./a.jpg", string(coffee)}, {"./a.txt", "Café con leche is love!"},
		{"./b.png", string(chelsea)}, {"./b.txt", "a cat"},
	}, false)
	src := openOnly(t, p, SourceOptions{})
	items, err := collect(t, src)
	if err != nil {
		t.Fatalf("Items: %v", err)
	}
	checkItems(t, src, items, []wantItem{
		{Key: "a", Caption: "Café con leche is love!", Image: coffee},
		{Key: "b", Caption: "a cat", Image: chelsea},
	})
}

func TestTarSourceNotATar(t *testing.T) {
	p := filepath.Join(t.TempDir(), "junk.tar")
	if err := os.WriteFile(p, bytes.Repeat([]byte("not a tar "), 100), 0o644); err != nil {
		t.Fatal(err)
	}
	items, err := collect(t, openOnly(t, p, SourceOptions{}))
	if len(items) != 0 || err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("Items of junk: %d items, error %v; want none and an error naming the file", len(items), err)
	}
}

// FuzzTarSource checks that any bytes give items or a source error, never a panic, and
// that every item has a key and either fails with a reason or has an image and a caption.
func FuzzTarSource(f *testing.F) {
	f.Add(tarBytes(f, []tarMember{{"a.jpg", "\xff\xd8\xff"}, {"a.txt", "cap"}, {"a.json", `{"uid": "1"}`}}))
	f.Add(tarBytes(f, []tarMember{{"a.txt", "x"}, {"b.jpg", "y"}, {"a.jpg", "z"}, {"a.txt", ""}}))
	f.Add(tarBytes(f, []tarMember{{"d/x.y.png", "p"}, {"d/x.json", `{"caption": "c", "url": 3}`}})[:700])
	f.Fuzz(func(t *testing.T, data []byte) {
		src := &tarSource{path: "/fuzz.tar", opts: SourceOptions{MaxImageBytes: 1 << 16, MaxCaptionBytes: 64}.withDefaults()}
		_ = src.read(context.Background(), bytes.NewReader(data), func(it Item) error {
			if it.Err == nil && (it.Image == nil || checkCaption(it.Caption, 64) != nil) {
				t.Fatalf("item %s has no error but %d image bytes, caption %q", it.Key, len(it.Image), it.Caption)
			}
			if it.Err != nil && it.Err.Reason == "" {
				t.Fatalf("item %s fails without a reason: %v", it.Key, it.Err)
			}
			return nil
		})
	})
}
