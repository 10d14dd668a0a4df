package weights

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/gata-contrib/gata/dva/internal/refdata"
	"github.com/gata-contrib/gata/dva/tensor"
)

// headerOrder reads the tensor names and shapes of a safetensors header with nothing but
// encoding/json, as an independent check of the loader.
func headerOrder(t *testing.T, path string) ([]string, map[string][]int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	dec := json.NewDecoder(bytes.NewReader(b[8 : 8+n]))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var names []string
	shapes := map[string][]int{}
	for dec.More() {
		k, _ := dec.Token()
		var v struct {
			Shape []int `json:"shape"`
		}
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		if k.(string) == "__metadata__" {
			continue
		}
		names = append(names, k.(string))
		shapes[k.(string)] = v.Shape
	}
	return names, shapes
}

func load(t *testing.T, path string) *Set {
	t.Helper()
	s, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%q): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func equalShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func inMap(s *Set, v []float32) bool {
	if s.m == nil || len(v) == 0 || len(s.m.data) == 0 {
		return false
	}
	p := uintptr(unsafe.Pointer(&v[0]))
	lo := uintptr(unsafe.Pointer(&s.m.data[0]))
	return p >= lo && p < lo+uintptr(len(s.m.data))
}

// TestReferenceFiles loads both weight files of the shared reference model: the same
// names in the same order (the safetensors header order), the same shapes, and every
// float bit-identical.
func TestReferenceFiles(t *testing.T) {
	dir := refdata.Clip(t)
	stPath := filepath.Join(dir, "open_clip_model.safetensors")
	st := load(t, stPath)
	pt := load(t, filepath.Join(dir, "open_clip_pytorch_model.bin"))
	names, shapes := headerOrder(t, stPath)
	if len(names) != 62 {
		t.Fatalf("reference header lists %d tensors, want 62", len(names))
	}
	for _, set := range []struct {
		name string
		s    *Set
	}{{"safetensors", st}, {"torch zip", pt}} {
		got := set.s.Names()
		if strings.Join(got, ",") != strings.Join(names, ",") {
			t.Errorf("%s: Names() = %v, want %v", set.name, got, names)
		}
	}
	elems := 0
	for _, name := range names {
		a, ok := st.Get(name)
		if !ok {
			t.Fatalf("safetensors: Get(%q) missing", name)
		}
		b, ok := pt.Get(name)
		if !ok {
			t.Fatalf("torch zip: Get(%q) missing", name)
		}
		if !equalShape(a.Shape, shapes[name]) || !equalShape(b.Shape, shapes[name]) {
			t.Errorf("Get(%q) shapes %v and %v, want %v", name, a.Shape, b.Shape, shapes[name])
		}
		if len(a.Data) != tensor.Numel(a.Shape) || len(b.Data) != len(a.Data) {
			t.Fatalf("Get(%q): %d and %d elements for shape %v", name, len(a.Data), len(b.Data), a.Shape)
		}
		for i := range a.Data {
			if math.Float32bits(a.Data[i]) != math.Float32bits(b.Data[i]) {
				t.Fatalf("Get(%q)[%d] = %v (safetensors) vs %v (torch zip)", name, i, a.Data[i], b.Data[i])
			}
		}
		elems += len(a.Data)
		// Both files are 4-byte aligned float32: nothing should be copied.
		if len(a.Data) > 0 && (!inMap(st, a.Data) || !inMap(pt, b.Data)) {
			t.Errorf("Get(%q): data not aliased from the memory map", name)
		}
	}
	if ls, _ := st.Get("logit_scale"); len(ls.Shape) != 0 || len(ls.Data) != 1 {
		t.Errorf("Get(logit_scale) = %v with %d values, want a 0-d tensor", ls, len(ls.Data))
	}
	t.Logf("%d tensors, %d floats bit-identical", len(names), elems)
}

// TestTorchVariants reads a file written by torch.save (testdata/gen_torch_variants.py)
// with float16 and bfloat16 storages, strided views, a storage offset, a shared storage
// and an nn.Parameter, and compares with what PyTorch itself read back.
func TestTorchVariants(t *testing.T) {
	s := load(t, filepath.Join("testdata", "torch_variants.bin"))
	raw, err := os.ReadFile(filepath.Join("testdata", "torch_variants.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]struct {
		Shape []int     `json:"shape"`
		Data  []float64 `json:"data"`
	}
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	wantNames := []string{"half", "bfloat", "transposed", "offset_view", "row_view", "param", "scalar", "half_transposed"}
	if got := s.Names(); strings.Join(got, ",") != strings.Join(wantNames, ",") {
		t.Fatalf("Names() = %v, want %v", got, wantNames)
	}
	for _, name := range wantNames {
		t.Run(name, func(t *testing.T) {
			got, ok := s.Get(name)
			if !ok {
				t.Fatalf("Get(%q) missing", name)
			}
			w := want[name]
			if !equalShape(got.Shape, w.Shape) {
				t.Fatalf("Get(%q).Shape = %v, want %v", name, got.Shape, w.Shape)
			}
			if len(got.Data) != len(w.Data) {
				t.Fatalf("Get(%q): %d values, want %d", name, len(got.Data), len(w.Data))
			}
			for i, v := range w.Data {
				if math.Float32bits(got.Data[i]) != math.Float32bits(float32(v)) {
					t.Errorf("Get(%q)[%d] = %v, want %v", name, i, got.Data[i], float32(v))
				}
			}
		})
	}
}

// stFile builds a safetensors file from (name, dtype, shape, raw data) entries.
type stTensor struct {
	name  string
	dtype string
	shape []int
	data  []byte
}

func stFile(ts ...stTensor) []byte {
	var hdr bytes.Buffer
	hdr.WriteString(`{"__metadata__":{"format":"pt"}`)
	var data []byte
	for _, tt := range ts {
		sh, _ := json.Marshal(tt.shape)
		js, _ := json.Marshal(tt.name)
		hdr.WriteString("," + string(js) + `:{"dtype":"` + tt.dtype + `","shape":` + string(sh) +
			`,"data_offsets":[` + itoa(len(data)) + `,` + itoa(len(data)+len(tt.data)) + `]}`)
		data = append(data, tt.data...)
	}
	hdr.WriteString("}")
	return stRaw(hdr.String(), data)
}

// stRaw pads the header with spaces so that the data starts 8-byte aligned, as writers do.
func stRaw(header string, data []byte) []byte {
	header += strings.Repeat(" ", (8-len(header)%8)%8)
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func u16s(v ...uint16) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint16(b, x)
	}
	return b
}

func f32s(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSafetensorsDtypes checks the float16 and bfloat16 conversions bit for bit, an
// unaligned float32 tensor (copied, not aliased) and a zero-size tensor.
func TestSafetensorsDtypes(t *testing.T) {
	inf := float32(math.Inf(1))
	b := stFile(
		stTensor{"half", "F16", []int{2, 4}, u16s(0x3c00, 0xc000, 0x0001, 0x03ff, 0x7bff, 0x7c00, 0x8000, 0x3555)},
		stTensor{"bf", "BF16", []int{3}, u16s(0x3f80, 0xc049, 0xff80)},
		stTensor{"odd", "F32", []int{2}, f32s(1.5, -7)}, // starts at byte 22 of the buffer: unaligned
		stTensor{"empty", "F32", []int{0, 3}, nil},
	)
	s := load(t, writeTemp(t, "dtypes.safetensors", b))
	tests := []struct {
		name string
		want []float32
	}{
		{"half", []float32{1, -2, 0x1p-24, 1023 * 0x1p-24, 65504, inf, float32(math.Copysign(0, -1)), 0.33325195}},
		{"bf", []float32{1, -3.140625, float32(math.Inf(-1))}},
		{"odd", []float32{1.5, -7}},
		{"empty", []float32{}},
	}
	for _, tt := range tests {
		got, ok := s.Get(tt.name)
		if !ok {
			t.Fatalf("Get(%q) missing", tt.name)
		}
		if len(got.Data) != len(tt.want) {
			t.Fatalf("Get(%q) = %v, want %v", tt.name, got.Data, tt.want)
		}
		for i := range tt.want {
			if math.Float32bits(got.Data[i]) != math.Float32bits(tt.want[i]) {
				t.Errorf("Get(%q)[%d] = %v, want %v", tt.name, i, got.Data[i], tt.want[i])
			}
		}
	}
	if odd, _ := s.Get("odd"); inMap(s, odd.Data) {
		t.Errorf("Get(odd): unaligned data aliased from the map")
	}
}

// pickle building blocks for torch zip test files.
func pUnicode(s string) []byte {
	return append(binary.LittleEndian.AppendUint32([]byte{'X'}, uint32(len(s))), s...)
}

func pInt(n int) []byte { return binary.LittleEndian.AppendUint32([]byte{'J'}, uint32(n)) }

func pTuple(items ...[]byte) []byte {
	b := []byte{'('}
	for _, it := range items {
		b = append(b, it...)
	}
	return append(b, 't')
}

func pGlobal(mod, name string) []byte { return []byte("c" + mod + "\n" + name + "\n") }

type ptTensor struct {
	name, key, storage string
	numel, offset      int
	size, stride       []int
}

func ints(v []int) [][]byte {
	var out [][]byte
	for _, x := range v {
		out = append(out, pInt(x))
	}
	return out
}

// statePickle writes the pickle torch.save writes for an OrderedDict of tensors.
func statePickle(ts ...ptTensor) []byte {
	b := []byte{0x80, 2}
	b = append(b, pGlobal("collections", "OrderedDict")...)
	b = append(b, ')', 'R', '(')
	for _, tt := range ts {
		b = append(b, pUnicode(tt.name)...)
		b = append(b, pGlobal("torch._utils", "_rebuild_tensor_v2")...)
		pid := pTuple(pUnicode("storage"), pGlobal("torch", tt.storage), pUnicode(tt.key), pUnicode("cpu"), pInt(tt.numel))
		args := pTuple(append(pid, 'Q'), pInt(tt.offset), pTuple(ints(tt.size)...), pTuple(ints(tt.stride)...),
			[]byte{0x89}, append(pGlobal("collections", "OrderedDict"), ')', 'R'))
		b = append(b, args...)
		b = append(b, 'R')
	}
	return append(b, 'u', '.')
}

type zipEntry struct {
	name    string
	data    []byte
	deflate bool
	rawSize uint64 // if set, the declared size of a raw (pre-compressed) entry
}

func zipFile(t *testing.T, entries ...zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Store}
		if e.deflate {
			h.Method = zip.Deflate
		}
		if e.rawSize != 0 {
			h.UncompressedSize64 = e.rawSize
			h.CompressedSize64 = uint64(len(e.data))
			w, err := zw.CreateRaw(h)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(e.data)
			continue
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(e.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func deflated(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestCompression)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// TestTorchZipWritten checks a torch zip written here: a deflated storage (read, not
// mapped), a strided view with an offset into a shared storage.
func TestTorchZipWritten(t *testing.T) {
	pkl := statePickle(
		ptTensor{name: "a", key: "0", storage: "FloatStorage", numel: 6, size: []int{2, 3}, stride: []int{3, 1}},
		ptTensor{name: "module.b", key: "0", storage: "FloatStorage", numel: 6, offset: 1, size: []int{2, 2}, stride: []int{1, 3}},
	)
	b := zipFile(t,
		zipEntry{name: "m/data.pkl", data: pkl, deflate: true},
		zipEntry{name: "m/data/0", data: f32s(0, 1, 2, 3, 4, 5), deflate: true},
	)
	s := load(t, writeTemp(t, "m.bin", b))
	if got := strings.Join(s.Names(), ","); got != "a,b" {
		t.Fatalf("Names() = %s, want a,b (module. prefix dropped)", got)
	}
	bt, _ := s.Get("b")
	want := []float32{1, 4, 2, 5}
	for i, w := range want {
		if bt.Data[i] != w {
			t.Fatalf("Get(b).Data = %v, want %v", bt.Data, want)
		}
	}
}

// TestInvalidFiles: every bad file fails Load with a one-line error saying what is wrong.
func TestInvalidFiles(t *testing.T) {
	good := ptTensor{name: "w", key: "0", storage: "FloatStorage", numel: 4, size: []int{4}, stride: []int{1}}
	okData := zipEntry{name: "m/data/0", data: f32s(1, 2, 3, 4)}
	osSystem := append([]byte{0x80, 2}, pGlobal("os", "system")...)
	osSystem = append(osSystem, pTuple(pUnicode("echo pwned"))...)
	osSystem = append(osSystem, 'R', '.')
	tests := []struct {
		name string
		file func(t *testing.T) []byte
		want string
	}{
		{"empty file", func(*testing.T) []byte { return nil }, "unrecognised format"},
		{"truncated header length", func(*testing.T) []byte { return []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}[:7] }, "unrecognised format"},
		{"truncated header", func(*testing.T) []byte {
			return stFile(stTensor{"w", "F32", []int{2}, f32s(1, 2)})[:20]
		}, "truncated: header length"},
		{"truncated data", func(*testing.T) []byte {
			b := stFile(stTensor{"w", "F32", []int{2}, f32s(1, 2)})
			return b[:len(b)-3]
		}, "out of range"},
		{"header length too big", func(*testing.T) []byte {
			return append(binary.LittleEndian.AppendUint64(nil, 200<<20), "{}"...)
		}, "exceeds the limit"},
		{"header not JSON", func(*testing.T) []byte { return stRaw("[1, 2]  ", nil) }, "not a JSON object"},
		{"header broken JSON", func(*testing.T) []byte { return stRaw(`{"w": {"dtype": `, nil) }, "read header"},
		{"trailing garbage", func(*testing.T) []byte { return stRaw(`{} x`, nil) }, "trailing data"},
		{"unknown dtype", func(*testing.T) []byte {
			return stFile(stTensor{"w", "I64", []int{1}, make([]byte, 8)})
		}, `unsupported dtype "I64"`},
		{"shape mismatch", func(*testing.T) []byte {
			return stFile(stTensor{"w", "F32", []int{3}, f32s(1, 2)})
		}, "needs 12 bytes but data_offsets span 8"},
		{"negative dimension", func(*testing.T) []byte {
			return stRaw(`{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, f32s(1))
		}, "invalid dimension -1"},
		{"huge shape", func(*testing.T) []byte {
			return stRaw(`{"w":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,4]}}`, f32s(1))
		}, "too large"},
		{"offsets out of range", func(*testing.T) []byte {
			return stRaw(`{"w":{"dtype":"F32","shape":[100],"data_offsets":[0,400]}}`, f32s(1, 2))
		}, "out of range of the 8-byte data buffer"},
		{"offsets reversed", func(*testing.T) []byte {
			return stRaw(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}`, f32s(1, 2, 3))
		}, "out of range"},
		{"overlap", func(*testing.T) []byte {
			return stRaw(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, f32s(1, 2, 3))
		}, `tensors "a" and "b" overlap`},
		{"duplicate name", func(*testing.T) []byte {
			return stRaw(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32s(1, 2))
		}, `names "a" twice`},
		{"legacy torch pickle", func(*testing.T) []byte { return []byte{0x80, 2, 0x8a, 0x0a, 'l', 0xfc} }, "legacy"},
		{"zip without data.pkl", func(t *testing.T) []byte {
			return zipFile(t, zipEntry{name: "m/version", data: []byte("3\n")})
		}, "no <folder>/data.pkl"},
		{"pickle with os system", func(t *testing.T) []byte {
			return zipFile(t, zipEntry{name: "m/data.pkl", data: osSystem})
		}, `refusing global "os system"`},
		{"pickle with builtins eval via STACK_GLOBAL", func(t *testing.T) []byte {
			p := []byte{0x80, 4, 0x8c, 8}
			p = append(p, "builtins"...)
			p = append(p, 0x8c, 4)
			p = append(p, "eval"...)
			p = append(p, 0x93, '.')
			return zipFile(t, zipEntry{name: "m/data.pkl", data: p})
		}, `refusing global "builtins eval"`},
		{"pickle truncated", func(t *testing.T) []byte {
			p := statePickle(good)
			return zipFile(t, zipEntry{name: "m/data.pkl", data: p[:len(p)-30]}, okData)
		}, "truncated pickle"},
		{"pickle unknown opcode", func(t *testing.T) []byte {
			return zipFile(t, zipEntry{name: "m/data.pkl", data: []byte{0x80, 2, 'i', '.'}}, okData)
		}, "unsupported pickle opcode 0x69"},
		{"pickle not a dict", func(t *testing.T) []byte {
			return zipFile(t, zipEntry{name: "m/data.pkl", data: []byte{0x80, 2, 'K', 7, '.'}})
		}, "pickle holds a int, want a dict"},
		{"unsupported storage type", func(t *testing.T) []byte {
			p := statePickle(ptTensor{name: "w", key: "0", storage: "LongStorage", numel: 1, size: []int{1}, stride: []int{1}})
			return zipFile(t, zipEntry{name: "m/data.pkl", data: p}, okData)
		}, `refusing global "torch LongStorage"`},
		{"missing data entry", func(t *testing.T) []byte {
			return zipFile(t, zipEntry{name: "m/data.pkl", data: statePickle(good)})
		}, `missing data entry "m/data/0"`},
		{"data entry too short", func(t *testing.T) []byte {
			return zipFile(t, zipEntry{name: "m/data.pkl", data: statePickle(good)}, zipEntry{name: "m/data/0", data: f32s(1, 2)})
		}, "has 8 bytes, storage needs 16"},
		{"view past the storage", func(t *testing.T) []byte {
			bad := good
			bad.offset, bad.size = 2, []int{3}
			return zipFile(t, zipEntry{name: "m/data.pkl", data: statePickle(bad)}, okData)
		}, "read element 4 of a storage of 4"},
		{"broadcast stride", func(t *testing.T) []byte {
			bad := good
			bad.size, bad.stride = []int{1000}, []int{0}
			return zipFile(t, zipEntry{name: "m/data.pkl", data: statePickle(bad)}, okData)
		}, "broadcast strides are not supported"},
		{"zip bomb", func(t *testing.T) []byte {
			// declares 16 bytes, inflates to 64 MiB
			bomb := deflated(make([]byte, 64<<20))
			return zipFile(t, zipEntry{name: "m/data.pkl", data: statePickle(good)},
				zipEntry{name: "m/data/0", data: bomb, deflate: true, rawSize: 16})
		}, "inflates to more than its declared 16 bytes"},
		{"zip entry declares too much", func(t *testing.T) []byte {
			return zipFile(t, zipEntry{name: "m/data.pkl", data: statePickle(good)},
				zipEntry{name: "m/data/0", data: deflated(make([]byte, 1<<20)), deflate: true, rawSize: 1 << 40})
		}, "declares 1099511627776 bytes, more than the 16 expected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeTemp(t, "bad.bin", tt.file(t))
			s, err := Load(p)
			if err == nil {
				s.Close()
				t.Fatalf("Load(%s) succeeded, want an error containing %q", tt.name, tt.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("Load(%s) = %q, want it to contain %q", tt.name, msg, tt.want)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("Load(%s) error spans lines: %q", tt.name, msg)
			}
			if !strings.Contains(msg, p) {
				t.Errorf("Load(%s) error %q does not name the file", tt.name, msg)
			}
		})
	}
}

func TestCloseReleases(t *testing.T) {
	s, err := Load(filepath.Join(refdata.Clip(t), "open_clip_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if s.m == nil {
		t.Fatal("Load kept no memory map for an aliasing file")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, ok := s.Get("logit_scale"); ok {
		t.Error("Get after Close found a tensor")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
