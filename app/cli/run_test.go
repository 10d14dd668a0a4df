package cli

import (
	"context"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/gata-contrib/gata/app/core"
)

func TestDVARunUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no source", []string{"dva", "run", "--out", "o"}, "name at least one SOURCE"},
		{"no out", []string{"dva", "run", "data"}, "--out is required"},
		{"both thresholds", []string{"dva", "run", "data", "--out", "o", "--keep-top", "0.3", "--min-score", "0.2"}, "not both"},
		{"retry without resume", []string{"dva", "run", "data", "--out", "o", "--retry-failed"}, "--retry-failed needs --resume"},
		{"resume without id or source", []string{"dva", "run", "--resume"}, "needs the SOURCEs"},
		{"bad resume id", []string{"dva", "run", "--resume=x"}, `run id "x" is not a positive number`},
		{"unknown flag", []string{"dva", "run", "data", "--bogus"}, "flag provided but not defined: -bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecorder()
			if code := Run(context.Background(), &r.env, tt.args); code != 2 {
				t.Errorf("Run(%q) = %d, want 2 (stderr %q)", tt.args, code, r.stderr.String())
			}
			if got := r.stderr.String(); !strings.Contains(got, tt.want) || strings.Count(got, "\n") != 1 {
				t.Errorf("Run(%q) stderr = %q, want one line with %q", tt.args, got, tt.want)
			}
		})
	}
	r := newRecorder()
	if code := Run(context.Background(), &r.env, []string{"dva", "run", "--json", "--out", "o"}); code != 2 || !strings.HasPrefix(r.stdout.String(), `{"error":"dva run: name at least one SOURCE`) {
		t.Errorf("--json usage error: code %d, stdout %q", code, r.stdout.String())
	}
	r = newRecorder()
	if code := Run(context.Background(), &r.env, []string{"dva", "run", "-h"}); code != 0 || !strings.Contains(r.stdout.String(), "-keep-top") {
		t.Errorf("dva run -h: code %d, stdout %q", code, r.stdout.String())
	}
}

func TestRunFlagsInterleave(t *testing.T) {
	var out string
	var keep float64
	var res resumeFlag
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&out, "out", "", "")
	fs.Float64Var(&keep, "keep-top", 0, "")
	fs.Var(&res, "resume", "")
	pos, err := parseInterleaved(fs, joinResumeID([]string{"a.tar", "--out", "o", "b/{0..2}.tar", "--resume", "12", "--keep-top", "0.3", "--", "--c"}))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pos, []string{"a.tar", "b/{0..2}.tar", "--c"}) || out != "o" || keep != 0.3 || !res.set || res.id != 12 {
		t.Errorf("positional %q, out %q, keep %v, resume %+v", pos, out, keep, res)
	}
	res = resumeFlag{}
	pos, err = parseInterleaved(fs, joinResumeID([]string{"--resume", "data"}))
	if err != nil || !slices.Equal(pos, []string{"data"}) || !res.set || res.id != 0 {
		t.Errorf("--resume data: positional %q, resume %+v, %v", pos, res, err)
	}
}

func TestRunProgressLine(t *testing.T) {
	j := core.JobInfo{Progress: core.Progress{Done: 1200, Total: 5000, Unit: "items", Message: "3 failed · cpu (2 threads)"}, Rate: 85.25, ETA: 44.6}
	if got, want := runProgressLine(j), "1200/5000 items   24%  85.2 items/s  ETA 44s  3 failed · cpu (2 threads)"; got != want {
		t.Errorf("runProgressLine = %q, want %q", got, want)
	}
	j = core.JobInfo{Progress: core.Progress{Done: 7, Unit: "items"}, Rate: 2}
	if got, want := runProgressLine(j), "7 items  2.0 items/s"; got != want {
		t.Errorf("runProgressLine(no total) = %q, want %q", got, want)
	}
}
