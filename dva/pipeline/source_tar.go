package pipeline

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/gata-contrib/gata/dva/preprocess"
)

// tarSource reads a WebDataset shard as img2dataset writes it: members KEY.jpg (or
// another image type), KEY.txt and KEY.json, those of a key one after the other. It
// streams the file and never unpacks it.
type tarSource struct {
	path string // absolute
	opts SourceOptions
}

// Name returns the shard's absolute path.
func (s *tarSource) Name() string { return s.path }

// tarGroup collects the members of one key.
type tarGroup struct {
	key       string
	image     []byte
	hasImage  bool
	txt       *string
	json      map[string]string
	err       *ItemError // the first problem with a member
	duplicate bool
}

// Items yields one item per key, in the order of the shard. The key is the member name up
// to the first dot of its base name, directories included ("part/000001" of
// "part/000001.jpg"). A truncated shard yields the items read so far, the key it broke in
// as ReasonCorrupt, and then fails.
func (s *tarSource) Items(ctx context.Context, yield func(Item) error) error {
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("read dataset: %w", err)
	}
	defer f.Close()
	return s.read(ctx, bufio.NewReaderSize(f, 256<<10), yield)
}

// read reads the shard's bytes from r.
func (s *tarSource) read(ctx context.Context, r io.Reader, yield func(Item) error) error {
	tr := tar.NewReader(r)
	seen := make(map[string]bool)
	var g *tarGroup
	flush := func() error {
		if g == nil {
			return nil
		}
		it := s.item(g)
		g = nil
		return yield(it)
	}
	for members := 0; ; members++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return flush()
		}
		if err != nil {
			return s.broken(g, members, err, yield)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		key, ext := splitTarName(hdr.Name)
		kind := memberKind(ext)
		if kind == "" {
			continue // a field this source does not read (.cls, .npy, …)
		}
		if g == nil || g.key != key {
			if err := flush(); err != nil {
				return err
			}
			g = &tarGroup{key: key, duplicate: seen[key]}
			seen[key] = true
		}
		if g.duplicate {
			continue
		}
		if err := s.readMember(g, tr, hdr, kind); err != nil {
			return s.broken(g, members, err, yield)
		}
	}
}

// broken yields the key a read error interrupted, as corrupt, and returns the shard's
// error.
func (s *tarSource) broken(g *tarGroup, members int, err error, yield func(Item) error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	if g != nil {
		it := Item{Source: s.path, Key: g.key, Err: Fail(ReasonCorrupt, "shard %s broke off in this key: %v", path.Base(s.path), err)}
		if yerr := yield(it); yerr != nil {
			return yerr
		}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("read %s: truncated tar after %d members: %w", s.path, members, err)
	}
	return fmt.Errorf("read %s: broken tar after %d members: %w", s.path, members, err)
}

// readMember reads one member of kind "image", "txt" or "json" into g. Problems of the
// member become g.err; the error returned is one of the shard.
func (s *tarSource) readMember(g *tarGroup, tr *tar.Reader, hdr *tar.Header, kind string) error {
	limit := s.opts.MaxImageBytes
	switch kind {
	case "txt":
		limit = int64(s.opts.MaxCaptionBytes)
	case "json":
		limit = int64(s.opts.MaxCaptionBytes) + maxSidecarJSON
	}
	if hdr.Size > limit {
		// Not read: the tar reader skips the data on the next call of Next.
		switch kind {
		case "image":
			g.hasImage = true
			g.setErr(Fail(ReasonTooLarge, "%s: %d bytes is over the %d-byte limit", hdr.Name, hdr.Size, limit))
		case "txt":
			g.setErr(Fail(ReasonBadCaption, "%s: caption of %d bytes is over the %d-byte limit", hdr.Name, hdr.Size, limit))
		default:
			g.setErr(Fail(ReasonBadCaption, "%s: %d bytes is over the %d-byte limit", hdr.Name, hdr.Size, limit))
		}
		return nil
	}
	if kind == "image" && g.hasImage {
		return nil // a second image of the key (x.jpg and x.png): the first one counts
	}
	data, ierr := readAllCapped(tr, limit, hdr.Name)
	if ierr != nil {
		return ierr.Err
	}
	switch kind {
	case "image":
		g.hasImage, g.image = true, data
		if len(data) == 0 {
			g.setErr(Fail(ReasonCorrupt, "%s is empty", hdr.Name))
		}
	case "txt":
		t := trimNewline(string(data))
		g.txt = &t
	case "json":
		m, err := decodeObject(data)
		if err != nil {
			g.setErr(Fail(ReasonBadCaption, "parse %s: %v", hdr.Name, err))
			return nil
		}
		g.json = m
	}
	return nil
}

// setErr keeps the first problem of the group.
func (g *tarGroup) setErr(e *ItemError) {
	if g.err == nil {
		g.err = e
	}
}

// item makes the item of a complete group.
func (s *tarSource) item(g *tarGroup) Item {
	it := Item{Source: s.path, Key: g.key}
	if g.duplicate {
		it.Err = Fail(ReasonDuplicate, "key %s appears again later in the shard", g.key)
		return it
	}
	values := g.json
	if values == nil {
		values = map[string]string{}
	}
	f := newFieldSet(s.opts)
	if u := pick(f.urlNames, func(n string) bool { _, ok := values[n]; return ok }); u != "" {
		it.URL = values[u] // for information: the bytes are here
		delete(values, u)
	}
	if g.txt != nil {
		// The key holds a NUL, so no JSON field can be taken for it.
		f.captionNames = []string{"\x00txt"}
		values["\x00txt"] = *g.txt
	}
	it.Err = g.err
	if it.Err == nil && !g.hasImage {
		it.Err = Fail(ReasonNotFound, "key %s has no image member", g.key)
	}
	if it.Err == nil && g.txt == nil && pick(f.captionNames, func(n string) bool { _, ok := values[n]; return ok }) == "" {
		it.Err = Fail(ReasonBadCaption, "key %s has neither a .txt member nor a caption in its .json", g.key)
	}
	f.apply(&it, values, false, s.opts.MaxCaptionBytes)
	if it.Err == nil {
		it.Image = g.image
	}
	return it
}

// splitTarName splits a member name into its key and its lower-case extension, the text
// after the first dot of the base name.
func splitTarName(name string) (key, ext string) {
	name = strings.TrimPrefix(name, "./")
	dir, base := path.Split(name)
	b, e, _ := strings.Cut(base, ".")
	return dir + b, strings.ToLower(e)
}

// memberKind returns "image", "txt" or "json" for the extensions this source reads, or "".
func memberKind(ext string) string {
	switch {
	case ext == "txt", ext == "json":
		return ext
	case ext != "" && slices.Contains(preprocess.Extensions, "."+ext):
		return "image"
	}
	return ""
}
