package submission

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
)

// MaxRecordBytes bounds one line of a submission (a chat battle with long answers is
// well under a megabyte).
const MaxRecordBytes = 16 << 20

// ErrNotCanonical is returned for a JSONL file that is not canonical: a line that is
// not a JSON object, has keys out of order or whitespace between tokens, a blank line,
// or a last line without its newline.
var ErrNotCanonical = errors.New("not canonical JSONL")

// Canonical encodes v as canonical JSON: object keys sorted (by bytes), no whitespace
// between tokens, strings escaped the one way Go's encoder escapes them (HTML
// characters left as they are), numbers as the encoder writes them.
func Canonical(v any) ([]byte, error) {
	raw, err := marshal(v)
	if err != nil {
		return nil, err
	}
	return canonicalize(raw)
}

func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// canonicalize re-encodes one JSON value: decoded into maps (which the encoder writes
// with sorted keys) with numbers kept as written.
func canonicalize(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON value")
	}
	return marshal(v)
}

// Content describes a JSONL file: its sha256, size and number of lines (records).
type Content struct {
	SHA256  [32]byte
	Records uint64
	Bytes   uint64
}

// Writer writes records as canonical JSONL, one a line, and sums what it wrote.
type Writer struct {
	w   io.Writer
	h   hash.Hash
	c   Content
	err error
}

// NewWriter writes to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w, h: sha256.New()} }

// Add writes one record (a struct or map that encodes as a JSON object).
func (w *Writer) Add(record any) error {
	if w.err != nil {
		return w.err
	}
	line, err := Canonical(record)
	if err != nil {
		return fmt.Errorf("encode record %d: %w", w.c.Records+1, err)
	}
	if len(line) == 0 || line[0] != '{' {
		return fmt.Errorf("encode record %d: not a JSON object", w.c.Records+1)
	}
	if len(line)+1 > MaxRecordBytes {
		return fmt.Errorf("encode record %d: %d bytes, more than %d", w.c.Records+1, len(line)+1, MaxRecordBytes)
	}
	line = append(line, '\n')
	if _, err := w.w.Write(line); err != nil {
		w.err = fmt.Errorf("write record %d: %w", w.c.Records+1, err)
		return w.err
	}
	w.h.Write(line)
	w.c.Records++
	w.c.Bytes += uint64(len(line))
	return nil
}

// Content is what was written so far.
func (w *Writer) Content() Content {
	c := w.c
	copy(c.SHA256[:], w.h.Sum(nil))
	return c
}

// Scan reads a JSONL file to its end and returns its Content, or an error wrapping
// ErrNotCanonical for the first line that is not canonical.
func Scan(r io.Reader) (Content, error) {
	c, bad, err := scan(r)
	if err != nil {
		return c, err
	}
	return c, bad
}

// scan sums the whole file even past a line that is not canonical (bad), so that a
// tampered file is reported by its hash first.
func scan(r io.Reader) (c Content, bad, err error) {
	h := sha256.New()
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte
	for {
		chunk, rerr := br.ReadSlice('\n')
		h.Write(chunk)
		c.Bytes += uint64(len(chunk))
		if bad == nil {
			if len(line)+len(chunk) > MaxRecordBytes {
				bad = fmt.Errorf("%w: line %d is longer than %d bytes", ErrNotCanonical, c.Records+1, MaxRecordBytes)
				line = line[:0]
			} else {
				line = append(line, chunk...)
			}
		}
		switch {
		case rerr == bufio.ErrBufferFull:
			continue
		case rerr == io.EOF:
			if len(chunk) > 0 || len(line) > 0 {
				c.Records++
				if bad == nil {
					bad = fmt.Errorf("%w: line %d does not end with a newline", ErrNotCanonical, c.Records)
				}
			}
			copy(c.SHA256[:], h.Sum(nil))
			return c, bad, nil
		case rerr != nil:
			return c, bad, fmt.Errorf("read submission: %w", rerr)
		}
		c.Records++
		if bad == nil {
			bad = checkLine(line[:len(line)-1], c.Records)
		}
		line = line[:0]
	}
}

func checkLine(line []byte, n uint64) error {
	if len(line) == 0 || line[0] != '{' {
		return fmt.Errorf("%w: line %d is not a JSON object", ErrNotCanonical, n)
	}
	canon, err := canonicalize(line)
	if err != nil {
		return fmt.Errorf("%w: line %d: %v", ErrNotCanonical, n, err)
	}
	if !bytes.Equal(canon, line) {
		return fmt.Errorf("%w: line %d has keys out of order, extra whitespace or other escapes", ErrNotCanonical, n)
	}
	return nil
}
