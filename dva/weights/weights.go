// Package weights loads OpenCLIP checkpoints (open_clip_model.safetensors or the torch zip
// open_clip_pytorch_model.bin) into named float32 tensors.
//
// The file is memory-mapped. Float32 tensors that are contiguous and 4-byte aligned are
// aliased straight from the map on little-endian machines, so loading a 600 MB model does
// not need twice its size; float16/bfloat16 and strided tensors are converted into fresh
// float32 memory. Nothing a pickle names is ever executed: the torch loader understands a
// fixed allow-list of globals and rejects everything else.
package weights

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"github.com/gata-contrib/gata/dva/tensor"
)

// Limits that protect against hostile or corrupt files.
const (
	// MaxHeaderLen caps the JSON header of a safetensors file.
	MaxHeaderLen = 100 << 20
	// MaxPickleLen caps data.pkl of a torch zip.
	MaxPickleLen = 64 << 20
)

// Set is the tensors of one checkpoint, in file order.
type Set struct {
	names   []string
	tensors map[string]*tensor.Tensor
	m       *mapping // nil when no tensor aliases the file
}

// Names returns the tensor names in file order (safetensors header order, state_dict order).
func (s *Set) Names() []string { return append([]string(nil), s.names...) }

// Get returns the tensor called name. Tensors may alias the memory map: they are valid
// until Close.
func (s *Set) Get(name string) (*tensor.Tensor, bool) {
	t, ok := s.tensors[name]
	return t, ok
}

// Len is the number of tensors.
func (s *Set) Len() int { return len(s.names) }

// Close releases the memory map. Tensors obtained from Get must not be used afterwards.
func (s *Set) Close() error {
	s.tensors = nil
	s.names = nil
	if s.m == nil {
		return nil
	}
	m := s.m
	s.m = nil
	return m.close()
}

// Load opens a checkpoint, detecting the format from the content: a safetensors file
// (u64 little-endian header length, then a JSON object) or a torch zip archive.
func Load(path string) (*Set, error) {
	m, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("load weights %q: %w", path, err)
	}
	var (
		names   []string
		tensors map[string]*tensor.Tensor
		aliased bool
	)
	switch format(m.data) {
	case formatSafetensors:
		names, tensors, aliased, err = parseSafetensors(m.data)
	case formatTorchZip:
		names, tensors, aliased, err = parseTorchZip(m.data)
	case formatTorchLegacy:
		err = errors.New("legacy (non-zip) torch pickle format is not supported; re-save with torch.save")
	default:
		err = errors.New("unrecognised format: neither safetensors nor a torch zip archive")
	}
	if err != nil {
		m.close()
		return nil, fmt.Errorf("load weights %q: %w", path, err)
	}
	s := &Set{names: names, tensors: tensors}
	if aliased {
		s.m = m
	} else if err := m.close(); err != nil {
		return nil, fmt.Errorf("load weights %q: release map: %w", path, err)
	}
	return s, nil
}

type fileFormat int

const (
	formatUnknown fileFormat = iota
	formatSafetensors
	formatTorchZip
	formatTorchLegacy
)

func format(b []byte) fileFormat {
	switch {
	case bytes.HasPrefix(b, []byte("PK\x03\x04")) || bytes.HasPrefix(b, []byte("PK\x05\x06")):
		return formatTorchZip
	case len(b) >= 9 && b[8] == '{':
		return formatSafetensors
	case len(b) >= 2 && b[0] == 0x80 && b[1] >= 2 && b[1] <= 5:
		return formatTorchLegacy
	case len(b) >= 8:
		// A header length followed by something that is not JSON: let the
		// safetensors parser say what is wrong with it.
		return formatSafetensors
	}
	return formatUnknown
}

// dtype is an element type found in a checkpoint.
type dtype int

const (
	f32 dtype = iota
	f16
	bf16
)

func (d dtype) size() int {
	if d == f32 {
		return 4
	}
	return 2
}

func (d dtype) String() string {
	return [...]string{"float32", "float16", "bfloat16"}[d]
}

var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// aliasF32 returns b viewed as float32s when that is possible without copying.
func aliasF32(b []byte) ([]float32, bool) {
	if !littleEndian || len(b)%4 != 0 {
		return nil, false
	}
	if len(b) == 0 {
		return []float32{}, true
	}
	if uintptr(unsafe.Pointer(&b[0]))%4 != 0 {
		return nil, false
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4), true
}

// element reads element i of a raw little-endian buffer of type d as float32.
func element(b []byte, d dtype, i int) float32 {
	switch d {
	case f16:
		return halfToFloat(binary.LittleEndian.Uint16(b[2*i:]))
	case bf16:
		return bfloatToFloat(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
}

// decode converts a contiguous raw buffer of n elements of type d into float32, aliasing
// when it can. It reports whether the result aliases b.
func decode(b []byte, d dtype, n int) ([]float32, bool) {
	b = b[:n*d.size()]
	if d == f32 {
		if v, ok := aliasF32(b); ok {
			return v, len(v) > 0
		}
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = element(b, d, i)
	}
	return out, false
}
