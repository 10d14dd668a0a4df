package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

type recorder struct {
	env            Env
	stdout, stderr bytes.Buffer
	served         *ServeOptions
	window         *ServeOptions
	vars           map[string]string
}

func newRecorder() *recorder {
	r := &recorder{vars: map[string]string{}}
	r.env = Env{
		Stdout: &r.stdout, Stderr: &r.stderr, Version: "1.2.3",
		Getenv: func(k string) string { return r.vars[k] },
		Serve:  func(_ context.Context, o ServeOptions) error { r.served = &o; return nil },
		Window: func(_ context.Context, o ServeOptions) error { r.window = &o; return nil },
	}
	return r
}

func TestRun(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		vars       map[string]string
		wantCode   int
		wantStdout string
		wantStderr string
		check      func(t *testing.T, r *recorder)
	}{
		{name: "version", args: []string{"version"}, wantStdout: "gata 1.2.3 ("},
		{name: "help", args: []string{"help"}, wantStdout: "serve"},
		{name: "--help", args: []string{"--help"}, wantStdout: "usage:"},
		{name: "help serve", args: []string{"help", "serve"}, wantStdout: "-addr"},
		{name: "serve -h", args: []string{"serve", "-h"}, wantStdout: "usage: gata serve"},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: 2, wantStderr: `gata: unknown command "frobnicate" (run 'gata help' for the list)` + "\n"},
		{name: "bad flag", args: []string{"serve", "--bogus"}, wantCode: 2, wantStderr: "gata: serve: flag provided but not defined: -bogus\n"},
		{name: "stray argument", args: []string{"version", "extra"}, wantCode: 2, wantStderr: `unexpected argument "extra"`},
		{name: "help unknown", args: []string{"help", "nope"}, wantCode: 2, wantStderr: `help: unknown command "nope"`},
		{name: "serve flags", args: []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", "/tmp/x", "--log-level", "debug"},
			vars: map[string]string{"GATA_WEB_PASSWORD": "pw"},
			check: func(t *testing.T, r *recorder) {
				want := ServeOptions{Global: Global{DataDir: "/tmp/x", LogLevel: "debug"}, Addr: "127.0.0.1:0", Password: "pw"}
				if r.served == nil || *r.served != want {
					t.Errorf("Serve got %+v, want %+v", r.served, want)
				}
			}},
		{name: "window without display", args: nil, wantCode: 1, wantStderr: "run 'gata serve'",
			check: func(t *testing.T, r *recorder) {
				if r.window != nil {
					t.Error("Window called without a display")
				}
			}},
		{name: "window with display", args: []string{"--data-dir", "/d"}, vars: map[string]string{"DISPLAY": ":1"},
			check: func(t *testing.T, r *recorder) {
				if r.window == nil || r.window.DataDir != "/d" {
					t.Errorf("Window got %+v", r.window)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecorder()
			for k, v := range tt.vars {
				r.vars[k] = v
			}
			code := Run(context.Background(), &r.env, tt.args)
			if code != tt.wantCode {
				t.Errorf("Run(%q) = %d, want %d (stderr %q)", tt.args, code, tt.wantCode, r.stderr.String())
			}
			if !strings.Contains(r.stdout.String(), tt.wantStdout) {
				t.Errorf("Run(%q) stdout = %q, want it to contain %q", tt.args, r.stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(r.stderr.String(), tt.wantStderr) {
				t.Errorf("Run(%q) stderr = %q, want it to contain %q", tt.args, r.stderr.String(), tt.wantStderr)
			}
			if tt.wantCode != 0 && strings.Count(r.stderr.String(), "\n") != 1 {
				t.Errorf("Run(%q) error is not one line: %q", tt.args, r.stderr.String())
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}
