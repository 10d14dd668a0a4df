// Package pipeline scores whole datasets of image–caption pairs: it reads sources (folders
// with sidecar captions, CSV/TSV/JSONL/Parquet lists of paths or URLs, WebDataset tar
// shards), fetches and decodes images on all cores, scores them in batches with a
// dva.Engine, records every result or failure as it goes (so a killed run resumes), and
// filters and exports the outcome (scores.parquet, re-sharded WebDataset tars, a sorted uid
// list, summary.json) the way DataComp's tooling does.
//
// The parts meet in the types of this file: a Source yields Items, the runner turns each
// into a Result, a ResultStore keeps them, and the exporters read them back.
package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"path/filepath"
)

// Item is one image–caption pair as a source yields it.
type Item struct {
	// Source names where the item came from: the absolute path of the file or folder (after
	// brace expansion), or the URL of a remote list. With Key it identifies the item across
	// runs, so a resumed run started from another working folder still finds it.
	Source string
	// Key is unique within its source and stable across reads: the WebDataset key, the file
	// name without extension relative to the folder, or the row number of a table ("row-12").
	Key string
	// UID is the dataset's own id when it has one (a "uid" column or JSON field); otherwise
	// empty and the runner derives one (see UID).
	UID string
	// URL is where the image lives when the source only names it: an http(s) URL or a local
	// path. Empty when the bytes came with the item (tar members, folders).
	URL string
	// Caption is the text, as read (not yet cleaned by the tokenizer).
	Caption string
	// Image is the image file's bytes; nil until fetched when URL is set.
	Image []byte
	// Extra are the other columns or JSON fields, carried through to scores.parquet.
	Extra map[string]string
	// Err is a failure of this item alone (unreadable caption, missing file, a fetch that
	// failed): it is recorded with its reason and the run goes on. Use Fail to make one.
	Err *ItemError
}

// Reason is why an item was not scored; the summary counts each one.
type Reason string

// Reasons of failed items.
const (
	ReasonCorrupt     Reason = "corrupt"      // not a decodable image, or truncated
	ReasonTooLarge    Reason = "too_large"    // file or declared pixel count over the limits
	ReasonUnsupported Reason = "unsupported"  // an image format the decoder does not read
	ReasonTimeout     Reason = "timeout"      // fetching took too long
	ReasonOptedOut    Reason = "opted_out"    // the server said X-Robots-Tag: noai / noimageai
	ReasonNotFound    Reason = "not_found"    // 404, a missing local file, a tar key with no image
	ReasonFetchFailed Reason = "fetch_failed" // other HTTP or network errors, after retries
	ReasonBadCaption  Reason = "bad_caption"  // empty, not UTF-8, or over the caption size cap
	ReasonDuplicate   Reason = "duplicate"    // a key seen before in the same source
	ReasonFiltered    Reason = "filtered"     // refused by the basic filter (not an error)
)

// ItemError is the failure of one item: a reason to count and a message for people.
type ItemError struct {
	Reason Reason
	Err    error
}

func (e *ItemError) Error() string { return fmt.Sprintf("%s: %v", e.Reason, e.Err) }
func (e *ItemError) Unwrap() error { return e.Err }

// Fail returns an ItemError with the reason and a message formatted like fmt.Errorf.
func Fail(r Reason, format string, args ...any) *ItemError {
	return &ItemError{Reason: r, Err: fmt.Errorf(format, args...)}
}

// ReasonOf returns the reason of an ItemError inside err, or "" when there is none.
func ReasonOf(err error) Reason {
	var ie *ItemError
	if errors.As(err, &ie) {
		return ie.Reason
	}
	return ""
}

// Source yields the items of one dataset file or folder, in a stable order.
type Source interface {
	// Name is the Source field of the items it yields.
	Name() string
	// Items calls yield for every item until the end, an error of the source as a whole
	// (it cannot be opened, its format is broken past recovery), ctx ending, or yield
	// returning an error, which Items returns. A bad item is yielded with Err set.
	Items(ctx context.Context, yield func(Item) error) error
}

// Result is what a run records for one item: its score, or why it has none.
type Result struct {
	Source  string
	Key     string
	UID     string
	URL     string
	Caption string
	Score   float32 // cosine similarity; meaningful only when Reason is ""
	Width   int     // of the decoded image, 0 when it was not decoded
	Height  int
	Reason  Reason // "" when scored
	Error   string // the failure's message, "" when scored
	Extra   map[string]string
	// Verdict is a person's decision from the review screen: "", "keep" or "reject". It wins
	// over the machine's threshold in exports.
	Verdict string
}

// Scored reports whether the result has a score.
func (r Result) Scored() bool { return r.Reason == "" }

// Ref names one item of a run.
type Ref struct {
	Source string
	Key    string
}

// ResultStore keeps a run's results as they come; storage.Store implements it.
type ResultStore interface {
	// Finished reports, for each ref, whether the run already has a result for it (scored
	// or failed): a resumed run skips those.
	Finished(ctx context.Context, run int64, refs []Ref) ([]bool, error)
	// SaveResults stores results in one transaction. A result for a ref the run already has
	// replaces it only when the stored one failed (a retry); otherwise it is ignored.
	SaveResults(ctx context.Context, run int64, rs []Result) error
	// EachResult calls fn for every result of the run in (source, key) order.
	EachResult(ctx context.Context, run int64, fn func(Result) error) error
}

// UID returns the DataComp-style uid of an item: its own UID when it has one, otherwise the
// first 16 bytes of sha256(base name of the source + "\x00" + key) as 32 hex digits, so the
// same shard gives the same uids wherever it lies.
func UID(it Item) string {
	if it.UID != "" {
		return it.UID
	}
	h := sha256.Sum256([]byte(path.Base(filepath.ToSlash(it.Source)) + "\x00" + it.Key))
	return hex.EncodeToString(h[:16])
}
