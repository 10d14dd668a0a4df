package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/gata-contrib/gata/app/core"
)

const workerUsage = "gata worker --pool URL [--gpu N] [--max-temp 80] [--max-power 200] [--schedule 22:00-07:00] [--pause-for 1h|4h|tomorrow] [--json]"

// intList is a flag of comma-separated numbers that may repeat.
type intList []int

func (l *intList) String() string {
	s := make([]string, len(*l))
	for i, n := range *l {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(v string) error {
	ns, err := core.ParseGPUs(v)
	*l = append(*l, ns...)
	return err
}

func runWorker(ctx context.Context, env *Env, args []string) error {
	var g Global
	var req core.WorkerRequest
	var gpus intList
	var asJSON bool
	fs := newFlags("worker", &g)
	fs.StringVar(&req.Pool, "pool", "", "the pool's address, as 'gata pool invite' printed it")
	fs.Var(&gpus, "gpu", "GPU index to use (repeats or N,M; default all)")
	fs.Float64Var(&req.MaxTempC, "max-temp", 0, "pause a GPU at this temperature in °C, slow down in the 5 °C before (0: no limit)")
	fs.Float64Var(&req.MaxPowerW, "max-power", 0, "keep a GPU's draw under this many watts by working part of the time (0: no limit)")
	fs.StringVar(&req.Schedule, "schedule", "", "share only in these daily windows, HH:MM-HH:MM[,…] (default any time)")
	fs.StringVar(&req.PauseFor, "pause-for", "", "start paused: 1h, 4h or tomorrow")
	fs.BoolVar(&req.AllowBusyGPU, "allow-busy-gpu", false, "work even while other programs use the GPU")
	fs.DurationVar(&req.IdleGrace, "idle-grace", 0, "how long the GPU must be free of other programs before work starts again (default 30s)")
	fs.BoolVar(&req.RunOnBattery, "run-on-battery", false, "work on battery power too")
	fs.BoolVar(&req.PauseWhileActive, "pause-while-active", false, "pause while you use keyboard or mouse (read from the X11 display)")
	fs.DurationVar(&req.ActiveGrace, "active-grace", 0, "with --pause-while-active, how long without input before work starts again (default 3m)")
	fs.BoolVar(&req.AllowFullscreen, "allow-fullscreen", false, "work while a fullscreen program is in front too (by default the worker pauses, where the window manager tells)")
	fs.StringVar(&req.PrivateKeyEnv, "private-key-env", "", "sign with the hex key in this environment variable instead of the wallet's")
	fs.StringVar(&req.Model, "model", "", "score with this model folder or name instead of the one the jobs name (same weights)")
	fs.StringVar(&req.TLSCA, "tls-ca", "", "CA certificate of a pool with its own TLS certificate")
	fs.IntVar(&req.BatchSize, "batch-size", 0, "pairs per model call (default 16)")
	fs.BoolVar(&asJSON, "json", false, "print every event as a JSON line on stdout")
	if err := parse(fs, args, env, workerUsage); err != nil {
		return err
	}
	if req.Pool == "" {
		return &UsageError{Msg: "worker: --pool is required (" + workerUsage + ")"}
	}
	req.GPUs = gpus
	req.Getenv = env.Getenv
	c, closeCore, err := openCore(ctx, env, g)
	if err != nil {
		return jsonErr(env, asJSON, err)
	}
	defer closeCore()
	var mu sync.Mutex
	enc := json.NewEncoder(env.Stdout)
	stats, err := c.RunWorker(ctx, req,
		func(addr, from string) {
			mu.Lock()
			defer mu.Unlock()
			if asJSON {
				enc.Encode(map[string]string{"kind": "started", "address": addr, "key": from})
				return
			}
			fmt.Fprintf(env.Stdout, "Worker %s (key: %s) sharing with %s\n", addr, from, core.RedactPool(req.Pool))
		},
		func(e core.WorkerEvent) {
			mu.Lock()
			defer mu.Unlock()
			if asJSON {
				enc.Encode(e)
				return
			}
			if e.Kind == "batch" {
				return
			}
			line := e.Time.Format("15:04:05") + " " + e.Kind
			if e.Job != "" {
				line += " " + e.Job
			}
			if e.Items > 0 {
				line += fmt.Sprintf(" (%d pairs)", e.Items)
			}
			if e.Reason != "" {
				line += ": " + e.Reason
			}
			fmt.Fprintln(env.Stderr, line)
		})
	if err != nil && ctx.Err() == nil {
		if errors.Is(err, core.ErrBadRun) {
			return jsonErr(env, asJSON, &UsageError{Msg: "worker: " + oneLine(err.Error())})
		}
		return jsonErr(env, asJSON, err)
	}
	if !asJSON {
		fmt.Fprintf(env.Stdout, "stopped: %d jobs, %d pairs scored\n", stats.Jobs, stats.Items)
	}
	return nil
}
