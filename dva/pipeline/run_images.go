package pipeline

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/gata-contrib/gata/dva/preprocess"
)

// SourceImages returns the ImageFunc of an export: it reads a result's image again from
// the source it came from, the tar shard or folder by key, a table's image by its URL
// through fetch. Shards are indexed once (member offsets only) and the last one is kept,
// since exports ask for images source by source.
func SourceImages(srcs []Source, fetch FetchFunc) ImageFunc {
	si := &sourceImages{byName: map[string]Source{}, fetch: fetch}
	for _, s := range srcs {
		si.byName[s.Name()] = s
	}
	return si.image
}

type sourceImages struct {
	byName map[string]Source
	fetch  FetchFunc

	mu       sync.Mutex
	tarPath  string
	tarIndex map[string]shardImage
}

// shardImage is where one key's image lies in a shard.
type shardImage struct {
	offset, size int64
	ext          string
}

func (si *sourceImages) image(ctx context.Context, r Result) ([]byte, string, error) {
	switch s := si.byName[r.Source].(type) {
	case *tarSource:
		return si.tarImage(s.path, r.Key)
	case *folderSource:
		return folderImage(s.dir, r.Key)
	}
	if r.URL == "" {
		return nil, "", fmt.Errorf("read image of %s: no URL and not from a shard or folder", r.Key)
	}
	if si.fetch == nil {
		return nil, "", fmt.Errorf("read image of %s: no fetcher", r.Key)
	}
	data, ierr := si.fetch(ctx, r.URL)
	if ierr != nil {
		return nil, "", fmt.Errorf("read image of %s: %w", r.Key, ierr)
	}
	return data, "", nil
}

// tarImage reads the first image member of key in the shard at path.
func (si *sourceImages) tarImage(path, key string) ([]byte, string, error) {
	si.mu.Lock()
	defer si.mu.Unlock()
	if si.tarPath != path {
		idx, err := indexShard(path)
		if err != nil {
			return nil, "", err
		}
		si.tarPath, si.tarIndex = path, idx
	}
	m, ok := si.tarIndex[key]
	if !ok {
		return nil, "", fmt.Errorf("read image of %s: no image member in %s", key, filepath.Base(path))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("read image of %s: %w", key, err)
	}
	defer f.Close()
	data := make([]byte, m.size)
	if _, err := f.ReadAt(data, m.offset); err != nil {
		return nil, "", fmt.Errorf("read image of %s: %w", key, err)
	}
	return data, m.ext, nil
}

// indexShard lists where the first image member of each key starts in a shard.
func indexShard(path string) (map[string]shardImage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", path, err)
	}
	defer f.Close()
	cr := &countingSeeker{f: f}
	tr := tar.NewReader(cr)
	idx := map[string]shardImage{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return idx, nil
		}
		if err != nil {
			// A broken shard: what was indexed before the break is still there.
			return idx, nil
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		key, ext := splitTarName(hdr.Name)
		if memberKind(ext) != "image" {
			continue
		}
		if _, ok := idx[key]; !ok {
			idx[key] = shardImage{offset: cr.pos, size: hdr.Size, ext: ext}
		}
	}
}

// countingSeeker tracks the position in a file that archive/tar reads and seeks through,
// so that after Next the position is where the member's data starts.
type countingSeeker struct {
	f   *os.File
	pos int64
}

func (c *countingSeeker) Read(p []byte) (int, error) {
	n, err := c.f.Read(p)
	c.pos += int64(n)
	return n, err
}

func (c *countingSeeker) Seek(off int64, whence int) (int64, error) {
	n, err := c.f.Seek(off, whence)
	if err == nil {
		c.pos = n
	}
	return n, err
}

// folderImage reads the image of key in the folder: the first file, in name order, whose
// name is the key and an image extension, as the folder source picked it.
func folderImage(dir, key string) ([]byte, string, error) {
	base := filepath.Join(dir, filepath.FromSlash(key))
	want := filepath.Base(base)
	var names []string
	// The usual spellings first: listing a large folder for every image would be slow.
	for _, ext := range preprocess.Extensions {
		for _, e := range []string{ext, strings.ToUpper(ext)} {
			if st, err := os.Stat(base + e); err == nil && !st.IsDir() {
				names = append(names, want+e)
			}
		}
	}
	if len(names) == 0 {
		entries, err := os.ReadDir(filepath.Dir(base))
		if err != nil {
			return nil, "", fmt.Errorf("read image of %s: %w", key, err)
		}
		for _, e := range entries {
			n := e.Name()
			if !e.IsDir() && strings.TrimSuffix(n, filepath.Ext(n)) == want && isImageName(n) {
				names = append(names, n)
			}
		}
	}
	if len(names) == 0 {
		return nil, "", fmt.Errorf("read image of %s: no image file in %s", key, filepath.Dir(base))
	}
	sort.Strings(names)
	p := filepath.Join(filepath.Dir(base), names[0])
	data, ierr := readCapped(p, preprocess.DefaultLimits().MaxBytes)
	if ierr != nil {
		return nil, "", fmt.Errorf("read image of %s: %w", key, ierr)
	}
	return data, strings.ToLower(strings.TrimPrefix(filepath.Ext(p), ".")), nil
}
