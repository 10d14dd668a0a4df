package pipeline

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestSourceImages reads back the images of a shard, a folder and a table as exports ask
// for them.
func TestSourceImages(t *testing.T) {
	dir := t.TempDir()
	jpg, png := readPhoto(t, "coffee.jpg"), readPhoto(t, "chelsea.png")

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	add("000000.jpg", jpg)
	add("000000.txt", []byte("a coffee"))
	add("part/000001.png", png)
	add("part/000001.txt", []byte("a cat"))
	add("part/000001.jpg", jpg) // a second image of the key: the first counts
	tw.Close()
	shard := filepath.Join(dir, "shard.tar")
	if err := os.WriteFile(shard, buf.Bytes(), 0o644); err != nil {
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
