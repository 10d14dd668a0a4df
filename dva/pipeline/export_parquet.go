package pipeline

import (
	"cmp"
	"encoding/json"
	"slices"

	"github.com/parquet-go/parquet-go"
)

// The fixed columns of scores.parquet, in file order; the Extra columns follow them, then
// "extra" when some Extra keys have no column of their own.
var baseColumns = []string{"uid", "key", "source", "url", "caption", "score", "width", "height", "kept", "reason", "error", "verdict"}

// Indexes of the fixed columns after the strings.
const (
	colScore   = 5 // optional float: null when the result was not scored
	colWidth   = 6
	colHeight  = 7
	colKept    = 8
	colReason  = 9
	colError   = 10
	colVerdict = 11
)

// scoreColumns is the schema of one scores.parquet file.
type scoreColumns struct {
	node       parquet.Node
	extraKeys  []string // Extra keys with a column, in column order
	extraNames []string // their column names (a key clashing with a fixed column is prefixed "extra_")
	overflow   bool     // whether the "extra" JSON column exists
}

// newScoreColumns gives a column to the max most common Extra keys (ties by name), in name
// order.
func newScoreColumns(counts map[string]int64, max int) scoreColumns {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(counts[b], counts[a]), cmp.Compare(a, b)) })
	c := scoreColumns{overflow: len(keys) > max || len(keys) >= maxTrackedExtraKeys}
	keys = keys[:min(len(keys), max)]
	slices.Sort(keys)

	group := parquet.Group{}
	order := slices.Clone(baseColumns)
	for _, name := range baseColumns {
		group[name] = parquet.String()
	}
	group["score"] = parquet.Optional(parquet.Leaf(parquet.FloatType))
	group["width"] = parquet.Int(32)
	group["height"] = parquet.Int(32)
	group["kept"] = parquet.Leaf(parquet.BooleanType)
	taken := func(n string) bool { _, ok := group[n]; return ok || n == "extra" }
	for _, k := range keys {
		name := k
		for taken(name) {
			name = "extra_" + name
		}
		group[name] = parquet.Optional(parquet.String())
		order = append(order, name)
		c.extraKeys = append(c.extraKeys, k)
		c.extraNames = append(c.extraNames, name)
	}
	if c.overflow {
		group["extra"] = parquet.Optional(parquet.JSON())
		order = append(order, "extra")
	}
	c.node = newOrderedGroup(group, order)
	if c.extraNames == nil {
		c.extraNames = []string{}
	}
	return c
}

// row appends the values of r to row, in column order.
func (c *scoreColumns) row(row parquet.Row, r Result, kept bool) parquet.Row {
	str := func(s string) parquet.Value { return parquet.ByteArrayValue([]byte(s)) }
	for i, s := range []string{r.UID, r.Key, r.Source, r.URL, r.Caption} {
		row = append(row, str(s).Level(0, 0, i))
	}
	if r.Scored() {
		row = append(row, parquet.FloatValue(r.Score).Level(0, 1, colScore))
	} else {
		row = append(row, parquet.NullValue().Level(0, 0, colScore))
	}
	row = append(row,
		parquet.Int32Value(int32(r.Width)).Level(0, 0, colWidth),
		parquet.Int32Value(int32(r.Height)).Level(0, 0, colHeight),
		parquet.BooleanValue(kept).Level(0, 0, colKept),
		str(string(r.Reason)).Level(0, 0, colReason),
		str(r.Error).Level(0, 0, colError),
		str(r.Verdict).Level(0, 0, colVerdict),
	)
	col := len(baseColumns)
	for _, k := range c.extraKeys {
		if v, ok := r.Extra[k]; ok {
			row = append(row, str(v).Level(0, 1, col))
		} else {
			row = append(row, parquet.NullValue().Level(0, 0, col))
		}
		col++
	}
	if c.overflow {
		rest := map[string]string{}
		for k, v := range r.Extra {
			if _, ok := slices.BinarySearch(c.extraKeys, k); !ok {
				rest[k] = v
			}
		}
		if len(rest) == 0 {
			row = append(row, parquet.NullValue().Level(0, 0, col))
		} else {
			b, _ := json.Marshal(rest) // a map of strings always encodes
			row = append(row, parquet.ByteArrayValue(b).Level(0, 1, col))
		}
	}
	return row
}

// orderedGroup is a parquet group whose columns come in a given order rather than sorted
// by name, so that scores.parquet starts with uid, key, source as people expect.
type orderedGroup struct {
	parquet.Group
	fields []parquet.Field
}

func newOrderedGroup(g parquet.Group, order []string) orderedGroup {
	byName := map[string]parquet.Field{}
	for _, f := range g.Fields() {
		byName[f.Name()] = f
	}
	og := orderedGroup{Group: g}
	for _, name := range order {
		og.fields = append(og.fields, byName[name])
	}
	return og
}

func (g orderedGroup) Fields() []parquet.Field { return g.fields }
