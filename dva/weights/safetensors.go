package weights

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/gata-contrib/gata/dva/tensor"
)

// safetensors layout: u64 little-endian header length n, n bytes of JSON
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the data buffer; offsets are relative to the start of the buffer.

type stEntry struct {
	name    string
	dtype   dtype
	shape   []int
	numel   int
	begin   int
	end     int
	ordinal int
}

// parseSafetensors parses a whole safetensors file held in b. Tensors may alias b; the
// bool result says whether any does.
func parseSafetensors(b []byte) ([]string, map[string]*tensor.Tensor, bool, error) {
	if len(b) < 8 {
		return nil, nil, false, fmt.Errorf("safetensors: truncated: %d bytes, need at least 8 for the header length", len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > MaxHeaderLen {
		return nil, nil, false, fmt.Errorf("safetensors: header length %d exceeds the limit of %d bytes", n, MaxHeaderLen)
	}
	if n > uint64(len(b)-8) {
		return nil, nil, false, fmt.Errorf("safetensors: truncated: header length %d but only %d bytes follow", n, len(b)-8)
	}
	header := b[8 : 8+n]
	data := b[8+n:]
	entries, err := parseSTHeader(header)
	if err != nil {
		return nil, nil, false, fmt.Errorf("safetensors: %w", err)
	}
	// Every entry must lie inside the buffer and match its shape; no two may overlap.
	for _, e := range entries {
		if e.begin < 0 || e.end < e.begin || e.end > len(data) {
			return nil, nil, false, fmt.Errorf("safetensors: tensor %q: data_offsets [%d, %d] out of range of the %d-byte data buffer", e.name, e.begin, e.end, len(data))
		}
		if want := e.numel * e.dtype.size(); e.end-e.begin != want {
			return nil, nil, false, fmt.Errorf("safetensors: tensor %q: shape %v of %s needs %d bytes but data_offsets span %d", e.name, e.shape, e.dtype, want, e.end-e.begin)
		}
	}
	sorted := append([]stEntry(nil), entries...)
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].begin != sorted[j].begin {
			return sorted[i].begin < sorted[j].begin
		}
		return sorted[i].end < sorted[j].end
	})
	for i := 1; i < len(sorted); i++ {
		p, c := sorted[i-1], sorted[i]
		if c.begin < p.end {
			return nil, nil, false, fmt.Errorf("safetensors: tensors %q and %q overlap", p.name, c.name)
		}
	}
	names := make([]string, len(entries))
	tensors := make(map[string]*tensor.Tensor, len(entries))
	aliased := false
	for i, e := range entries {
		v, al := decode(data[e.begin:e.end], e.dtype, e.numel)
		aliased = aliased || al
		names[i] = e.name
		tensors[e.name] = &tensor.Tensor{Shape: e.shape, Data: v}
	}
	return names, tensors, aliased, nil
}

// parseSTHeader reads the JSON header keeping the order of its keys.
func parseSTHeader(h []byte) ([]stEntry, error) {
	dec := json.NewDecoder(bytes.NewReader(h))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("read header: not a JSON object")
	}
	var entries []stEntry
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("read header: %w", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errors.New("read header: key is not a string")
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("read header entry %q: %w", name, err)
		}
		if seen[name] {
			return nil, fmt.Errorf("header names %q twice", name)
		}
		seen[name] = true
		if name == "__metadata__" {
			var md map[string]string
			if err := json.Unmarshal(raw, &md); err != nil {
				return nil, fmt.Errorf("read __metadata__: %w", err)
			}
			continue
		}
		e, err := parseSTEntry(name, raw)
		if err != nil {
			return nil, err
		}
		e.ordinal = len(entries)
		entries = append(entries, e)
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, fmt.Errorf("read header: %w", err)
	}
	// Only padding may follow the object.
	rest := h[dec.InputOffset():]
	if len(bytes.TrimRight(rest, " \t\r\n\x00")) != 0 {
		return nil, errors.New("read header: trailing data after the JSON object")
	}
	return entries, nil
}

func parseSTEntry(name string, raw json.RawMessage) (stEntry, error) {
	var info struct {
		Dtype   *string       `json:"dtype"`
		Shape   []json.Number `json:"shape"`
		Offsets []json.Number `json:"data_offsets"`
	}
	if err := json.Unmarshal(raw, &info); err != nil {
		return stEntry{}, fmt.Errorf("tensor %q: read header entry: %w", name, err)
	}
	e := stEntry{name: name}
	if info.Dtype == nil {
		return e, fmt.Errorf("tensor %q: no dtype", name)
	}
	switch *info.Dtype {
	case "F32":
		e.dtype = f32
	case "F16":
		e.dtype = f16
	case "BF16":
		e.dtype = bf16
	default:
		return e, fmt.Errorf("tensor %q: unsupported dtype %q (want F32, F16 or BF16)", name, *info.Dtype)
	}
	if info.Shape == nil {
		return e, fmt.Errorf("tensor %q: no shape", name)
	}
	e.shape = make([]int, len(info.Shape))
	e.numel = 1
	for i, s := range info.Shape {
		d, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil || d < 0 || d > 1<<40 {
			return e, fmt.Errorf("tensor %q: invalid dimension %s in shape", name, s)
		}
		e.shape[i] = int(d)
		if e.numel != 0 && int(d) > (1<<50)/e.numel {
			return e, fmt.Errorf("tensor %q: shape %v is too large", name, e.shape[:i+1])
		}
		e.numel *= int(d)
	}
	if len(info.Offsets) != 2 {
		return e, fmt.Errorf("tensor %q: data_offsets must be [begin, end], got %d numbers", name, len(info.Offsets))
	}
	var off [2]int
	for i, s := range info.Offsets {
		v, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil || v < 0 || v > 1<<50 {
			return e, fmt.Errorf("tensor %q: invalid data offset %s", name, s)
		}
		off[i] = int(v)
	}
	e.begin, e.end = off[0], off[1]
	return e, nil
}
