package weights

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gata-contrib/gata/dva/tensor"
)

// A torch zip checkpoint (torch.save since 1.6): entries under one top-level folder,
// <folder>/data.pkl (the pickled state dict) and <folder>/data/<key> (raw little-endian
// storages). Stored entries are aliased from the map; compressed ones are inflated, never
// beyond the size their storage needs.

// storageSource returns the raw bytes of a storage, at least need bytes long, and whether
// they alias the file.
type storageSource func(key string, need int64) ([]byte, bool, error)

func parseTorchZip(b []byte) ([]string, map[string]*tensor.Tensor, bool, error) {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, nil, false, fmt.Errorf("torch zip: %w", err)
	}
	entries := map[string]*zip.File{}
	var pkl *zip.File
	for _, f := range zr.File {
		if _, dup := entries[f.Name]; dup {
			return nil, nil, false, fmt.Errorf("torch zip: entry %q appears twice", f.Name)
		}
		entries[f.Name] = f
		if dir, base, ok := strings.Cut(f.Name, "/"); ok && base == "data.pkl" && dir != "" {
			if pkl != nil {
				return nil, nil, false, errors.New("torch zip: more than one data.pkl")
			}
			pkl = f
		}
	}
	if pkl == nil {
		return nil, nil, false, errors.New("torch zip: no <folder>/data.pkl entry")
	}
	prefix := strings.TrimSuffix(pkl.Name, "data.pkl")
	prog, _, err := entryBytes(b, pkl, MaxPickleLen)
	if err != nil {
		return nil, nil, false, fmt.Errorf("torch zip: read %s: %w", pkl.Name, err)
	}
	obj, err := unpickle(prog)
	if err != nil {
		return nil, nil, false, fmt.Errorf("torch zip: %s: %w", pkl.Name, err)
	}
	cache := map[string][]byte{}
	src := func(key string, need int64) ([]byte, bool, error) {
		name := prefix + "data/" + key
		f, ok := entries[name]
		if !ok {
			return nil, false, fmt.Errorf("missing data entry %q", name)
		}
		if c, ok := cache[key]; ok {
			if int64(len(c)) < need {
				return nil, false, fmt.Errorf("data entry %q has %d bytes, storage needs %d", name, len(c), need)
			}
			return c, f.Method == zip.Store, nil
		}
		data, aliased, err := entryBytes(b, f, need)
		if err != nil {
			return nil, false, fmt.Errorf("read data entry %q: %w", name, err)
		}
		if int64(len(data)) < need {
			return nil, false, fmt.Errorf("data entry %q has %d bytes, storage needs %d", name, len(data), need)
		}
		cache[key] = data
		return data, aliased, nil
	}
	names, tensors, aliased, err := stateDict(obj, src)
	if err != nil {
		return nil, nil, false, fmt.Errorf("torch zip: %w", err)
	}
	return names, tensors, aliased, nil
}

// entryBytes returns the content of a zip entry: a slice of b for stored entries, an
// inflated copy of at most limit bytes otherwise.
func entryBytes(b []byte, f *zip.File, limit int64) ([]byte, bool, error) {
	if f.UncompressedSize64 > uint64(limit) {
		return nil, false, fmt.Errorf("entry declares %d bytes, more than the %d expected", f.UncompressedSize64, limit)
	}
	if f.Method == zip.Store {
		off, err := f.DataOffset()
		if err != nil {
			return nil, false, err
		}
		n := f.UncompressedSize64
		if f.CompressedSize64 != n {
			return nil, false, fmt.Errorf("stored entry with compressed size %d != size %d", f.CompressedSize64, n)
		}
		if off < 0 || uint64(off) > uint64(len(b)) || n > uint64(len(b))-uint64(off) {
			return nil, false, fmt.Errorf("stored entry of %d bytes at offset %d runs past the end of the file", n, off)
		}
		return b[off : off+int64(n)], true, nil
	}
	rc, err := f.Open()
	if err != nil {
		return nil, false, err
	}
	defer rc.Close()
	// Never trust the declared size: read at most one byte more than the declared
	// (and allowed) size, so a zip bomb is caught after a bounded read.
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(rc, int64(f.UncompressedSize64)+1))
	if errors.Is(err, zip.ErrFormat) || uint64(n) > f.UncompressedSize64 {
		// archive/zip reports reading past the declared size as ErrFormat.
		return nil, false, fmt.Errorf("entry inflates to more than its declared %d bytes", f.UncompressedSize64)
	}
	if err != nil {
		return nil, false, fmt.Errorf("inflate: %w", err)
	}
	if uint64(n) != f.UncompressedSize64 {
		return nil, false, fmt.Errorf("entry inflates to %d bytes, not its declared %d", n, f.UncompressedSize64)
	}
	return buf.Bytes(), false, nil
}

// stateDict turns the unpickled object into named tensors. It accepts a dict of
// tensors, or a checkpoint dict holding one under "state_dict"; a "module." prefix
// (from DataParallel) is dropped, as open_clip does.
func stateDict(obj any, src storageSource) ([]string, map[string]*tensor.Tensor, bool, error) {
	d, ok := obj.(*pyDict)
	if !ok {
		return nil, nil, false, fmt.Errorf("pickle holds a %s, want a dict of tensors", typeName(obj))
	}
	if sd, ok := d.get("state_dict"); ok {
		if d2, ok := sd.(*pyDict); ok {
			d = d2
		}
	}
	names := make([]string, 0, len(d.keys))
	tensors := make(map[string]*tensor.Tensor, len(d.keys))
	aliased := false
	for i, k := range d.keys {
		name, ok := k.(string)
		if !ok {
			return nil, nil, false, fmt.Errorf("state dict key %v is a %s, not a string", k, typeName(k))
		}
		name = strings.TrimPrefix(name, "module.")
		ref, ok := d.vals[i].(*pyTensor)
		if !ok {
			return nil, nil, false, fmt.Errorf("state dict entry %q is a %s, not a tensor", name, typeName(d.vals[i]))
		}
		if _, dup := tensors[name]; dup {
			return nil, nil, false, fmt.Errorf("state dict names %q twice", name)
		}
		t, al, err := materialize(ref, src)
		if err != nil {
			return nil, nil, false, fmt.Errorf("tensor %q: %w", name, err)
		}
		aliased = aliased || al
		names = append(names, name)
		tensors[name] = t
	}
	return names, tensors, aliased, nil
}

// maxElements caps one tensor (2^40 float32 = 4 TiB: beyond any checkpoint).
const maxElements = 1 << 40

// materialize builds the float32 tensor a _rebuild_tensor_v2 call describes: element
// (i0..in) is storage[offset + Σ ik*stride[k]].
func materialize(ref *pyTensor, src storageSource) (*tensor.Tensor, bool, error) {
	s := ref.storage
	if s.numel > maxElements {
		return nil, false, fmt.Errorf("storage of %d elements is too large", s.numel)
	}
	shape := make([]int, len(ref.size))
	numel := int64(1)
	for i, d := range ref.size {
		if d > maxElements {
			return nil, false, fmt.Errorf("size %v is too large", ref.size)
		}
		shape[i] = int(d)
		if numel != 0 && d != 0 && numel > maxElements/d {
			return nil, false, fmt.Errorf("size %v is too large", ref.size)
		}
		numel *= d
	}
	if numel == 0 {
		return &tensor.Tensor{Shape: shape, Data: []float32{}}, false, nil
	}
	// The last element read must lie inside the storage.
	last := ref.offset
	for i, d := range ref.size {
		st := ref.stride[i]
		if st > maxElements || (d-1) > 0 && st > (maxElements-last)/(d-1) {
			return nil, false, fmt.Errorf("size %v with stride %v reaches beyond any storage", ref.size, ref.stride)
		}
		last += (d - 1) * st
	}
	if last >= s.numel {
		return nil, false, fmt.Errorf("size %v, stride %v and offset %d read element %d of a storage of %d", ref.size, ref.stride, ref.offset, last, s.numel)
	}
	if numel > s.numel {
		return nil, false, fmt.Errorf("%d elements from a storage of %d (broadcast strides are not supported)", numel, s.numel)
	}
	raw, fromMap, err := src(s.key, s.numel*int64(s.dtype.size()))
	if err != nil {
		return nil, false, err
	}
	es := int64(s.dtype.size())
	if contiguous(ref.size, ref.stride) {
		v, al := decode(raw[ref.offset*es:], s.dtype, int(numel))
		return &tensor.Tensor{Shape: shape, Data: v}, al && fromMap, nil
	}
	out := make([]float32, numel)
	idx := make([]int64, len(ref.size))
	pos := ref.offset
	for i := range out {
		out[i] = element(raw, s.dtype, int(pos))
		for k := len(idx) - 1; k >= 0; k-- {
			idx[k]++
			pos += ref.stride[k]
			if idx[k] < ref.size[k] {
				break
			}
			pos -= idx[k] * ref.stride[k]
			idx[k] = 0
		}
	}
	return &tensor.Tensor{Shape: shape, Data: out}, false, nil
}

// contiguous reports whether stride is the row-major stride of size (dimensions of
// size 1 may have any stride).
func contiguous(size, stride []int64) bool {
	want := int64(1)
	for i := len(size) - 1; i >= 0; i-- {
		if size[i] != 1 && stride[i] != want {
			return false
		}
		want *= size[i]
	}
	return true
}
