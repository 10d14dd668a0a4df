package pipeline

import (
	"slices"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		want    []string
		wantErr string // part of the error; "" when none is wanted
	}{
		{"plain", "data/a.tar", []string{"data/a.tar"}, ""},
		{"padded range", "shards/{00000..00003}.tar", []string{"shards/00000.tar", "shards/00001.tar", "shards/00002.tar", "shards/00003.tar"}, ""},
		{"padded to the wider end", "{8..010}", []string{"008", "009", "010"}, ""},
		{"unpadded range", "{9..11}", []string{"9", "10", "11"}, ""},
		{"descending", "{3..1}", []string{"3", "2", "1"}, ""},
		{"negative", "{-1..1}", []string{"-1", "0", "1"}, ""},
		{"one-item range", "{5..5}", []string{"5"}, ""},
		{"letters", "{a..d}", []string{"a", "b", "c", "d"}, ""},
		{"list", "x.{csv,tsv,jsonl}", []string{"x.csv", "x.tsv", "x.jsonl"}, ""},
		{"empty item", "a{,b}", []string{"a", "ab"}, ""},
		{"several braces", "{a,b}/{0..1}", []string{"a/0", "a/1", "b/0", "b/1"}, ""},
		{"nested", "{a,b{1..2}}.tar", []string{"a.tar", "b1.tar", "b2.tar"}, ""},
		{"single item kept", "x{y}z", []string{"x{y}z"}, ""},
		{"empty braces kept", "x{}", []string{"x{}"}, ""},
		{"kept braces expand inside", "{{a,b}}", []string{"{a}", "{b}"}, ""},
		{"windows path", `C:\data\{0..1}.tar`, []string{`C:\data\0.tar`, `C:\data\1.tar`}, ""},
		{"empty", "", nil, "empty"},
		{"unmatched open", "shards/{0..9.tar", nil, "unmatched '{' at byte 7"},
		{"unmatched close", "shards/0..9}.tar", nil, "unmatched '}' at byte 11"},
		{"open end", "{1..}", nil, "malformed range {1..}"},
		{"word range", "{ab..cd}", nil, "malformed range {ab..cd}"},
		{"mixed range", "{a..9}", nil, "malformed range {a..9}"},
		{"step", "{1..9..2}", nil, "malformed range {1..9..2}"},
		{"too many in a range", "{0..1000000}", nil, "more than 1000000 expansions"},
		{"too many in a product", "{0..999}{0..999}{0..1}", nil, "more than 1000000 expansions"},
		{"huge ends", "{-9223372036854775808..9223372036854775807}", nil, "more than 1000000 expansions"},
		{"overflowing end", "{0..99999999999999999999}", nil, "malformed range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Expand(tt.pattern)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Expand(%q) error = %v, want one containing %q", tt.pattern, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Expand(%q): %v", tt.pattern, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Expand(%q) = %q, want %q", tt.pattern, got, tt.want)
			}
		})
	}
}

func TestExpandAtTheCap(t *testing.T) {
	got, err := Expand("{0..999}{000..999}")
	if err != nil {
		t.Fatalf("Expand: %v", err)
	}
	if len(got) != MaxExpansions || got[0] != "0000" || got[len(got)-1] != "999999" {
		t.Errorf("Expand gave %d paths from %q to %q, want %d from 0000 to 999999", len(got), got[0], got[len(got)-1], MaxExpansions)
	}
}

// FuzzExpand checks that Expand never panics, keeps to its cap, and that a pattern without
// braces is its own only expansion.
func FuzzExpand(f *testing.F) {
	for _, s := range []string{"shards/{00000..00099}.tar", "{a,b}{1..3}", "{a,{b,c}}", "{", "}", "{1..}", "{z..a}", "x{}", "{-5..05}"} {
		f.Add(s)
	}
	const limit = 10_000
	f.Fuzz(func(t *testing.T, pattern string) {
		got, err := expandLimit(pattern, limit)
		if err != nil {
			if got != nil {
				t.Fatalf("expandLimit(%q) returned paths with error %v", pattern, err)
			}
			return
		}
		if len(got) == 0 || len(got) > limit {
			t.Fatalf("expandLimit(%q) gave %d paths, want 1..%d", pattern, len(got), limit)
		}
		if !strings.ContainsAny(pattern, "{}") && (len(got) != 1 || got[0] != pattern) {
			t.Fatalf("expandLimit(%q) = %q, want the pattern itself", pattern, got)
		}
	})
}
