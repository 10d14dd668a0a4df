package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/gata-contrib/gata/app/core"
)

const poolUsage = "gata pool --dataset SOURCE… --model NAME [--listen 127.0.0.1:4222] [--nats URL] [--out DIR] [--keep-top F | --min-score S] [--json]\n" +
	"       gata pool invite [--name NAME] [--addr HOST:PORT|URL] [--json]\n" +
	"       gata pool status [--json]"

func runPool(ctx context.Context, env *Env, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "invite":
			return runPoolInvite(ctx, env, args[1:])
		case "status":
			return runPoolStatus(ctx, env, args[1:])
		}
	}
	var g Global
	var req core.PoolRequest
	var datasets multi
	var minScore float64
	var asJSON bool
	fs := newFlags("pool", &g)
	fs.Var(&datasets, "dataset", "a dataset to hand out: folder, .tar shards (brace patterns), CSV/TSV/JSONL/Parquet (repeats)")
	fs.StringVar(&req.Model, "model", "", "model folder or name the workers score with (default: the validate.model setting)")
	fs.StringVar(&req.Out, "out", "", "folder for scores.parquet, shards/, uids.npy and summary.json (default: exports/pool-RUN in the data folder)")
	fs.StringVar(&req.Listen, "listen", "", "address of the embedded NATS server (default 127.0.0.1:4222; port 0 picks one)")
	fs.StringVar(&req.NATS, "nats", "", "use this NATS (with JetStream) instead of embedding one")
	fs.StringVar(&req.TLSCert, "tls-cert", "", "TLS certificate (required with a non-loopback --listen)")
	fs.StringVar(&req.TLSKey, "tls-key", "", "TLS key (required with a non-loopback --listen)")
	fs.Float64Var(&req.KeepTop, "keep-top", 0, "keep the top fraction of the scores, in (0, 1]")
	fs.Float64Var(&minScore, "min-score", 0, "keep the items scoring at least this much, in [-1, 1]")
	fs.IntVar(&req.JobSize, "job-size", 0, "pairs of the dataset per job (default 256)")
	fs.IntVar(&req.Canaries, "canaries", 0, "canary items mixed into each job (default 4; -1 for none)")
	fs.IntVar(&req.CanarySet, "canary-set", 0, "items the pool scores itself to draw canaries from (default 32)")
	fs.DurationVar(&req.AckWait, "ack-wait", 0, "how long a job may go without word from its worker before another gets it (default 1m)")
	fs.BoolVar(&asJSON, "json", false, "print the result as one JSON object")
	if err := parse(fs, args, env, poolUsage); err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "min-score" {
			req.MinScore = &minScore
		}
	})
	req.Sources = datasets
	switch {
	case len(datasets) == 0:
		return &UsageError{Msg: "pool: name at least one --dataset (" + poolUsage + ")"}
	case req.KeepTop != 0 && req.MinScore != nil:
		return &UsageError{Msg: "pool: use --keep-top or --min-score, not both"}
	case req.Listen != "" && req.NATS != "":
		return &UsageError{Msg: "pool: use --listen or --nats, not both"}
	}
	c, closeCore, err := openCore(ctx, env, g)
	if err != nil {
		return jsonErr(env, asJSON, err)
	}
	defer closeCore()
	var mu sync.Mutex
	var last time.Time
	res, err := c.RunPool(ctx, req,
		func(url string) {
			fmt.Fprintf(env.Stdout, "Pool: %s\n", url)
			fmt.Fprintf(env.Stderr, "workers join with: gata worker --pool URL (get a URL with a credential from 'gata pool invite')\n")
		},
		func(p core.PoolProgress) {
			mu.Lock()
			defer mu.Unlock()
			if !p.Done && time.Since(last) < 2*time.Second {
				return
			}
			last = time.Now()
			fmt.Fprintln(env.Stderr, poolProgressLine(p))
		})
	if err != nil {
		if ctx.Err() != nil {
			err = errors.New("interrupted: the pool stopped; what was verified is saved, start it again with the same --dataset and --model to go on")
		}
		if errors.Is(err, core.ErrBadRun) {
			return jsonErr(env, asJSON, &UsageError{Msg: "pool: " + oneLine(err.Error())})
		}
		return jsonErr(env, asJSON, err)
	}
	if asJSON {
		return json.NewEncoder(env.Stdout).Encode(res)
	}
	printRunSummary(env.Stdout, &core.RunResult{Run: res.Run, Summary: res.Summary})
	return nil
}

// poolProgressLine renders "groups 12/40 verified · 3 queued · 2 rejected · 180.5 pairs/s".
func poolProgressLine(p core.PoolProgress) string {
	var b strings.Builder
	fmt.Fprintf(&b, "groups %d/%d verified", p.Verified, p.Groups)
	if !p.ReadAll {
		b.WriteString(" (still reading)")
	}
	fmt.Fprintf(&b, " · %d jobs queued · %d results, %d rejected · %.1f pairs/s", p.Queued, p.Results, p.Rejected, p.Throughput)
	if p.Clients > 0 {
		fmt.Fprintf(&b, " · %d connections", p.Clients)
	}
	return b.String()
}

func runPoolInvite(ctx context.Context, env *Env, args []string) error {
	var g Global
	var name, addr string
	var asJSON bool
	fs := newFlags("pool invite", &g)
	fs.StringVar(&name, "name", "", "a name for the credential (who it is for)")
	fs.StringVar(&addr, "addr", "", "the pool's address as workers reach it (default: where the pool last listened)")
	fs.BoolVar(&asJSON, "json", false, "print the credential as one JSON object")
	if err := parse(fs, args, env, "gata pool invite [--name NAME] [--addr HOST:PORT|URL] [--json]"); err != nil {
		return err
	}
	c, closeCore, err := openCore(ctx, env, g)
	if err != nil {
		return jsonErr(env, asJSON, err)
	}
	defer closeCore()
	inv, err := c.PoolInvite(ctx, name, addr)
	if err != nil {
		return jsonErr(env, asJSON, err)
	}
	if asJSON {
		return json.NewEncoder(env.Stdout).Encode(inv)
	}
	fmt.Fprintf(env.Stdout, "credential %q issued; the worker runs:\n  gata worker --pool %s\n", inv.Name, inv.URL)
	return nil
}

func runPoolStatus(ctx context.Context, env *Env, args []string) error {
	var g Global
	var asJSON bool
	fs := newFlags("pool status", &g)
	fs.BoolVar(&asJSON, "json", false, "print the status as one JSON object")
	if err := parse(fs, args, env, "gata pool status [--json]"); err != nil {
		return err
	}
	c, closeCore, err := openCore(ctx, env, g)
	if err != nil {
		return jsonErr(env, asJSON, err)
	}
	defer closeCore()
	st, err := c.PoolState(ctx)
	if err != nil {
		return jsonErr(env, asJSON, err)
	}
	if asJSON {
		return json.NewEncoder(env.Stdout).Encode(st)
	}
	printPoolState(env.Stdout, st)
	return nil
}

func printPoolState(w io.Writer, st core.PoolState) {
	n := st.Counts
	fmt.Fprintf(w, "run %d (%s): %d items read%s, %d/%d groups verified, %d jobs waiting for a worker\n", st.Run.ID, st.Run.State,
		n.Cursor, map[bool]string{true: " (all)", false: ""}[n.ReadAll], n.Verified, n.Groups, n.Unanswered)
	if st.URL != "" {
		fmt.Fprintf(w, "pool address: %s\n", st.URL)
	}
	fmt.Fprintf(w, "results: %d confirmed, %d pending, %d rejected\n", n.Confirmed, n.Pending, n.Rejected)
	if len(st.Credits) > 0 {
		fmt.Fprintf(w, "\n%-42s %10s %10s %10s %7s %6s\n", "worker", "confirmed", "pending", "rejected", "results", "trust")
		for _, c := range st.Credits {
			fmt.Fprintf(w, "%-42s %10d %10d %10d %7d %6d\n", c.Worker, c.Confirmed, c.Pending, c.Rejected, c.Results, c.ConsecutiveValid)
		}
	}
	if len(st.Rejected) > 0 {
		fmt.Fprintln(w, "\nrejected results (newest first):")
		for _, r := range st.Rejected {
			fmt.Fprintf(w, "  %s  %s  %s: %s\n", r.Decided.Format(time.DateTime), r.Job, r.Worker, r.Reason)
		}
	}
}
