package cuda

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"testing"
)

func TestFramesRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	ids := [][]int32{{1, 2, 3}, {4, 5, 6}}
	if err := writeFrame(&buf, msgTexts, encodeTexts(9, ids, 3)); err != nil {
		t.Fatal(err)
	}
	if err := writeFrame(&buf, msgResult, enc(nil).u64(9).u32(2).f32s([]float32{1.5, -2})); err != nil {
		t.Fatal(err)
	}
	if err := writeFrame(&buf, msgFailure, enc(nil).u64(3).u8(flagSticky).str("boom")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(&buf)
	f, err := readFrame(r, nil)
	if err != nil || f.typ != msgTexts {
		t.Fatalf("readFrame = %v, %v", f.typ, err)
	}
	tr, err := decodeTexts(f.payload)
	if err != nil || tr.id != 9 || len(tr.ids) != 2 || tr.ids[1][2] != 6 {
		t.Errorf("decodeTexts = %+v, %v", tr, err)
	}
	f, _ = readFrame(r, nil)
	res, err := decodeResult(f.payload)
	if err != nil || res.id != 9 || len(res.out) != 2 || res.out[1] != -2 {
		t.Errorf("decodeResult = %+v, %v", res, err)
	}
	f, _ = readFrame(r, nil)
	id, re, err := decodeFailure(f.payload)
	if err != nil || id != 3 || !re.sticky || re.Msg != "boom" {
		t.Errorf("decodeFailure = %d, %+v, %v", id, re, err)
	}
	if _, err := readFrame(r, nil); err != io.EOF {
		t.Errorf("readFrame at the end = %v, want io.EOF", err)
	}
}

func TestFramesBad(t *testing.T) {
	frame := func(n uint32, body string) *bufio.Reader {
		b := binary.LittleEndian.AppendUint32(nil, n)
		return bufio.NewReader(strings.NewReader(string(b) + body))
	}
	for _, tt := range []struct {
		name string
		r    *bufio.Reader
		want string
	}{
		{"empty frame", frame(0, "\x03"), "frame of 0 bytes"},
		{"huge frame", frame(maxFrame+1, "\x03"), "frame of"},
		{"truncated", frame(10, "\x03abc"), "unexpected EOF"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := readFrame(tt.r, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("readFrame = %v, want an error with %q", err, tt.want)
			}
		})
	}
	if _, err := decodeTexts(enc(nil).u64(1).u32(2).u32(77).u32(5)); err == nil {
		t.Error("decodeTexts of 1 id for 2x77 succeeded")
	}
	if _, err := decodeResult(enc(nil).u64(1).u32(3).f32s([]float32{1})); err == nil {
		t.Error("decodeResult of 1 float for 3 succeeded")
	}
	if _, err := decodeImages(enc(nil).u64(1).u32(1).u8(0)); err == nil {
		t.Error("decodeImages with an odd byte succeeded")
	}
	if _, _, err := decodeFailure(enc(nil).u64(1)); err == nil {
		t.Error("decodeFailure without flags and message succeeded")
	}
}

func TestPickGPU(t *testing.T) {
	gpus := []gpuInfo{
		{Index: 0, Name: "T4", Major: 7, Minor: 5, Free: 15 << 30},
		{Index: 1, Name: "A100", Major: 8, Free: 10 << 30},
		{Index: 2, Name: "H100", Major: 9, Free: 70 << 30},
		{Index: 3, Name: "busy L4", Major: 8, Minor: 9, Free: 100 << 20},
	}
	for _, tt := range []struct {
		name    string
		gpus    []gpuInfo
		want    int
		pick    int
		errPart string
	}{
		{"most free memory", gpus, -1, 2, ""},
		{"asked for one", gpus, 1, 1, ""},
		{"too old", gpus, 0, -1, "compute capability 7.5"},
		{"too little memory", gpus, 3, -1, "MB free"},
		{"no such index", gpus, 7, -1, "no GPU 7"},
		{"none", nil, -1, -1, "no NVIDIA GPU"},
		{"only unusable", gpus[:1], -1, -1, "need 8.0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g, err := pickGPU(tt.gpus, tt.want, 1<<30)
			if tt.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errPart) {
					t.Errorf("pickGPU = %+v, %v; want an error with %q", g, err, tt.errPart)
				}
				return
			}
			if err != nil || g.Index != tt.pick {
				t.Errorf("pickGPU = GPU %d, %v; want GPU %d", g.Index, err, tt.pick)
			}
		})
	}
}

func TestGPUSetting(t *testing.T) {
	for _, tt := range []struct {
		v    string
		off  bool
		want int
		err  bool
	}{{"", false, -1, false}, {"off", true, -1, false}, {"CPU", true, -1, false}, {"2", false, 2, false}, {"-1", false, -1, true}, {"fast", false, -1, true}} {
		off, want, err := gpuSetting(tt.v)
		if off != tt.off || want != tt.want || (err != nil) != tt.err {
			t.Errorf("gpuSetting(%q) = %v, %d, %v", tt.v, off, want, err)
		}
	}
}
