package pipeline

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/gata-contrib/gata/dva/dvatest"
)

// TestSourceImages reads back the images of a shard, a folder and a table as exports ask
// for them.
func TestSourceImages(t *testing.T) {
	dir := t.TempDir()
	jpg, png := dvatest.Photo(t, "coffee.jpg"), dvatest.Photo(t, "chelsea.png")

	shard := filepath.Join(dir, "shard.tar")
	if err := os.WriteFile(shard, dvatest.TarBytes(t,
		dvatest.TarMember{Name: "000000.jpg", Data: string(jpg)},
		dvatest.TarMember{Name: "000000.txt", Data: "a coffee"},
		dvatest.TarMember{Name: "part/000001.png", Data: string(png)},
		dvatest.TarMember{Name: "part/000001.txt", Data: "a cat"},
		dvatest.TarMember{Name: "part/000001.jpg", Data: string(jpg)}, // a second image of the key: the first counts
	), 0o644); err != nil {
		t.Fatal(err)
	}
	folder := filepath.Join(dir, "folder")
	os.MkdirAll(filepath.Join(folder, "sub"), 0o755)
	os.WriteFile(filepath.Join(folder, "sub", "cat.PNG"), png, 0o644)
	os.WriteFile(filepath.Join(folder, "cup.jpg"), jpg, 0o644)

	srcs := []Source{&tarSource{path: shard}, &folderSource{dir: folder}}
	fetch := func(ctx context.Context, url string) ([]byte, *ItemError) {
		if url == "/abs/cup.jpg" {
			return jpg, nil
		}
		return nil, Fail(ReasonNotFound, "no %s", url)
	}
	images := SourceImages(srcs, fetch)
	tests := []struct {
		r       Result
		want    []byte
		wantExt string
		wantErr bool
	}{
		{r: Result{Source: shard, Key: "000000", URL: "http://127.0.0.1:1/ignored.jpg"}, want: jpg, wantExt: "jpg"},
		{r: Result{Source: shard, Key: "part/000001"}, want: png, wantExt: "png"},
		{r: Result{Source: shard, Key: "missing"}, wantErr: true},
		{r: Result{Source: folder, Key: "sub/cat"}, want: png, wantExt: "png"},
		{r: Result{Source: folder, Key: "cup"}, want: jpg, wantExt: "jpg"},
		{r: Result{Source: folder, Key: "nope"}, wantErr: true},
		{r: Result{Source: "/abs/list.csv", Key: "row-0", URL: "/abs/cup.jpg"}, want: jpg},
		{r: Result{Source: "/abs/list.csv", Key: "row-1", URL: "/abs/gone.jpg"}, wantErr: true},
		{r: Result{Source: "/abs/list.csv", Key: "row-2"}, wantErr: true},
	}
	for _, tt := range tests {
		data, ext, err := images(context.Background(), tt.r)
		if (err != nil) != tt.wantErr {
			t.Errorf("image(%s %s) error = %v, want error %v", tt.r.Source, tt.r.Key, err, tt.wantErr)
			continue
		}
		if !bytes.Equal(data, tt.want) || ext != tt.wantExt {
			t.Errorf("image(%s %s) = %d bytes, %q; want %d bytes, %q", tt.r.Source, tt.r.Key, len(data), ext, len(tt.want), tt.wantExt)
		}
	}
}
