package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// parquetSource reads a Parquet table of image paths or URLs with captions, one row group
// at a time. Columns are found by name (nested ones as "a.b"); string, bytes, integer,
// float and boolean values are read as text.
type parquetSource struct {
	path string // absolute
	opts SourceOptions
}

// Name returns the Parquet file's absolute path.
func (s *parquetSource) Name() string { return s.path }

// parquetBatch is how many rows are read from a row group at once.
const parquetBatch = 256

// Items yields one item per row, Key "row-N" with N the row's index in the whole file.
func (s *parquetSource) Items(ctx context.Context, yield func(Item) error) error {
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("read dataset: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("read dataset: %w", err)
	}
	pf, err := parquet.OpenFile(f, st.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return fmt.Errorf("read %s: %w", s.path, err)
	}
	cols := pf.Schema().Columns()
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = strings.Join(c, ".")
	}
	t := tableReader{name: s.path, opts: s.opts, fields: newFieldSet(s.opts), resolve: localResolver(filepath.Dir(s.path)), yield: yield}
	if err := t.checkHeader(names); err != nil {
		return err
	}
	n := 0
	for gi, rg := range pf.RowGroups() {
		yerr, err := s.readGroup(ctx, &t, rg, names, &n)
		if yerr != nil {
			return yerr
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read %s: row group %d: %w", s.path, gi, err)
		}
	}
	return nil
}

// readGroup yields the rows of one row group, counting them in *n. It returns an error
// of yield and one of reading apart.
func (s *parquetSource) readGroup(ctx context.Context, t *tableReader, rg parquet.RowGroup, names []string, n *int) (yieldErr, err error) {
	rows := rg.Rows()
	defer rows.Close()
	buf := make([]parquet.Row, parquetBatch)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		k, err := rows.ReadRows(buf)
		for _, row := range buf[:k] {
			values := make(map[string]string, len(names))
			for _, v := range row {
				c := v.Column()
				if v.IsNull() || c < 0 || c >= len(names) {
					continue
				}
				text := parquetText(v)
				if old, ok := values[names[c]]; ok {
					text = old + "," + text // the items of a list column
				}
				values[names[c]] = text
			}
			if yerr := t.emit(*n, values, nil); yerr != nil {
				return yerr, nil
			}
			*n++
		}
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// parquetText returns a Parquet value as text.
func parquetText(v parquet.Value) string {
	switch v.Kind() {
	case parquet.ByteArray, parquet.FixedLenByteArray:
		return string(v.ByteArray())
	case parquet.Int32:
		return strconv.FormatInt(int64(v.Int32()), 10)
	case parquet.Int64:
		return strconv.FormatInt(v.Int64(), 10)
	}
	return v.String()
}
