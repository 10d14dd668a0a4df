// Package core is the service layer of the app: one method per user action, with the
// request, response and event types both front-ends (the Fyne window and the web UI) use.
// The front-ends hold no logic of their own; everything they show comes from here.
package core

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"time"
)

// Options are what the composition root hands the core.
type Options struct {
	Version  string
	DataDir  string
	Store    Store
	Logger   *slog.Logger
	LogLevel *slog.LevelVar // changed when the log level setting changes; may be nil
	// Models and LoadEngine give the Validate section its models; nil leaves it unavailable.
	Models     ModelStore
	LoadEngine EngineLoader
	// Secrets keeps API keys and the wallet key (the OS keyring or the encrypted file);
	// nil: keys come from the environment variables the providers name.
	Secrets SecretStore
	// Passphrase asks for the passphrase of the encrypted secrets file when none was
	// given through UnlockSecrets (the CLI: $GATA_PASSPHRASE or a terminal prompt); nil
	// means the UIs must call UnlockSecrets first.
	Passphrase func() (string, error)
	// WalletScryptN is the scrypt cost of the wallet's V3 keystore (file and export);
	// 0 means go-ethereum's standard cost (tests use a light one).
	WalletScryptN int
	// Uploader takes the outbox to Greenfield (a supervised service the app runs); nil
	// leaves uploads queued and sharing unavailable.
	Uploader Uploader
}

// Store is the part of the database the core uses directly.
type Store interface {
	SettingsStore
	JobHistory
	RunStore
	ChatStore
	SubmissionStore
	IntegrityCheck(ctx context.Context) ([]string, error)
	SchemaVersion(ctx context.Context) (int, error)
	LatestSchemaVersion() int
}

// Core is the app's service layer.
type Core struct {
	opts    Options
	store   Store
	log     *slog.Logger
	bus     *eventBus
	jobs    *Jobs
	specs   []SettingSpec
	started time.Time
	webURL  func() string
	engines engines
	scores  scoreCache // sorted scores of the run last reviewed
	images  imageCache // image reader of the run last reviewed
	pausers runPausers // pause switches of the running runs
	chat    chatState  // the battles streaming now
	secrets secretsState
	wallet  walletState
	share   share           // the worker running in this process
	gfield  greenfieldState // the Greenfield account uploads go through
}

// New builds the core. Call Jobs().Serve under the supervisor before starting jobs.
func New(opts Options) (*Core, error) {
	if opts.Store == nil {
		return nil, fmt.Errorf("new core: a store is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	bus := newEventBus(1024)
	c := &Core{
		opts:    opts,
		store:   opts.Store,
		log:     opts.Logger,
		bus:     bus,
		jobs:    newJobs(bus, opts.Store, opts.Logger),
		specs:   append(settingSpecs(), greenfieldSettingSpecs()...),
		started: time.Now(),
	}
	for i := range c.specs {
		if c.specs[i].Key == SettingModel {
			c.specs[i].validate = c.checkModelSetting
		}
	}
	return c, nil
}

// Close stops the battles streaming now (they are stored as they are) and releases
// what the core loaded (models). Call it after the services stopped.
func (c *Core) Close() error {
	c.chat.close()
	return c.closeEngines()
}

// Jobs is the job registry (a supervised service).
func (c *Core) Jobs() *Jobs { return c.jobs }

// SetWebURL tells the core how to find the web UI's address once it listens.
func (c *Core) SetWebURL(f func() string) { c.webURL = f }

// Info describes the running app.
type Info struct {
	Version   string    `json:"version"`
	DataDir   string    `json:"data_dir"`
	WebURL    string    `json:"web_url,omitempty"`
	GoVersion string    `json:"go_version"`
	OS        string    `json:"os"`
	Arch      string    `json:"arch"`
	PID       int       `json:"pid"`
	Started   time.Time `json:"started"`
}

// Info returns what the app is and where it keeps its data.
func (c *Core) Info() Info {
	i := Info{
		Version: c.opts.Version, DataDir: c.opts.DataDir, GoVersion: runtime.Version(),
		OS: runtime.GOOS, Arch: runtime.GOARCH, PID: os.Getpid(), Started: c.started,
	}
	if c.webURL != nil {
		i.WebURL = c.webURL()
	}
	return i
}

// Events returns the buffered events after the given ID and whether older ones the
// caller has not seen were already dropped.
func (c *Core) Events(after int64) ([]Event, bool) {
	evs, missed, _ := c.bus.since(after)
	return evs, missed
}

// WaitEvents blocks until there are events after the given ID, or ctx ends.
func (c *Core) WaitEvents(ctx context.Context, after int64) ([]Event, bool, error) {
	return c.bus.wait(ctx, after)
}

// LastEventID is the ID of the newest event.
func (c *Core) LastEventID() int64 { return c.bus.lastID() }

// ListJobs returns the running and recent jobs, newest first.
func (c *Core) ListJobs() []JobInfo { return c.jobs.List() }

// Job returns one job.
func (c *Core) Job(id string) (JobInfo, error) { return c.jobs.Get(id) }

// CancelJob asks a job to stop.
func (c *Core) CancelJob(id string) error { return c.jobs.Cancel(id) }

// Section is one of the app's five areas, as both UIs list them.
type Section struct {
	ID      string   `json:"id"`
	Title   string   `json:"title"`
	Summary string   `json:"summary"`
	Coming  []string `json:"coming,omitempty"` // what this section will offer and does not yet
}

// Sections lists the app's areas in display order.
func (c *Core) Sections() []Section {
	return []Section{
		{ID: "chat", Title: "Chat", Summary: "Ask one question to two to four models at once, compare the answers side by side without knowing which model wrote which, and vote for the best. Every vote becomes preference data for training open models."},
		{ID: "validate", Title: "Validate", Summary: "Score how well captions describe their images with a DFN CLIP model on your GPU or CPU, and filter datasets down to the pairs worth training on.",
			Coming: []string{"Scoring on an NVIDIA GPU, with the CPU as the fallback"}},
		{ID: "share", Title: "Share", Summary: "Donate spare GPU time to a pool that scores datasets. Work runs only when your GPU is idle and within the limits you set, and verified work is credited to your wallet.",
			Coming: []string{"Scoring jobs on the GPU (the CPU scores them today)"}},
		{ID: "submit", Title: "Submit", Summary: "Your wallet signs what you contribute, so anyone can check who made it, and uploads it to BNB Greenfield, private unless you share it."},
		{ID: "settings", Title: "Settings", Summary: "Where the app keeps its data, the web UI's address, the theme and the log level."},
	}
}
