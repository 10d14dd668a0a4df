// Package app is the composition root: it turns Options into the running services
// (database, core, web UI, window) and supervises them. Only this package knows the
// concrete types of every part.
package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/app/web"
	"github.com/gata-contrib/gata/storage"
	"github.com/gata-contrib/gata/storage/greenfield"
)

// Version is the app's version, set at build time with -ldflags "-X .../app.Version=…".
var Version = "0.1.0-dev"

// Options configure the app. Zero values mean the defaults.
type Options struct {
	DataDir     string    // default: DefaultDataDir()
	LogLevel    string    // debug, info, warn, error; default: the stored setting, else info
	Addr        string    // web UI address; default: the stored setting, else 127.0.0.1:7800
	Password    string    // web UI password, required for a non-loopback Addr
	TLSCertFile string    // web UI TLS certificate, required for a non-loopback Addr
	TLSKeyFile  string    // web UI TLS key
	Stderr      io.Writer // where logs also go; default os.Stderr
	QuietStderr bool      // only warnings and errors on Stderr (one-shot commands); the log file gets all
	// Passphrase asks for the passphrase of the encrypted secrets file (where no keyring
	// service runs); nil: $GATA_PASSPHRASE if set, else the UIs ask (core.UnlockSecrets).
	Passphrase func() (string, error)
}

// App is the assembled application.
type App struct {
	opts     Options
	Log      *slog.Logger
	logLevel *slog.LevelVar
	logFile  *os.File
	store    *storage.Store
	Core     *core.Core
	sup      *Supervisor
	web      *web.Server
	uploader *greenfield.Uploader
}

// ShutdownDeadline is how long Close waits for the services to stop.
const ShutdownDeadline = 10 * time.Second

// DefaultDataDir is the per-user data folder of DESIGN §3, or $GATA_DATA_DIR.
func DefaultDataDir() (string, error) {
	if d := os.Getenv("GATA_DATA_DIR"); d != "" {
		return d, nil
	}
	switch runtime.GOOS {
	case "windows":
		if d := os.Getenv("AppData"); d != "" {
			return filepath.Join(d, "gata"), nil
		}
	case "darwin":
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find the data folder: %w", err)
		}
		return filepath.Join(home, "Library", "Application Support", "gata"), nil
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "gata"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the data folder (set --data-dir or GATA_DATA_DIR): %w", err)
	}
	return filepath.Join(home, ".local", "share", "gata"), nil
}

// New opens the data folder and the database and builds the core. Nothing runs until
// Start; Close releases everything.
func New(ctx context.Context, opts Options) (*App, error) {
	if opts.DataDir == "" {
		d, err := DefaultDataDir()
		if err != nil {
			return nil, err
		}
		opts.DataDir = d
	}
	abs, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data folder %q: %w", opts.DataDir, err)
	}
	opts.DataDir = abs
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	if opts.LogLevel != "" && !validLevel(opts.LogLevel) {
		return nil, fmt.Errorf("log level %q is not one of debug, info, warn, error", opts.LogLevel)
	}
	if err := os.MkdirAll(filepath.Join(opts.DataDir, "logs"), 0o700); err != nil {
		return nil, fmt.Errorf("create data folder: %w", err)
	}
	a := &App{opts: opts, logLevel: new(slog.LevelVar)}
	if err := a.openLog(); err != nil {
		return nil, err
	}
	a.store, err = storage.Open(ctx, filepath.Join(opts.DataDir, storage.DBName))
	if err != nil {
		a.logFile.Close()
		return nil, err
	}
	if opts.Passphrase == nil {
		opts.Passphrase = envPassphrase()
	}
	secrets := &lazySecrets{dir: opts.DataDir}
	a.uploader = greenfield.New(greenfield.Options{Store: a.store, Logger: a.Log.With("service", "uploader"),
		Connect:  func(ctx context.Context) (greenfield.Chain, error) { return a.Core.GreenfieldChain(ctx) },
		OnChange: func(id int64) { a.Core.UploadChanged(id) }})
	a.Core, err = core.New(core.Options{Version: Version, DataDir: opts.DataDir, Store: a.store, Logger: a.Log, LogLevel: a.logLevel,
		Models: modelStore(opts.DataDir), LoadEngine: engineLoader(a.Log.With("service", "dva")), Secrets: secrets, Passphrase: opts.Passphrase, Uploader: a.uploader})
	if err != nil {
		a.closeStores()
		return nil, err
	}
	// The stored log level applies unless the command line names one.
	lvl := opts.LogLevel
	if lvl == "" {
		lvl, _ = a.Core.SettingValue(ctx, core.SettingLogLevel)
	}
	a.logLevel.Set(core.ParseLogLevel(lvl))
	secrets.opts.Passphrase = a.Core.Passphrase
	a.Log.Debug("app opened", "data_dir", opts.DataDir, "version", Version)
	return a, nil
}

func validLevel(s string) bool {
	switch s {
	case "debug", "info", "warn", "error":
		return true
	}
	return false
}

// maxLogBytes is the size at which gata.log is moved to gata.log.1 at start.
const maxLogBytes = 10 << 20

func (a *App) openLog() error {
	path := filepath.Join(a.opts.DataDir, "logs", "gata.log")
	if st, err := os.Stat(path); err == nil && st.Size() > maxLogBytes {
		os.Rename(path, path+".1")
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	a.logFile = f
	hopts := &slog.HandlerOptions{Level: a.logLevel}
	var errLevel slog.Leveler = a.logLevel
	if a.opts.QuietStderr {
		errLevel = atLeast{a.logLevel, slog.LevelWarn}
	}
	a.Log = slog.New(slog.NewMultiHandler(
		slog.NewJSONHandler(f, hopts),
		slog.NewTextHandler(a.opts.Stderr, &slog.HandlerOptions{Level: errLevel}),
	))
	return nil
}

// StartJobs runs only the job registry: enough for command-line work that needs no web UI.
func (a *App) StartJobs(ctx context.Context) {
	a.sup = NewSupervisor(ctx, a.Log)
	a.sup.Add("jobs", a.Core.Jobs())
}

// atLeast is a level that never goes below a floor.
type atLeast struct {
	lv    slog.Leveler
	floor slog.Level
}

func (a atLeast) Level() slog.Level { return max(a.lv.Level(), a.floor) }

// Start runs the long-lived services under a supervisor: the job registry, the web UI,
// and the data check at start-up. The returned context ends when Close is called.
func (a *App) Start(ctx context.Context) error {
	addr := a.opts.Addr
	if addr == "" {
		addr, _ = a.Core.SettingValue(ctx, core.SettingWebAddr)
	}
	key, err := a.apiKey()
	if err != nil {
		return err
	}
	a.web, err = web.New(a.Core, web.Options{
		Addr: addr, APIKey: key, Password: a.opts.Password,
		TLSCertFile: a.opts.TLSCertFile, TLSKeyFile: a.opts.TLSKeyFile, Logger: a.Log,
	})
	if err != nil {
		return err
	}
	a.sup = NewSupervisor(ctx, a.Log)
	a.sup.Add("jobs", a.Core.Jobs())
	a.sup.Add("web", a.web)
	a.sup.Add("uploader", a.uploader)
	a.Core.SetWebURL(a.WebLoginURL)
	if _, err := a.Core.StartDataCheck(); err != nil {
		a.Log.Warn("start data check", "err", err)
	}
	return nil
}

// WaitWebReady blocks until the web UI listens, or ctx ends.
func (a *App) WaitWebReady(ctx context.Context) error {
	select {
	case <-a.web.Ready():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WebLoginURL is the URL that opens the web UI already signed in ("" before it listens).
func (a *App) WebLoginURL() string {
	if a.web == nil {
		return ""
	}
	select {
	case <-a.web.Ready():
		return a.web.LoginURL()
	default:
		return ""
	}
}

// Context ends when the app is closing.
func (a *App) Context() context.Context { return a.sup.Context() }

// Close stops every service (waiting up to ShutdownDeadline) and closes the database and log.
func (a *App) Close() error {
	var errs []error
	if a.sup != nil {
		if err := a.sup.Stop(ShutdownDeadline); err != nil {
			errs = append(errs, err)
		}
	}
	a.Log.Info("stopped")
	errs = append(errs, a.Core.Close(), a.closeStores())
	return errors.Join(errs...)
}

func (a *App) closeStores() error {
	var errs []error
	if a.store != nil {
		errs = append(errs, a.store.Close())
	}
	if a.logFile != nil {
		errs = append(errs, a.logFile.Close())
	}
	return errors.Join(errs...)
}

// apiKey returns the web UI's API key, made once and kept in web.key in the data folder
// (readable only by the user), so bookmarks and scripts keep working across restarts.
func (a *App) apiKey() (string, error) {
	path := filepath.Join(a.opts.DataDir, "web.key")
	if b, err := os.ReadFile(path); err == nil {
		if k := strings.TrimSpace(string(b)); len(k) >= 32 {
			return k, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read web UI key: %w", err)
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("make web UI key: %w", err)
	}
	k := hex.EncodeToString(raw[:])
	if err := os.WriteFile(path, []byte(k+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("save web UI key: %w", err)
	}
	return k, nil
}
