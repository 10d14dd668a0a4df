package core

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/gata-contrib/gata/agent"
	"github.com/gata-contrib/gata/agent/pool"
	"github.com/gata-contrib/gata/dva/pipeline"
	"github.com/gata-contrib/gata/storage/wallet"
)

// Share types as the screens and the CLI show them.
type (
	// WorkerEvent is one thing the worker did (a job taken, finished, given back, a pause).
	WorkerEvent = agent.Event
	// WorkerStats count what the worker did.
	WorkerStats = agent.Stats
	// GateState is whether the worker may run now, and why not.
	GateState = agent.State
	// GPUState is one card as the worker's telemetry read it.
	GPUState = agent.GPU
	// CreditNote is the worker's credit in the pool's ledger, as the pool told it.
	CreditNote = pool.CreditNote
)

// WorkerRequest starts `gata worker`: the pool to work for and the owner's limits.
type WorkerRequest struct {
	// Pool is the pool's address as `gata pool invite` printed it (the credential in its
	// user part), or an address with Token.
	Pool  string `json:"pool"`
	Token string `json:"-"`
	// TLSCA is the CA file that signed the pool's certificate, when it is not a public one.
	TLSCA string `json:"tls_ca,omitempty"`
	// GPUs are the card indexes that may be used (empty: all).
	GPUs []int `json:"gpus,omitempty"`
	// MaxTempC and MaxPowerW are the card limits (0: none).
	MaxTempC  float64 `json:"max_temp_c,omitempty"`
	MaxPowerW float64 `json:"max_power_w,omitempty"`
	// Schedule is "HH:MM-HH:MM[,…]" (empty: any time).
	Schedule string `json:"schedule,omitempty"`
	// AllowBusyGPU runs even while other programs use the card (by default the worker
	// waits until the card has been free of them for IdleGrace).
	AllowBusyGPU bool          `json:"allow_busy_gpu,omitempty"`
	IdleGrace    time.Duration `json:"-"`
	// RunOnBattery runs on battery too (by default the worker pauses).
	RunOnBattery bool `json:"run_on_battery,omitempty"`
	// PauseWhileActive pauses while the person uses keyboard or mouse, until ActiveGrace
	// (default 3 min) has passed without input; where the desktop does not tell (no X11
	// display), it has no effect.
	PauseWhileActive bool          `json:"pause_while_active,omitempty"`
	ActiveGrace      time.Duration `json:"-"`
	// AllowFullscreen works while a fullscreen program (a game, a film) is in front; by
	// default the worker pauses then, where the window manager tells.
	AllowFullscreen bool `json:"allow_fullscreen,omitempty"`
	// PauseFor pauses at start: "1h", "4h" or "tomorrow".
	PauseFor string `json:"pause_for,omitempty"`
	// PrivateKeyEnv names an environment variable with the hex key to sign with instead
	// of the wallet's.
	PrivateKeyEnv string `json:"-"`
	// Model, when set, scores every job with this model (a name or a folder) instead of
	// the one the job names; its weights must be the same.
	Model     string `json:"model,omitempty"`
	BatchSize int    `json:"-"`
	// Getenv reads PrivateKeyEnv (default os.Getenv).
	Getenv func(string) string `json:"-"`
}

// ParseGPUs reads GPU indexes as the screens and the command line take them: "0,1", with
// spaces and empty parts allowed; "" is none named, that is all of them.
func ParseGPUs(s string) ([]int, error) {
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not a GPU index", part)
		}
		out = append(out, n)
	}
	return out, nil
}

// Preferences turns the request into the worker's preferences.
func (r WorkerRequest) Preferences(now time.Time) (agent.Preferences, error) {
	p := agent.Preferences{GPUs: r.GPUs, MaxTempC: r.MaxTempC, MaxPowerW: r.MaxPowerW, RequireIdle: !r.AllowBusyGPU,
		IdleGrace: r.IdleGrace, SuspendOnBattery: !r.RunOnBattery, SuspendWhenActive: r.PauseWhileActive,
		ActiveGrace: r.ActiveGrace, SuspendFullscreen: !r.AllowFullscreen}
	if r.MaxTempC < 0 || r.MaxPowerW < 0 || r.ActiveGrace < 0 {
		return p, fmt.Errorf("%w: limits cannot be negative", ErrBadRun)
	}
	var err error
	if p.Schedule, err = agent.ParseSchedule(r.Schedule); err != nil {
		return p, fmt.Errorf("%w: %v", ErrBadRun, err)
	}
	if r.PauseFor != "" {
		if p.PauseUntil, err = agent.PauseFor(now, r.PauseFor); err != nil {
			return p, fmt.Errorf("%w: %v", ErrBadRun, err)
		}
	}
	return p, nil
}

// shareKeyName is the secret holding the worker key made when there is no wallet.
const shareKeyName = "share.worker_key"

// workerKey is the key results are signed with: the one PrivateKeyEnv names, else the
// wallet's, else a worker key made once and kept in the secret store (or, without one, in
// share/worker.key in the data folder).
func (c *Core) workerKey(ctx context.Context, req WorkerRequest) (*ecdsa.PrivateKey, string, error) {
	getenv := req.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if req.PrivateKeyEnv != "" {
		v := strings.TrimSpace(getenv(req.PrivateKeyEnv))
		if v == "" {
			return nil, "", fmt.Errorf("%w: $%s is empty", ErrBadRun, req.PrivateKeyEnv)
		}
		k, err := crypto.HexToECDSA(strings.TrimPrefix(v, "0x"))
		if err != nil {
			return nil, "", fmt.Errorf("%w: $%s is not a hex secp256k1 key", ErrBadRun, req.PrivateKeyEnv)
		}
		return k, "$" + req.PrivateKeyEnv, nil
	}
	wk, err := c.loadWallet(ctx) // the passphrase given in the UI counts too
	switch {
	case err == nil:
		k, err := crypto.HexToECDSA(strings.TrimPrefix(wk.ExportHex(), "0x"))
		if err != nil {
			return nil, "", fmt.Errorf("read the wallet key: %w", err)
		}
		return k, "the wallet", nil
	case !errors.Is(err, wallet.ErrNoWallet):
		return nil, "", err
	}
	if c.opts.Secrets != nil {
		if v, err := c.opts.Secrets.Get(ctx, shareKeyName); err == nil {
			if k, err := crypto.HexToECDSA(v); err == nil {
				return k, "a worker key in the secret store", nil
			}
		}
	}
	path := filepath.Join(c.opts.DataDir, "share", "worker.key")
	if b, err := os.ReadFile(path); err == nil {
		k, err := crypto.HexToECDSA(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, "", fmt.Errorf("read worker key %s: %w", path, err)
		}
		return k, path, nil
	}
	k, err := crypto.GenerateKey()
	if err != nil {
		return nil, "", fmt.Errorf("make a worker key: %w", err)
	}
	hexKey := fmt.Sprintf("%x", crypto.FromECDSA(k))
	if c.opts.Secrets != nil {
		if err := c.opts.Secrets.Set(shareKeyName, hexKey); err == nil {
			return k, "a new worker key in the secret store", nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, "", fmt.Errorf("keep the worker key: %w", err)
	}
	if err := os.WriteFile(path, []byte(hexKey+"\n"), 0o600); err != nil {
		return nil, "", fmt.Errorf("keep the worker key: %w", err)
	}
	return k, path, nil
}

// share is the worker running in this process, for the screens.
type share struct {
	mu     sync.Mutex
	worker *agent.Worker
	gov    *agent.Governor
}

// WorkerState is what the Share screens show of the running worker.
type WorkerState struct {
	Running bool        `json:"running"`
	Stats   WorkerStats `json:"stats"`
	Gate    GateState   `json:"gate"`
	// Limits says in words the owner's limits the worker keeps, one a line.
	Limits []string `json:"limits,omitempty"`
}

// Limits describes the preferences in words, as the Share screens list them.
func Limits(p agent.Preferences) []string {
	var out []string
	if len(p.GPUs) > 0 {
		ids := make([]string, len(p.GPUs))
		for i, g := range p.GPUs {
			ids[i] = fmt.Sprint(g)
		}
		out = append(out, "GPUs "+strings.Join(ids, ", ")+" only")
	}
	if p.RequireIdle {
		out = append(out, fmt.Sprintf("only while no other program uses the GPU, after it was free for %s", p.IdleGrace))
	}
	if p.MaxTempC > 0 {
		out = append(out, fmt.Sprintf("pauses a GPU at %.0f °C", p.MaxTempC))
	}
	if p.MaxPowerW > 0 {
		out = append(out, fmt.Sprintf("keeps a GPU under %.0f W", p.MaxPowerW))
	}
	if len(p.Schedule) > 0 {
		ws := make([]string, len(p.Schedule))
		for i, w := range p.Schedule {
			ws[i] = w.String()
		}
		out = append(out, "only "+strings.Join(ws, ", "))
	}
	if p.SuspendOnBattery {
		out = append(out, "not on battery")
	}
	if p.SuspendWhenActive {
		out = append(out, fmt.Sprintf("not while you use the computer, until %s after the last input", p.ActiveGrace))
	}
	if p.SuspendFullscreen {
		out = append(out, "not while a fullscreen program is in front")
	}
	if !p.PauseUntil.IsZero() {
		out = append(out, "paused until "+p.PauseUntil.Local().Format("Mon 15:04"))
	}
	return out
}

// ShareState returns the running worker's counts and its gate, if one runs.
func (c *Core) ShareState() WorkerState {
	c.share.mu.Lock()
	w, g := c.share.worker, c.share.gov
	c.share.mu.Unlock()
	if w == nil {
		return WorkerState{}
	}
	return WorkerState{Running: true, Stats: w.Stats(), Gate: g.State(), Limits: Limits(g.Preferences())}
}

// RunWorker shares this machine with a pool until ctx ends: it takes jobs, scores them with
// the job's model (pulled with `gata models pull` or a folder), signs each result and sends
// it back, within the owner's limits. started is called once with the worker's address and
// where its key came from; events hears every job, pause and connection change.
func (c *Core) RunWorker(ctx context.Context, req WorkerRequest, started func(address, keyFrom string), events func(WorkerEvent)) (WorkerStats, error) {
	if c.opts.Models == nil || c.opts.LoadEngine == nil {
		return WorkerStats{}, ErrNoValidate
	}
	if req.Pool == "" {
		return WorkerStats{}, fmt.Errorf("%w: no pool given (--pool URL)", ErrBadRun)
	}
	u, err := poolURL(req.Pool)
	if err != nil {
		return WorkerStats{}, fmt.Errorf("%w: %v", ErrBadRun, err)
	}
	prefs, err := req.Preferences(time.Now())
	if err != nil {
		return WorkerStats{}, err
	}
	key, from, err := c.workerKey(ctx, req)
	if err != nil {
		return WorkerStats{}, err
	}
	var tel agent.Telemetry
	device := "cpu"
	if n, err := agent.OpenNVML(); err != nil {
		c.log.Info("no NVIDIA GPU to read; the CPU is shared", "err", err)
	} else {
		defer n.Close()
		n.Own = agent.ChildOf(os.Getpid()) // the Validate engine's GPU runner is not another program
		tel = n
		if gpus, err := n.GPUs(ctx); err == nil && len(gpus) > 0 {
			device = gpus[0].Name
		}
	}
	desk := &agent.SystemDesktop{}
	defer desk.Close()
	gov := agent.NewGovernor(agent.GovernorOptions{Preferences: prefs, Telemetry: tel, Desktop: desk,
		OnChange: func(s agent.State) {
			if !s.Run {
				c.log.Info("sharing paused", "reason", s.Reason)
			}
		}})
	gov.Evaluate(ctx)
	if c.SharingPaused(ctx) {
		prefs.Paused = true
		gov.SetPreferences(prefs)
		gov.Evaluate(ctx)
	}
	engine := func(ctx context.Context, model, sha string) (pipeline.Scorer, string, error) {
		if req.Model != "" {
			model = req.Model
		}
		if strings.ContainsAny(model, `/\`) {
			model = absSpec(model)
		}
		dir, err := c.opts.Models.Resolve(model)
		if err != nil {
			return nil, "", err
		}
		if sha != "" {
			if sp, err := c.opts.Models.Spec(model); err == nil && sp.SHA256 != "" && !strings.EqualFold(sp.SHA256, sha) {
				return nil, "", fmt.Errorf("model %s here has weights %s, the pool's are %s", model, sp.SHA256, sha)
			}
		}
		e, err := c.engine(ctx, dir)
		if err != nil {
			return nil, "", err
		}
		s, ok := e.(pipeline.Scorer)
		if !ok {
			return nil, "", errors.New("the loaded model cannot score batches")
		}
		return s, e.Info().Backend, nil
	}
	w, err := agent.New(agent.Options{URL: u.String(), Token: req.Token, TLSCAFile: req.TLSCA, Key: key, Engine: engine,
		Gate: gov, Device: device, BatchSize: req.BatchSize, SpoolDir: filepath.Join(c.opts.DataDir, "share", "outbox"),
		Logger: c.log, OnEvent: events})
	if err != nil {
		return WorkerStats{}, err
	}
	c.share.mu.Lock()
	if c.share.worker != nil {
		c.share.mu.Unlock()
		return WorkerStats{}, errors.New("a worker runs already in this process")
	}
	c.share.worker, c.share.gov = w, gov
	c.share.mu.Unlock()
	defer func() {
		c.share.mu.Lock()
		c.share.worker, c.share.gov = nil, nil
		c.share.mu.Unlock()
	}()
	if started != nil {
		started(w.Address(), from)
	}
	gctx, stop := context.WithCancel(ctx)
	defer stop()
	go gov.Serve(gctx)
	go c.followSharingPaused(gctx, gov)
	err = w.Serve(ctx)
	return w.Stats(), err
}

// followSharingPaused keeps the governor paused while the share.paused setting (the
// window's "Pause sharing") is on.
func (c *Core) followSharingPaused(ctx context.Context, gov *agent.Governor) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p := gov.Preferences()
		if paused := c.SharingPaused(ctx); paused != p.Paused {
			p.Paused = paused
			gov.SetPreferences(p)
		}
	}
}

// ErrSharing: a worker runs already in this process (StartSharing), or none does (StopSharing).
var ErrSharing = errors.New("sharing")

// StartSharing runs the worker in the background as a job of kind "share.worker", so the
// screens can show it (jobs done, the reason of a pause) and stop it.
func (c *Core) StartSharing(req WorkerRequest) (JobInfo, error) {
	for _, j := range c.jobs.List() {
		if j.Kind == "share.worker" && !j.State.Ended() {
			return JobInfo{}, fmt.Errorf("%w: this app shares already (job %s)", ErrSharing, j.ID)
		}
	}
	if req.Pool == "" {
		return JobInfo{}, fmt.Errorf("%w: no pool given", ErrBadRun)
	}
	if _, err := poolURL(req.Pool); err != nil {
		return JobInfo{}, fmt.Errorf("%w: %v", ErrBadRun, err)
	}
	if _, err := req.Preferences(time.Now()); err != nil {
		return JobInfo{}, err
	}
	return c.jobs.Start(JobSpec{Kind: "share.worker", Title: "Sharing with " + RedactPool(req.Pool), Subject: RedactPool(req.Pool),
		Run: func(ctx context.Context, report func(Progress)) (any, error) {
			var mu sync.Mutex
			var jobs int64
			msg := "connecting"
			stats, err := c.RunWorker(ctx, req, func(addr, from string) {
				mu.Lock()
				msg = "worker " + addr
				mu.Unlock()
				report(Progress{Unit: "jobs", Message: msg})
			}, func(e WorkerEvent) {
				mu.Lock()
				defer mu.Unlock()
				switch e.Kind {
				case agent.EventBatch:
					return
				case agent.EventDone:
					jobs++
					msg = "finished " + e.Job
				case agent.EventPaused, agent.EventYield:
					msg = "paused: " + e.Reason
				case agent.EventError:
					msg = "job " + e.Job + " failed: " + e.Reason
				default:
					msg = e.Kind
					if e.Job != "" {
						msg += " " + e.Job
					}
				}
				report(Progress{Done: jobs, Unit: "jobs", Message: msg})
			})
			if err != nil && ctx.Err() == nil {
				return nil, err
			}
			return stats, nil
		}})
}

// StopSharing stops the background worker.
func (c *Core) StopSharing() error {
	for _, j := range c.jobs.List() {
		if j.Kind == "share.worker" && !j.State.Ended() {
			return c.jobs.Cancel(j.ID)
		}
	}
	return fmt.Errorf("%w: no worker runs", ErrSharing)
}

// RedactPool hides the credential in a pool URL, for showing it.
func RedactPool(u string) string { return agent.RedactURL(u) }
