package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// tableSource reads a CSV, TSV, JSON-lines or JSON-array file of image paths or URLs with
// captions. Items come with URL set and Image nil: the runner fetches them.
type tableSource struct {
	path string // absolute
	ext  string // lower case, with the dot
	opts SourceOptions
}

// Name returns the table file's absolute path.
func (s *tableSource) Name() string { return s.path }

// Items yields one item per data row, Key "row-N" counting from 0. Relative local paths
// are resolved against the table's folder.
func (s *tableSource) Items(ctx context.Context, yield func(Item) error) error {
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("read dataset: %w", err)
	}
	defer f.Close()
	t := tableReader{name: s.path, opts: s.opts, fields: newFieldSet(s.opts), resolve: localResolver(filepath.Dir(s.path)), yield: yield}
	return t.read(ctx, f, s.ext)
}

// localResolver returns the resolve function of a local table in dir: URLs and absolute
// paths stay as they are, relative paths are taken from dir.
func localResolver(dir string) func(string) string {
	return func(u string) string {
		if isHTTP(u) || strings.HasPrefix(strings.ToLower(u), "file://") || filepath.IsAbs(u) {
			return u
		}
		return filepath.Join(dir, filepath.FromSlash(u))
	}
}

// remoteTableSource reads a CSV, TSV or JSON table from an http(s) URL, streaming it.
type remoteTableSource struct {
	url  string
	ext  string
	opts SourceOptions
}

// Name returns the table's URL.
func (s *remoteTableSource) Name() string { return s.url }

// Items downloads the table as it reads it; relative URLs in it are resolved against the
// table's URL.
func (s *remoteTableSource) Items(ctx context.Context, yield func(Item) error) error {
	base, err := url.Parse(s.url)
	if err != nil {
		return fmt.Errorf("read %s: %w", s.url, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return fmt.Errorf("read %s: %w", s.url, err)
	}
	fo := s.opts.Fetch.withDefaults()
	req.Header.Set("User-Agent", fo.UserAgent)
	client := &http.Client{Transport: newTransport(fo)}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("read %s: %w", s.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("read %s: %s", s.url, resp.Status)
	}
	resolve := func(u string) string {
		ref, err := url.Parse(u)
		if err != nil {
			return u // the fetch reports it
		}
		return base.ResolveReference(ref).String()
	}
	t := tableReader{name: s.url, opts: s.opts, fields: newFieldSet(s.opts), resolve: resolve, yield: yield}
	return t.read(ctx, resp.Body, s.ext)
}

// tableReader turns the rows of one table into items.
type tableReader struct {
	name    string // the Source of the items
	opts    SourceOptions
	fields  fieldSet
	resolve func(string) string // makes a row's URL absolute
	yield   func(Item) error
}

// read reads the table in r, whose format ext names.
func (t *tableReader) read(ctx context.Context, r io.Reader, ext string) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var err error
	switch ext {
	case ".csv":
		err = t.readDelimited(ctx, br, ',')
	case ".tsv":
		err = t.readDelimited(ctx, br, '\t')
	default:
		err = t.readJSON(ctx, br)
	}
	return err
}

// emit yields the item of row n made from values, or failing with rowErr.
func (t *tableReader) emit(n int, values map[string]string, rowErr *ItemError) error {
	it := Item{Source: t.name, Key: "row-" + strconv.Itoa(n), Err: rowErr}
	if values != nil {
		t.fields.apply(&it, values, true, t.opts.MaxCaptionBytes)
	}
	if it.Err == nil {
		it.URL = t.resolve(strings.TrimSpace(it.URL))
	}
	return t.yield(it)
}

// readDelimited reads CSV (comma ',') or TSV (comma '\t') with a header row.
func (t *tableReader) readDelimited(ctx context.Context, r *bufio.Reader, comma rune) error {
	cr := csv.NewReader(r)
	cr.Comma = comma
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = comma == '\t' // TSV files rarely quote by the CSV rules
	header, err := cr.Read()
	if err == io.EOF {
		return fmt.Errorf("read %s: empty file, want a header row", t.name)
	}
	if err != nil {
		return fmt.Errorf("read %s: header: %w", t.name, err)
	}
	header = append([]string(nil), header...)
	for i, h := range header {
		header[i] = strings.TrimSpace(h)
	}
	header[0] = strings.TrimPrefix(header[0], "\ufeff")
	if err := t.checkHeader(header); err != nil {
		return err
	}
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			if err := t.emit(n, nil, Fail(ReasonCorrupt, "line %d: %v", pe.StartLine, pe.Err)); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", t.name, err)
		}
		values := make(map[string]string, len(header))
		for i, v := range rec {
			if i < len(header) {
				values[header[i]] = v
			}
		}
		var rowErr *ItemError
		if len(rec) != len(header) {
			rowErr = Fail(ReasonCorrupt, "%d fields, the header has %d", len(rec), len(header))
		}
		if err := t.emit(n, values, rowErr); err != nil {
			return err
		}
	}
}

// checkHeader fails when the header has no URL or no caption column.
func (t *tableReader) checkHeader(header []string) error {
	has := func(n string) bool {
		for _, h := range header {
			if h == n {
				return true
			}
		}
		return false
	}
	if pick(t.fields.urlNames, has) == "" {
		return fmt.Errorf("read %s: no %s column (the columns are %s)", t.name, strings.Join(t.fields.urlNames, " or "), strings.Join(header, ", "))
	}
	if pick(t.fields.captionNames, has) == "" {
		return fmt.Errorf("read %s: no %s column (the columns are %s)", t.name, strings.Join(t.fields.captionNames, " or "), strings.Join(header, ", "))
	}
	return nil
}

// maxRowBytes returns the longest JSON line or array element read, beyond which the row
// fails unread.
func (t *tableReader) maxRowBytes() int {
	return t.opts.MaxCaptionBytes + maxSidecarJSON
}

// readJSON reads JSON lines, or a JSON array of objects when the first non-space
// character is '['.
func (t *tableReader) readJSON(ctx context.Context, r *bufio.Reader) error {
	if bom, _ := r.Peek(3); string(bom) == "\ufeff" {
		r.Discard(3)
	}
	for {
		b, err := r.Peek(1)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", t.name, err)
		}
		if !isJSONSpace(b[0]) {
			if b[0] == '[' {
				return t.readJSONArray(ctx, r)
			}
			return t.readJSONLines(ctx, r)
		}
		r.ReadByte()
	}
}

// readJSONLines reads one object a line; a broken or overlong line fails its row only.
// Blank lines are skipped and not counted.
func (t *tableReader) readJSONLines(ctx context.Context, r *bufio.Reader) error {
	max := t.maxRowBytes()
	for n := 0; ; {
		if err := ctx.Err(); err != nil {
			return err
		}
		line, long, err := readLine(r, max)
		if err != nil && err != io.EOF {
			return fmt.Errorf("read %s: row-%d: %w", t.name, n, err)
		}
		if len(bytes.TrimSpace(line)) > 0 || long {
			var yerr error
			switch values, perr := decodeObject(line); {
			case long:
				yerr = t.emit(n, nil, Fail(ReasonCorrupt, "line over %d bytes", max))
			case perr != nil:
				yerr = t.emit(n, nil, Fail(ReasonCorrupt, "parse JSON: %v", perr))
			default:
				yerr = t.emit(n, values, nil)
			}
			if yerr != nil {
				return yerr
			}
			n++
		}
		if err == io.EOF {
			return nil
		}
	}
}

// readLine reads one line without its end. When it is over max bytes it returns what fit
// with long set, having skipped the rest of the line. err is io.EOF on the last line.
func readLine(r *bufio.Reader, max int) (line []byte, long bool, err error) {
	for {
		chunk, err := r.ReadSlice('\n')
		if !long {
			if len(line)+len(chunk) > max+1 { // +1: the '\n'
				long = true
				line = nil
			} else {
				line = append(line, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		return bytes.TrimSuffix(line, []byte("\n")), long, err
	}
}

// readJSONArray reads a JSON array of objects. An element that is not an object fails
// its row; broken JSON ends the table, since there is no line to resume at.
func (t *tableReader) readJSONArray(ctx context.Context, r *bufio.Reader) error {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("read %s: %w", t.name, err)
	}
	for n := 0; dec.More(); n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		var m map[string]any
		err := dec.Decode(&m)
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) || err == nil && m == nil:
			err = t.emit(n, nil, Fail(ReasonCorrupt, "not a JSON object"))
		case err != nil:
			return fmt.Errorf("read %s: row-%d: %w", t.name, n, err)
		default:
			values := make(map[string]string, len(m))
			for k, v := range m {
				values[k] = jsonText(v)
			}
			err = t.emit(n, values, nil)
		}
		if err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("read %s: %w", t.name, err)
	}
	return nil
}

// isJSONSpace reports whether c is JSON white space.
func isJSONSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n':
		return true
	}
	return false
}
