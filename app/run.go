package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/gata-contrib/gata/app/cli"
	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/app/gui"
	"github.com/gata-contrib/gata/dva/cuda"
)

// Main runs the command line (without the program name) and returns the exit status.
// SIGINT and SIGTERM end the running command cleanly.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args, os.Stdin, os.Stdout, os.Stderr, isTerminal(os.Stderr))
}

// run is Main with its inputs and outputs given, for tests.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, interactive bool) int {
	env := &cli.Env{
		Stdout:  stdout,
		Stderr:  stderr,
		Version: Version,
		Getenv:  os.Getenv,
		Serve: func(ctx context.Context, o cli.ServeOptions) error {
			opts := optionsFrom(o)
			opts.Stderr = stderr
			return serve(ctx, opts, stdout)
		},
		Window: func(ctx context.Context, o cli.ServeOptions) error {
			opts := optionsFrom(o)
			opts.Stderr = stderr
			return window(ctx, opts)
		},
		OpenCore: func(ctx context.Context, g cli.Global) (*core.Core, func() error, error) {
			opts := Options{DataDir: g.DataDir, LogLevel: g.LogLevel, Stderr: stderr, QuietStderr: g.LogLevel == ""}
			if dir, err := dataDirOf(g.DataDir); err == nil {
				opts.Passphrase = terminalPassphrase(dir, stdin, stderr)
			}
			a, err := New(ctx, opts)
			if err != nil {
				return nil, nil, err
			}
			a.StartJobs(ctx)
			return a.Core, a.Close, nil
		},
		GPURunner:   cuda.ServeRunner,
		Stdin:       stdin,
		Interactive: interactive,
	}
	return cli.Run(ctx, env, args)
}

// dataDirOf is the absolute data folder a command will use.
func dataDirOf(dir string) (string, error) {
	if dir == "" {
		d, err := DefaultDataDir()
		if err != nil {
			return "", err
		}
		dir = d
	}
	return filepath.Abs(dir)
}

// isTerminal reports whether f is a terminal (progress bars and questions go there).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func optionsFrom(o cli.ServeOptions) Options {
	return Options{DataDir: o.DataDir, LogLevel: o.LogLevel, Addr: o.Addr, Password: o.Password,
		TLSCertFile: o.TLSCertFile, TLSKeyFile: o.TLSKeyFile}
}

// serve runs headless until ctx ends: it prints the web UI's URL, with its key, on stdout.
func serve(ctx context.Context, opts Options, stdout io.Writer) (err error) {
	a, err := New(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := a.Close(); err == nil {
			err = cerr
		}
	}()
	if err := a.Start(ctx); err != nil {
		return err
	}
	if err := a.WaitWebReady(ctx); err != nil {
		return nil // interrupted before the web UI listened
	}
	fmt.Fprintf(stdout, "Web UI: %s\n", a.WebLoginURL())
	a.Log.Info("serving", "url", a.web.URL(), "data_dir", a.opts.DataDir)
	<-a.Context().Done()
	return nil
}

// window opens the desktop window on the calling (main) goroutine, with the web UI beside it.
func window(ctx context.Context, opts Options) (err error) {
	a, err := New(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := a.Close(); err == nil {
			err = cerr
		}
	}()
	if err := a.Start(ctx); err != nil {
		return err
	}
	return gui.Run(a.Context(), a.Core, gui.Options{Logger: a.Log, WebURL: a.WebLoginURL})
}
