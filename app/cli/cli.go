// Package cli is the command line of the app: it parses subcommands and flags, prints help,
// and hands the work to the functions the composition root provides. Usage errors exit 2,
// failures exit 1, each with a one-line message.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"

	"github.com/gata-contrib/gata/app/core"
)

// Global are the flags every command takes.
type Global struct {
	DataDir  string
	LogLevel string
}

// ServeOptions are the flags of `gata serve` (and of the window, which also serves the web UI).
type ServeOptions struct {
	Global
	Addr        string
	Password    string
	TLSCertFile string
	TLSKeyFile  string
}

// Env is what the commands need from the rest of the app.
type Env struct {
	Stdout, Stderr io.Writer
	Version        string
	Getenv         func(string) string
	// Window opens the desktop window (and the web UI) and returns when the user quits.
	Window func(ctx context.Context, o ServeOptions) error
	// Serve runs headless: web UI and background services, until ctx ends or a signal.
	Serve func(ctx context.Context, o ServeOptions) error
	// OpenCore opens the data folder for a command that needs no UI; close releases it.
	OpenCore func(ctx context.Context, g Global) (c *core.Core, close func() error, err error)
	// GPURunner serves the GPU runner protocol on stdin and stdout (the hidden
	// `gata gpu-runner`, started by the app itself).
	GPURunner func(ctx context.Context, stdin io.Reader, stdout io.Writer) error
	// Stdin and Interactive: where answers come from and whether a person is there to
	// see progress bars and answer questions.
	Stdin       io.Reader
	Interactive bool
}

// UsageError is a mistake on the command line (exit status 2).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *Env, args []string) error
}

func commands() []command {
	return []command{
		{"chat", "one prompt to 2–4 models side by side, blind votes: providers, models, ask, leaderboard, export", runChat},
		{"dva", "score image–text pairs: embed, score, run (whole datasets)", runDVA},
		{"models", "CLIP models: pull, list, verify", runModels},
		{"pool", "hand a dataset out to workers over NATS, verify and credit their results: run, invite, status", runPool},
		{"serve", "run headless: the web UI and background services; prints the URL with its key", runServe},
		{"submit", "pack what you made (chat votes, DVA scores), sign it with your wallet, queue it for upload", runSubmit},
		{"verify", "check a submission's signature and content hash, print the signer", runVerify},
		{"wallet", "your key for signing submissions: new, import, show, export", runWallet},
		{"worker", "share this machine with a pool: take scoring jobs, sign and return the results", runWorker},
		{"version", "print the version", runVersion},
		{"help", "show help for the app or a command", runHelp},
		{"gpu-runner", "", runGPURunner}, // hidden: the app's GPU child process
	}
}

// Run executes the command line (without the program name) and returns the exit status.
func Run(ctx context.Context, env *Env, args []string) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	err := dispatch(ctx, env, args)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case isUsage(err):
		fmt.Fprintf(env.Stderr, "gata: %v\n", err)
		return 2
	default:
		fmt.Fprintf(env.Stderr, "gata: %s\n", oneLine(err.Error()))
		return 1
	}
}

func isUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func dispatch(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			printUsage(env.Stdout)
			return nil
		}
		return runWindow(ctx, env, args)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, env, args[1:])
		}
	}
	return &UsageError{Msg: fmt.Sprintf("unknown command %q (run 'gata help' for the list)", args[0])}
}

// newFlags returns a flag set that reports errors as UsageError, not by printing usage.
func newFlags(name string, g *Global) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&g.DataDir, "data-dir", "", "data folder (default: per-user data folder, or $GATA_DATA_DIR)")
	fs.StringVar(&g.LogLevel, "log-level", "", "log level: debug, info, warn, error (default: the setting, else info)")
	return fs
}

func parse(fs *flag.FlagSet, args []string, env *Env, usage string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(env.Stdout, "usage: %s\n\n", usage)
			fs.SetOutput(env.Stdout)
			fs.PrintDefaults()
			return flag.ErrHelp
		}
		return &UsageError{Msg: fmt.Sprintf("%s: %v", fs.Name(), err)}
	}
	if fs.NArg() > 0 {
		return &UsageError{Msg: fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}

func serveFlags(name string, o *ServeOptions, env *Env) *flag.FlagSet {
	fs := newFlags(name, &o.Global)
	fs.StringVar(&o.Addr, "addr", "", "web UI address host:port (default: the setting, else 127.0.0.1:7800; port 0 picks a free one)")
	fs.StringVar(&o.TLSCertFile, "tls-cert", "", "TLS certificate file (required with a non-loopback --addr)")
	fs.StringVar(&o.TLSKeyFile, "tls-key", "", "TLS key file (required with a non-loopback --addr)")
	o.Password = env.Getenv("GATA_WEB_PASSWORD")
	return fs
}

func runWindow(ctx context.Context, env *Env, args []string) error {
	var o ServeOptions
	fs := serveFlags("gata", &o, env)
	if err := parse(fs, args, env, "gata [flags]"); err != nil {
		return err
	}
	if !hasDisplay(env.Getenv) {
		return errors.New("no display found (DISPLAY and WAYLAND_DISPLAY are not set): run 'gata serve' to use the web UI instead")
	}
	return env.Window(ctx, o)
}

// hasDisplay reports whether a desktop window can open. Windows and macOS always have one.
func hasDisplay(getenv func(string) string) bool {
	switch runtime.GOOS {
	case "windows", "darwin", "ios", "android":
		return true
	}
	return getenv("DISPLAY") != "" || getenv("WAYLAND_DISPLAY") != ""
}

func runServe(ctx context.Context, env *Env, args []string) error {
	var o ServeOptions
	fs := serveFlags("serve", &o, env)
	if err := parse(fs, args, env, "gata serve [--addr 127.0.0.1:7800] [flags]"); err != nil {
		return err
	}
	return env.Serve(ctx, o)
}

func runVersion(ctx context.Context, env *Env, args []string) error {
	var g Global
	fs := newFlags("version", &g)
	if err := parse(fs, args, env, "gata version"); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "gata %s (%s, %s/%s)\n", env.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

func runHelp(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 {
		printUsage(env.Stdout)
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] && c.name != "help" {
			return c.run(ctx, env, []string{"--help"})
		}
	}
	return &UsageError{Msg: fmt.Sprintf("help: unknown command %q", args[0])}
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `Gata Contributor: contribute to open AI and be credited for it.

usage:
  gata [--data-dir DIR] [--addr HOST:PORT]   open the desktop window (and the local web UI)
  gata COMMAND [flags]

commands:
`)
	cs := commands()
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		if c.summary == "" {
			continue // hidden
		}
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
flags every command takes:
  --data-dir DIR     where the database, models, exports and logs live ($GATA_DATA_DIR)
  --log-level LEVEL  debug, info, warn or error

Run 'gata help COMMAND' for a command's flags.
`)
}
