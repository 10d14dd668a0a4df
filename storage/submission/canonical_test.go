package submission

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
)

func TestCanonical(t *testing.T) {
	type rec struct {
		Zeta  string         `json:"zeta"`
		Alpha int            `json:"alpha"`
		Mid   map[string]any `json:"mid"`
		List  []any          `json:"list"`
	}
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"struct fields sorted", rec{Zeta: "z", Alpha: 1, Mid: map[string]any{"b": 2, "a": []int{1}}, List: []any{map[string]any{"y": true, "x": nil}}},
			`{"alpha":1,"list":[{"x":null,"y":true}],"mid":{"a":[1],"b":2},"zeta":"z"}`},
		{"html left alone", map[string]string{"q": "<a & b>"}, `{"q":"<a & b>"}`},
		{"unicode and escapes", map[string]string{"s": "café \"quoted\"\n\t\u2028"}, `{"s":"café \"quoted\"\n\t\u2028"}`},
		{"numbers", map[string]any{"f": 0.25, "i": -3, "big": uint64(1 << 60), "e": 1e21}, `{"big":1152921504606846976,"e":1e+21,"f":0.25,"i":-3}`},
		{"empty", map[string]any{}, `{}`},
		{"key order by bytes", map[string]int{"b": 1, "B": 2, "a_": 3, "a": 4}, `{"B":2,"a":4,"a_":3,"b":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Canonical(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("Canonical = %s, want %s", got, tt.want)
			}
			again, err := canonicalize(got)
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("canonicalize(Canonical) = %s, %v; want it unchanged", again, err)
			}
		})
	}
	if _, err := Canonical(map[string]any{"f": func() {}}); err == nil {
		t.Errorf("Canonical of a func = nil error")
	}
}

func TestWriterAndScan(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	recs := []any{
		map[string]any{"id": "b1", "score": 0.5},
		struct {
			B string `json:"b"`
			A string `json:"a"`
		}{"x", strings.Repeat("long ", 20000)},
		map[string]any{"nested": map[string]any{"z": 1, "y": []string{"<", ">"}}},
	}
	for _, r := range recs {
		if err := w.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	c := w.Content()
	if c.Records != 3 || c.Bytes != uint64(buf.Len()) || c.SHA256 != sha256.Sum256(buf.Bytes()) {
		t.Fatalf("Content = %+v; file has %d bytes", c, buf.Len())
	}
	if n := bytes.Count(buf.Bytes(), []byte("\n")); n != 3 {
		t.Errorf("file has %d lines, want 3", n)
	}
	got, err := Scan(bytes.NewReader(buf.Bytes()))
	if err != nil || got != c {
		t.Errorf("Scan = %+v, %v; want %+v", got, err, c)
	}
	if err := w.Add([]int{1}); err == nil {
		t.Errorf("Add of an array = nil error")
	}
	if err := w.Add("x"); err == nil {
		t.Errorf("Add of a string = nil error")
	}
	if empty, err := Scan(strings.NewReader("")); err != nil || empty.Records != 0 || empty.SHA256 != sha256.Sum256(nil) {
		t.Errorf("Scan(empty) = %+v, %v", empty, err)
	}
}

func TestScanNotCanonical(t *testing.T) {
	tests := []struct {
		name, file string
	}{
		{"space after colon", "{\"a\": 1}\n"},
		{"keys out of order", "{\"b\":1,\"a\":2}\n"},
		{"blank line", "{\"a\":1}\n\n{\"a\":2}\n"},
		{"no final newline", "{\"a\":1}\n{\"a\":2}"},
		{"array", "[1,2]\n"},
		{"string", "\"x\"\n"},
		{"escaped letter", "{\"a\":\"\\u0041\"}\n"},
		{"html escaped", "{\"a\":\"\\u003c\"}\n"},
		{"two values", "{\"a\":1}{\"b\":2}\n"},
		{"not json", "{a:1}\n"},
		{"crlf", "{\"a\":1}\r\n"},
		{"leading space", " {\"a\":1}\n"},
		{"duplicate key", "{\"a\":1,\"a\":2}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Scan(strings.NewReader(tt.file))
			if !errors.Is(err, ErrNotCanonical) {
				t.Errorf("Scan(%q) = %v, want ErrNotCanonical", tt.file, err)
			}
			if c.Bytes != uint64(len(tt.file)) || c.SHA256 != sha256.Sum256([]byte(tt.file)) {
				t.Errorf("Scan(%q) summed %+v, want the whole file", tt.file, c)
			}
		})
	}
	long := "{\"a\":\"" + strings.Repeat("x", MaxRecordBytes) + "\"}\n"
	if _, err := Scan(strings.NewReader(long)); !errors.Is(err, ErrNotCanonical) || !strings.Contains(err.Error(), "longer") {
		t.Errorf("Scan of a line over MaxRecordBytes = %v", err)
	}
}
