package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/gata-contrib/gata/dva/preprocess"
)

// Defaults of SourceOptions.
const (
	DefaultMaxCaptionBytes = 64 << 10
	DefaultMaxImageBytes   = 64 << 20
)

// Default column names, tried in order when SourceOptions leaves them empty.
var (
	defaultURLColumns     = []string{"url", "path", "image", "filepath"}
	defaultCaptionColumns = []string{"caption", "text"}
	defaultUIDColumns     = []string{"uid"}
)

// SourceOptions tune how Open reads datasets. Zero values mean the defaults.
type SourceOptions struct {
	// URLColumn names the table column (or JSON field) that holds each image's URL or
	// path. Empty tries "url", "path", "image" and "filepath", in that order.
	URLColumn string
	// CaptionColumn names the column or JSON field with the caption, also in folder and
	// WebDataset sidecar JSON. Empty tries "caption", then "text".
	CaptionColumn string
	// UIDColumn names the column or JSON field with the dataset's own uid. Empty uses
	// "uid" when there is one.
	UIDColumn string
	// MaxCaptionBytes caps a caption (default DefaultMaxCaptionBytes); a longer one fails
	// its item with ReasonBadCaption.
	MaxCaptionBytes int
	// MaxImageBytes caps an image file read by a folder or tar source (default
	// DefaultMaxImageBytes); a larger one fails its item with ReasonTooLarge unread.
	MaxImageBytes int64
	// Fetch configures the Fetcher the runner uses for items that come with a URL only, and
	// the download of remote lists.
	Fetch FetchOptions
}

// withDefaults returns o with its zero fields set to the defaults.
func (o SourceOptions) withDefaults() SourceOptions {
	if o.MaxCaptionBytes <= 0 {
		o.MaxCaptionBytes = DefaultMaxCaptionBytes
	}
	if o.MaxImageBytes <= 0 {
		o.MaxImageBytes = DefaultMaxImageBytes
	}
	if o.Fetch.MaxBytes <= 0 {
		o.Fetch.MaxBytes = o.MaxImageBytes
	}
	return o
}

// urlColumns, captionColumns and uidColumns list the names to try, in order.
func (o SourceOptions) urlColumns() []string { return orDefault(o.URLColumn, defaultURLColumns) }
func (o SourceOptions) captionColumns() []string {
	return orDefault(o.CaptionColumn, defaultCaptionColumns)
}
func (o SourceOptions) uidColumns() []string { return orDefault(o.UIDColumn, defaultUIDColumns) }

// orDefault returns []string{name}, or defs when name is empty.
func orDefault(name string, defs []string) []string {
	if name != "" {
		return []string{name}
	}
	return defs
}

// Table file extensions Open knows, lower case.
var tableExts = []string{".csv", ".tsv", ".jsonl", ".json", ".parquet"}

// Open expands the brace patterns of spec (see Expand) and opens each path as a source,
// recognised by what it is: a folder of images with sidecar captions, a WebDataset
// shard (.tar), or a table (.csv, .tsv, .jsonl, .json with one object a line or an
// array of objects, .parquet). An http(s) URL ending in .csv, .tsv, .jsonl or .json is
// read as a remote table. Open checks that every path exists; the files are read only
// by Items.
func Open(spec string, opts SourceOptions) ([]Source, error) {
	opts = opts.withDefaults()
	paths, err := Expand(spec)
	if err != nil {
		return nil, fmt.Errorf("open dataset: %w", err)
	}
	srcs := make([]Source, 0, len(paths))
	for _, p := range paths {
		s, err := openOne(p, opts)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, s)
	}
	return srcs, nil
}

// openOne opens one expanded path.
func openOne(p string, opts SourceOptions) (Source, error) {
	if isHTTP(p) {
		u, err := url.Parse(p)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", p, err)
		}
		ext := strings.ToLower(path.Ext(u.Path))
		if ext == ".parquet" || !slices.Contains(tableExts, ext) {
			return nil, fmt.Errorf("open %s: unsupported remote dataset (want a .csv, .tsv, .jsonl or .json URL)", p)
		}
		return &remoteTableSource{url: p, ext: ext, opts: opts}, nil
	}
	if strings.HasPrefix(strings.ToLower(p), "file://") {
		u, err := url.Parse(p)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", p, err)
		}
		p = filepath.FromSlash(u.Path)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	st, err := os.Stat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open %s: no such file or folder", p)
	}
	if err != nil {
		return nil, fmt.Errorf("open dataset: %w", err)
	}
	if st.IsDir() {
		return &folderSource{dir: abs, opts: opts}, nil
	}
	switch ext := strings.ToLower(filepath.Ext(abs)); ext {
	case ".tar":
		return &tarSource{path: abs, opts: opts}, nil
	case ".parquet":
		return &parquetSource{path: abs, opts: opts}, nil
	case ".csv", ".tsv", ".jsonl", ".json":
		return &tableSource{path: abs, ext: ext, opts: opts}, nil
	}
	return nil, fmt.Errorf("open %s: unknown dataset type (want a folder, .tar, .csv, .tsv, .jsonl, .json or .parquet)", p)
}

// isHTTP reports whether s is an http or https URL.
func isHTTP(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://")
}

// isImageName reports whether the file name has an image extension (case-insensitive).
func isImageName(name string) bool {
	return slices.Contains(preprocess.Extensions, strings.ToLower(filepath.Ext(name)))
}

// checkCaption returns why s cannot be a caption of at most max bytes, or nil.
func checkCaption(s string, max int) *ItemError {
	switch {
	case len(s) > max:
		return Fail(ReasonBadCaption, "caption of %d bytes is over the %d-byte limit", len(s), max)
	case !utf8.ValidString(s):
		return Fail(ReasonBadCaption, "caption is not valid UTF-8")
	case strings.TrimSpace(s) == "":
		return Fail(ReasonBadCaption, "caption is empty")
	}
	return nil
}

// trimNewline drops one trailing line end ("\n" or "\r\n"), which text files usually have.
func trimNewline(s string) string {
	s = strings.TrimSuffix(s, "\n")
	return strings.TrimSuffix(s, "\r")
}

// jsonText returns a JSON value decoded with UseNumber as a string: strings as they are,
// numbers as written, null as "", objects and arrays as compact JSON.
func jsonText(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		if v {
			return "true"
		}
		return "false"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// fieldSet maps a record's named values onto an Item: the URL, caption and uid from the
// first of their candidate names that is present, every other value into Extra.
type fieldSet struct {
	urlNames, captionNames, uidNames []string
}

// newFieldSet returns the fieldSet of opts.
func newFieldSet(opts SourceOptions) fieldSet {
	return fieldSet{urlNames: opts.urlColumns(), captionNames: opts.captionColumns(), uidNames: opts.uidColumns()}
}

// pick returns the first of names for which has reports true, or "".
func pick(names []string, has func(string) bool) string {
	for _, n := range names {
		if has(n) {
			return n
		}
	}
	return ""
}

// apply fills it from a record's values (name → value). When it has no Err yet, a missing
// or empty URL (if wantURL) or caption, or a bad caption, becomes its Err.
func (f fieldSet) apply(it *Item, values map[string]string, wantURL bool, maxCaption int) {
	has := func(n string) bool { _, ok := values[n]; return ok }
	urlName := ""
	if wantURL {
		urlName = pick(f.urlNames, has)
	}
	capName := pick(f.captionNames, has)
	uidName := pick(f.uidNames, has)
	for k, v := range values {
		switch {
		case urlName != "" && k == urlName:
			it.URL = v
		case capName != "" && k == capName:
			it.Caption = v
		case uidName != "" && k == uidName:
			it.UID = v
		default:
			if it.Extra == nil {
				it.Extra = make(map[string]string, len(values))
			}
			it.Extra[k] = v
		}
	}
	switch {
	case it.Err != nil:
	case wantURL && urlName == "":
		it.Err = Fail(ReasonNotFound, "no %s field", strings.Join(f.urlNames, " or "))
	case wantURL && strings.TrimSpace(it.URL) == "":
		it.Err = Fail(ReasonNotFound, "empty %s field", urlName)
	case capName == "":
		it.Err = Fail(ReasonBadCaption, "no %s field", strings.Join(f.captionNames, " or "))
	default:
		it.Err = checkCaption(it.Caption, maxCaption)
	}
}
