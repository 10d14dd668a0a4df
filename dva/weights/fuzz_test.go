package weights

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/gata-contrib/gata/dva/internal/refdata"
	"github.com/gata-contrib/gata/dva/tensor"
)

var update = flag.Bool("update", false, "rewrite the seed corpora under testdata/fuzz")

// FuzzSafetensors: any input either fails cleanly or gives tensors whose data matches
// their shape; the data buffer bounds every allocation.
func FuzzSafetensors(f *testing.F) {
	f.Add(stFile(stTensor{"w", "F32", []int{2}, f32s(1, 2)}))
	f.Fuzz(func(t *testing.T, b []byte) {
		names, ts, _, err := parseSafetensors(b)
		if err != nil {
			return
		}
		if len(names) != len(ts) {
			t.Fatalf("parseSafetensors: %d names, %d tensors", len(names), len(ts))
		}
		for _, n := range names {
			tt := ts[n]
			if len(tt.Data) != tensor.Numel(tt.Shape) {
				t.Fatalf("parseSafetensors: tensor %q has %d values for shape %v", n, len(tt.Data), tt.Shape)
			}
		}
	})
}

// FuzzUnpickle runs the pickle machine and the state-dict builder on arbitrary bytes,
// with storages of zeros (at most 1 MiB each) standing in for the zip entries.
func FuzzUnpickle(f *testing.F) {
	f.Add(statePickle(ptTensor{name: "w", key: "0", storage: "HalfStorage", numel: 6, offset: 1, size: []int{2, 2}, stride: []int{1, 3}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		obj, err := unpickle(b)
		if err != nil {
			return
		}
		src := func(key string, need int64) ([]byte, bool, error) {
			if need > 1<<20 {
				return nil, false, errors.New("storage too large for the fuzz source")
			}
			return make([]byte, need), false, nil
		}
		names, ts, _, err := stateDict(obj, src)
		if err != nil {
			return
		}
		for _, n := range names {
			if tt := ts[n]; len(tt.Data) != tensor.Numel(tt.Shape) {
				t.Fatalf("stateDict: tensor %q has %d values for shape %v", n, len(tt.Data), tt.Shape)
			}
		}
	})
}

// TestFuzzSeeds rewrites testdata/fuzz with -update, from the reference files and files
// built by the tests, and otherwise checks that the corpora are there.
func TestFuzzSeeds(t *testing.T) {
	if !*update {
		for _, d := range []string{"FuzzSafetensors", "FuzzUnpickle"} {
			m, _ := filepath.Glob(filepath.Join("testdata", "fuzz", d, "*"))
			if len(m) < 3 {
				t.Errorf("testdata/fuzz/%s holds %d seeds; regenerate with go test -run TestFuzzSeeds -update", d, len(m))
			}
		}
		return
	}
	dir := refdata.Clip(t)
	st := [][]byte{
		stFile(stTensor{"half", "F16", []int{2, 2}, u16s(0x3c00, 0xc000, 0x0001, 0x7c00)},
			stTensor{"bf", "BF16", []int{1}, u16s(0x3f80)}, stTensor{"odd", "F32", []int{1}, f32s(1.5)}),
		stFile(stTensor{"scalar", "F32", []int{}, f32s(4.6)}, stTensor{"empty", "F32", []int{0}, nil}),
		stRaw(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, f32s(1, 2, 3)),
	}
	ref, err := os.ReadFile(filepath.Join(dir, "open_clip_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	st = append(st, ref[:4096]) // the real header, cut short
	var pk [][]byte
	for _, p := range []string{filepath.Join(dir, "open_clip_pytorch_model.bin"), filepath.Join("testdata", "torch_variants.bin")} {
		pk = append(pk, readPickle(t, p))
	}
	pk = append(pk, statePickle(ptTensor{name: "w", key: "0", storage: "BFloat16Storage", numel: 4, size: []int{2, 2}, stride: []int{1, 2}}))
	writeCorpus(t, "FuzzSafetensors", st)
	writeCorpus(t, "FuzzUnpickle", pk)
}

func readPickle(t *testing.T, path string) []byte {
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if filepath.Base(f.Name) == "data.pkl" {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatalf("no data.pkl in %s", path)
	return nil
}

func writeCorpus(t *testing.T, name string, seeds [][]byte) {
	dir := filepath.Join("testdata", "fuzz", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range seeds {
		var buf bytes.Buffer
		fmt.Fprintf(&buf, "go test fuzz v1\n[]byte(%q)\n", s)
		p := filepath.Join(dir, fmt.Sprintf("%x", sha256.Sum256(s))[:16])
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
