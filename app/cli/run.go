package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gata-contrib/gata/app/core"
)

const runUsage = "gata dva run SOURCE… --model PATH|NAME --out DIR [--keep-top 0.3 | --min-score 0.25] [--basic-filter] [--resume [RUN_ID]] [--retry-failed] [--json]"

// resumeFlag is --resume with an optional run id: "--resume" alone means the last
// unfinished run of the same sources.
type resumeFlag struct {
	set bool
	id  int64
}

func (r *resumeFlag) String() string {
	if r == nil || !r.set {
		return ""
	}
	return strconv.FormatInt(r.id, 10)
}

func (r *resumeFlag) Set(v string) error {
	r.set = true
	if v == "true" || v == "" {
		return nil
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return fmt.Errorf("run id %q is not a positive number", v)
	}
	r.id = id
	return nil
}

func (r *resumeFlag) IsBoolFlag() bool { return true }

var runID = regexp.MustCompile(`^[0-9]+$`)

// joinResumeID turns "--resume 12" into "--resume=12", so the optional value can follow
// the flag as a separate word.
func joinResumeID(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if (a == "--resume" || a == "-resume") && i+1 < len(args) && runID.MatchString(args[i+1]) {
			out = append(out, a+"="+args[i+1])
			i++
			continue
		}
		out = append(out, a)
		if a == "--" {
			out = append(out, args[i+1:]...)
			break
		}
	}
	return out
}

// parseInterleaved parses flags that may come before, between or after the positional
// arguments, and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > 0 && len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func runDVARun(ctx context.Context, env *Env, args []string) error {
	var g Global
	var req core.RunRequest
	var resume resumeFlag
	var minScore float64
	var asJSON bool
	fs := newFlags("dva run", &g)
	fs.StringVar(&req.Model, "model", "", "model folder or name (default: the validate.model setting)")
	fs.StringVar(&req.Out, "out", "", "folder for scores.parquet, shards/, uids.npy and summary.json")
	fs.Float64Var(&req.KeepTop, "keep-top", 0, "keep the top fraction of the scores, in (0, 1] (DataComp's keep-top)")
	fs.Float64Var(&minScore, "min-score", 0, "keep the items scoring at least this much, in [-1, 1]")
	fs.BoolVar(&req.BasicFilter, "basic-filter", false, "apply DataComp's basic filter (caption length, image size, aspect ratio)")
	fs.Var(&resume, "resume", "go on with run RUN_ID (--resume=ID), or with the last unfinished run of the same sources")
	fs.BoolVar(&req.RetryFailed, "retry-failed", false, "with --resume: try the failed items again")
	fs.BoolVar(&asJSON, "json", false, "print the result as one JSON object")
	fs.IntVar(&req.BatchSize, "batch-size", 0, "pairs per model call (default 32)")
	fs.IntVar(&req.Workers, "workers", 0, "goroutines that decode images (default: one per core)")
	fs.IntVar(&req.CommitEvery, "commit-every", 0, "save results every N items or each second (default 256)")
	pos, err := parseInterleaved(fs, joinResumeID(args))
	if errors.Is(err, flag.ErrHelp) {
		return parse(fs, []string{"-h"}, env, runUsage)
	}
	if err != nil {
		return jsonErr(env, asJSON, &UsageError{Msg: fmt.Sprintf("%s: %v", fs.Name(), err)})
	}
	usage := func(msg string) error {
		return jsonErr(env, asJSON, &UsageError{Msg: "dva run: " + msg + " (" + runUsage + ")"})
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "min-score" {
			req.MinScore = &minScore
		}
	})
	req.Sources = pos
	switch {
	case req.KeepTop != 0 && req.MinScore != nil:
		return usage("use --keep-top or --min-score, not both")
	case req.RetryFailed && !resume.set:
		return usage("--retry-failed needs --resume")
	case !resume.set && len(pos) == 0:
		return usage("name at least one SOURCE")
	case !resume.set && req.Out == "":
		return usage("--out is required")
	case resume.set && resume.id == 0 && len(pos) == 0:
		return usage("--resume without a run id needs the SOURCEs of the run")
	}

	c, closeCore, err := openCore(ctx, env, g)
	if err != nil {
		return jsonErr(env, asJSON, err)
	}
	defer closeCore()
	if resume.set {
		req.Resume = resume.id
		if req.Resume == 0 {
			last, err := c.LastUnfinishedRun(ctx, pos)
			if err != nil {
				return jsonErr(env, asJSON, err)
			}
			req.Resume = last.ID
		}
	}
	job, err := c.StartRun(ctx, req)
	if err != nil {
		if errors.Is(err, core.ErrBadRun) {
			return jsonErr(env, asJSON, &UsageError{Msg: "dva run: " + oneLine(err.Error())})
		}
		return jsonErr(env, asJSON, err)
	}
	id, _ := strconv.ParseInt(job.Subject, 10, 64)
	if !asJSON {
		verb := "started"
		if req.Resume != 0 {
			verb = "resumed"
		}
		fmt.Fprintf(env.Stderr, "run %d %s\n", id, verb)
	}
	info, err := followRun(ctx, env, c, job)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("interrupted: run %d stopped, what was scored is saved; go on with: gata dva run --resume %d", id, id)
		}
		return jsonErr(env, asJSON, err)
	}
	res, ok := info.Result.(*core.RunResult)
	if !ok {
		return jsonErr(env, asJSON, fmt.Errorf("run %d ended without a result", id))
	}
	if asJSON {
		return json.NewEncoder(env.Stdout).Encode(res)
	}
	printRunSummary(env.Stdout, res)
	return nil
}

// followRun shows the run's progress on stderr until its job ends; ctx ending (Ctrl-C)
// cancels the job and waits for it to save what it scored.
func followRun(ctx context.Context, env *Env, c *core.Core, job core.JobInfo) (core.JobInfo, error) {
	last := c.LastEventID()
	cur := job
	// The job may have ended before last was read: its final event is then older than
	// last, but the registry already has its final state.
	if j, err := c.Job(job.ID); err == nil {
		cur = j
	}
	var lastLine time.Time
	drew := false
	draw := func(j core.JobInfo, final bool) {
		line := runProgressLine(j)
		if env.Interactive {
			fmt.Fprintf(env.Stderr, "\r%s\x1b[K", line)
			drew = true
			return
		}
		if final || time.Since(lastLine) >= 5*time.Second {
			fmt.Fprintln(env.Stderr, line)
			lastLine = time.Now()
		}
	}
	for !cur.State.Ended() {
		evs, _, err := c.WaitEvents(ctx, last)
		if err != nil {
			c.CancelJob(job.ID)
			wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if j, err := c.Jobs().Wait(wctx, job.ID); err == nil {
				cur = j
			}
			cancel()
			if drew {
				fmt.Fprintln(env.Stderr)
			}
			return cur, ctx.Err()
		}
		for _, e := range evs {
			last = e.ID
			if j, ok := e.Data.(core.JobInfo); ok && j.ID == job.ID {
				cur = j
				if !cur.State.Ended() && cur.Progress.Unit == "items" {
					draw(cur, false)
				}
			}
		}
	}
	if cur.Progress.Unit == "items" {
		draw(cur, true)
	}
	if drew {
		fmt.Fprintln(env.Stderr)
	}
	if cur.State != core.JobDone {
		if cur.Error != "" {
			return cur, errors.New(cur.Error)
		}
		return cur, fmt.Errorf("run %s", cur.State)
	}
	return cur, nil
}

// runProgressLine renders "1200/5000 items  24%  85.2 items/s  ETA 44s  3 failed · cpu (2 threads)".
func runProgressLine(j core.JobInfo) string {
	p := j.Progress
	var b strings.Builder
	if p.Total > 0 {
		fmt.Fprintf(&b, "%d/%d items  %3.0f%%", p.Done, p.Total, 100*j.Fraction())
	} else {
		fmt.Fprintf(&b, "%d items", p.Done)
	}
	fmt.Fprintf(&b, "  %.1f items/s", j.Rate)
	if j.ETA > 0 {
		fmt.Fprintf(&b, "  ETA %s", (time.Duration(j.ETA) * time.Second).String())
	}
	if p.Message != "" {
		fmt.Fprintf(&b, "  %s", p.Message)
	}
	return b.String()
}

// printRunSummary prints what the run did and wrote.
func printRunSummary(w io.Writer, res *core.RunResult) {
	r, s := res.Run, res.Summary
	var failed int64
	reasons := make([]string, 0, len(r.Failed))
	for k, n := range r.Failed {
		failed += n
		reasons = append(reasons, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(reasons)
	fmt.Fprintf(w, "run %d: %d items, %d scored, %d not scored", r.ID, r.Scored+failed, r.Scored, failed)
	if len(reasons) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(reasons, ", "))
	}
	fmt.Fprintln(w)
	if st := res.Stats; st.Skipped > 0 || st.Duplicates > 0 {
		fmt.Fprintf(w, "this session: %d new, %d done before, %d duplicate keys dropped\n", st.Scored+st.Failed, st.Skipped, st.Duplicates)
	}
	switch {
	case s.Threshold != nil && s.KeepFraction > 0:
		fmt.Fprintf(w, "threshold %.4f (top %g%%)", *s.Threshold, 100*s.KeepFraction)
	case s.Threshold != nil:
		fmt.Fprintf(w, "threshold %.4f", *s.Threshold)
	default:
		fmt.Fprint(w, "no threshold")
	}
	if s.MinScore != nil {
		fmt.Fprintf(w, ", min score %.4f", *s.MinScore)
	}
	if s.Filter != nil {
		fmt.Fprint(w, ", basic filter")
	}
	fmt.Fprintf(w, ": kept %d of %d scored\n", s.Kept, s.Scored)
	if s.ImageErrors > 0 {
		fmt.Fprintf(w, "%d kept images could not be read again for the shards: %s\n", s.ImageErrors, s.FirstImageError)
	}
	fmt.Fprintf(w, "outputs in %s: %s\n", r.Out, strings.Join(s.Files, ", "))
}
