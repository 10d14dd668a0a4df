package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// maxSidecarJSON caps a sidecar JSON file (of a folder image or a tar key) beyond the
// caption limit: the caption plus this much of other fields.
const maxSidecarJSON = 1 << 20

// folderSource reads a folder of images with sidecar captions: x.jpg with x.txt, or with
// x.json holding a caption field and other fields for Extra. Subfolders are walked in
// sorted order; names starting with a dot are skipped.
type folderSource struct {
	dir  string // absolute
	opts SourceOptions
}

// Name returns the folder's absolute path.
func (s *folderSource) Name() string { return s.dir }

// Items yields one item per image file, its Key the path relative to the folder without
// the extension, with slashes.
func (s *folderSource) Items(ctx context.Context, yield func(Item) error) error {
	seen := make(map[string]bool)
	var stop error // from yield or ctx, returned as it is
	err := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if stop = ctx.Err(); stop != nil {
			return stop
		}
		if p != s.dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !isImageName(d.Name()) {
			return nil
		}
		rel, err := filepath.Rel(s.dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		it := Item{Source: s.dir, Key: strings.TrimSuffix(rel, filepath.Ext(rel))}
		if seen[it.Key] {
			it.Err = Fail(ReasonDuplicate, "%s: another image has the key %s", rel, it.Key)
		} else {
			seen[it.Key] = true
			s.fill(&it, p)
		}
		stop = yield(it)
		return stop
	})
	if err != nil && stop == nil {
		return fmt.Errorf("read %s: %w", s.dir, err)
	}
	return err
}

// fill reads the image at p and its sidecars into it.
func (s *folderSource) fill(it *Item, p string) {
	base := strings.TrimSuffix(p, filepath.Ext(p))
	img, ierr := readCapped(p, s.opts.MaxImageBytes)
	if ierr != nil {
		it.Err = ierr
		return
	}
	if len(img) == 0 {
		it.Err = Fail(ReasonCorrupt, "%s is empty", filepath.Base(p))
		return
	}
	it.Image = img

	txt, txtErr := readCapped(base+".txt", int64(s.opts.MaxCaptionBytes))
	js, jsErr := readCapped(base+".json", int64(s.opts.MaxCaptionBytes)+maxSidecarJSON)
	hasTxt, hasJSON := txtErr == nil, jsErr == nil
	for _, e := range []*ItemError{txtErr, jsErr} {
		if e != nil && e.Reason != ReasonNotFound {
			it.Err = Fail(ReasonBadCaption, "sidecar of %s: %v", filepath.Base(p), e.Err)
			return
		}
	}
	values := map[string]string{}
	if hasJSON {
		v, err := decodeObject(js)
		if err != nil {
			it.Err = Fail(ReasonBadCaption, "parse %s: %v", filepath.Base(base)+".json", err)
			return
		}
		values = v
	}
	if hasTxt {
		// The .txt caption wins over one in the JSON, which then stays in Extra.
		// The key holds a NUL, so no JSON field can be taken for it.
		f := newFieldSet(s.opts)
		f.captionNames = []string{"\x00txt"}
		values["\x00txt"] = trimNewline(string(txt))
		f.apply(it, values, false, s.opts.MaxCaptionBytes)
		return
	}
	if !hasJSON {
		it.Err = Fail(ReasonBadCaption, "no caption: neither %s.txt nor %s.json", filepath.Base(base), filepath.Base(base))
		return
	}
	newFieldSet(s.opts).apply(it, values, false, s.opts.MaxCaptionBytes)
}

// readCapped reads the file at p, failing with ReasonNotFound when it is missing and
// ReasonTooLarge, unread, when it is over max bytes.
func readCapped(p string, max int64) ([]byte, *ItemError) {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Fail(ReasonNotFound, "%s: no such file", p)
	}
	if err != nil {
		return nil, Fail(ReasonFetchFailed, "open: %v", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, Fail(ReasonFetchFailed, "stat: %v", err)
	}
	if st.IsDir() {
		return nil, Fail(ReasonNotFound, "%s is a folder, not a file", p)
	}
	if st.Size() > max {
		return nil, Fail(ReasonTooLarge, "%s: %d bytes is over the %d-byte limit", p, st.Size(), max)
	}
	return readAllCapped(f, max, p)
}

// readAllCapped reads r to its end, failing with ReasonTooLarge past max bytes.
func readAllCapped(r io.Reader, max int64, name string) ([]byte, *ItemError) {
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r, max+1))
	if err != nil {
		return nil, Fail(ReasonFetchFailed, "read %s: %w", name, err)
	}
	if n > max {
		return nil, Fail(ReasonTooLarge, "%s: over the %d-byte limit", name, max)
	}
	if buf.Len() == 0 {
		return []byte{}, nil // not nil: the file is there
	}
	return buf.Bytes(), nil
}

// decodeObject parses one JSON object into its fields as text (see jsonText).
func decodeObject(b []byte) (map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = jsonText(v)
	}
	return out, nil
}
