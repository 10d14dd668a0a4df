package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/dva"
)

// multi is a flag that may repeat; order is kept.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func openCore(ctx context.Context, env *Env, g Global) (*core.Core, func() error, error) {
	if env.OpenCore == nil {
		return nil, nil, errors.New("this command is not available")
	}
	return env.OpenCore(ctx, g)
}

// maxImageFile caps one image file read by the CLI.
const maxImageFile = 256 << 20

func readImage(path string) (dva.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return dva.Image{}, fmt.Errorf("read image: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxImageFile+1))
	if err != nil {
		return dva.Image{}, fmt.Errorf("read image %q: %w", path, err)
	}
	if len(data) > maxImageFile {
		return dva.Image{}, fmt.Errorf("read image %q: larger than %d MiB", path, maxImageFile>>20)
	}
	return dva.Image{Name: filepath.Base(path), Data: data}, nil
}

func runDVA(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 {
		return &UsageError{Msg: "dva: missing subcommand (embed, score, run)"}
	}
	switch args[0] {
	case "embed":
		return runDVAEmbed(ctx, env, args[1:])
	case "score":
		return runDVAScore(ctx, env, args[1:])
	case "run":
		return runDVARun(ctx, env, args[1:])
	case "-h", "--help", "help":
		fmt.Fprint(env.Stdout, "usage:\n  gata dva embed --model PATH|NAME --image F [--image F2 …] --text T [--text T2 …] [--json]\n  gata dva score [--model PATH|NAME] IMAGE CAPTION\n  "+runUsage+"\n")
		return nil
	}
	return &UsageError{Msg: fmt.Sprintf("dva: unknown subcommand %q (embed, score, run)", args[0])}
}

func runDVAEmbed(ctx context.Context, env *Env, args []string) error {
	var g Global
	var images, texts multi
	var model string
	var asJSON bool
	fs := newFlags("dva embed", &g)
	fs.StringVar(&model, "model", "", "model folder or name (default: the validate.model setting, dfn2b-vit-b-16 unless changed)")
	fs.Var(&images, "image", "image file (repeat for more)")
	fs.Var(&texts, "text", "text (repeat for more)")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object: model, embeddings, scores")
	if err := parse(fs, args, env, "gata dva embed --model PATH|NAME --image F … --text T … [--json]"); err != nil {
		return jsonErr(env, asJSON, err)
	}
	if len(images) == 0 && len(texts) == 0 {
		return jsonErr(env, asJSON, &UsageError{Msg: "dva embed: give at least one --image or --text"})
	}
	res, err := func() (*core.EmbedResult, error) {
		var imgs []dva.Image
		for _, p := range images {
			im, err := readImage(p)
			if err != nil {
				return nil, err
			}
			imgs = append(imgs, im)
		}
		c, closeCore, err := openCore(ctx, env, g)
		if err != nil {
			return nil, err
		}
		defer closeCore()
		return c.Embed(ctx, core.EmbedRequest{Model: model, Images: imgs, Texts: texts})
	}()
	if err != nil {
		return jsonErr(env, asJSON, err)
	}
	if asJSON {
		enc := json.NewEncoder(env.Stdout)
		return enc.Encode(res)
	}
	fmt.Fprintf(env.Stdout, "model: %s (%s, %d dimensions)\n", res.Model.Dir, res.Model.Backend, res.Model.EmbedDim)
	for i, row := range res.Scores {
		for j, s := range row {
			fmt.Fprintf(env.Stdout, "%.4f\t%s\t%q\n", s, images[i], texts[j])
		}
	}
	if len(res.Scores) == 0 {
		fmt.Fprintf(env.Stdout, "%d image and %d text embeddings (use --json to print them)\n", len(res.ImageEmbeddings), len(res.TextEmbeddings))
	}
	return nil
}

// jsonErr prints {"error": "..."} on stdout when --json was asked for, and returns err so
// the exit status is still non-zero.
func jsonErr(env *Env, asJSON bool, err error) error {
	if asJSON && err != nil && !errors.Is(err, flag.ErrHelp) {
		json.NewEncoder(env.Stdout).Encode(map[string]string{"error": oneLine(err.Error())})
	}
	return err
}

func runDVAScore(ctx context.Context, env *Env, args []string) error {
	var g Global
	var model string
	fs := newFlags("dva score", &g)
	fs.StringVar(&model, "model", "", "model folder or name (default: the validate.model setting, dfn2b-vit-b-16 unless changed)")
	usage := "gata dva score [--model PATH|NAME] IMAGE CAPTION"
	if err := fs.Parse(args); err != nil {
		return parse(fs, args, env, usage)
	}
	if fs.NArg() != 2 {
		return &UsageError{Msg: "dva score: want IMAGE and CAPTION (" + usage + ")"}
	}
	im, err := readImage(fs.Arg(0))
	if err != nil {
		return err
	}
	c, closeCore, err := openCore(ctx, env, g)
	if err != nil {
		return err
	}
	defer closeCore()
	res, err := c.ScorePair(ctx, core.ScoreRequest{Model: model, Name: im.Name, Image: im.Data, Caption: fs.Arg(1)})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%.4f\n", res.Score)
	return nil
}

func runModels(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 {
		return &UsageError{Msg: "models: missing subcommand (pull, list, verify)"}
	}
	switch args[0] {
	case "pull":
		return runModelsPull(ctx, env, args[1:])
	case "list":
		return runModelsList(ctx, env, args[1:])
	case "verify":
		return runModelsVerify(ctx, env, args[1:])
	case "-h", "--help", "help":
		fmt.Fprint(env.Stdout, "usage:\n  gata models pull [NAME] [--accept-license]\n  gata models list\n  gata models verify [NAME]\n")
		return nil
	}
	return &UsageError{Msg: fmt.Sprintf("models: unknown subcommand %q (pull, list, verify)", args[0])}
}

func modelArg(fs *flag.FlagSet) (string, error) {
	switch fs.NArg() {
	case 0:
		return "dfn2b-vit-b-16", nil
	case 1:
		return fs.Arg(0), nil
	}
	return "", &UsageError{Msg: fmt.Sprintf("%s: one model name at most", fs.Name())}
}

func runModelsList(ctx context.Context, env *Env, args []string) error {
	var g Global
	fs := newFlags("models list", &g)
	if err := parse(fs, args, env, "gata models list"); err != nil {
		return err
	}
	c, closeCore, err := openCore(ctx, env, g)
	if err != nil {
		return err
	}
	defer closeCore()
	ms, err := c.Models(ctx)
	if err != nil {
		return err
	}
	for _, m := range ms {
		state := "not downloaded"
		switch {
		case m.Downloaded:
			state = "downloaded: " + m.Dir
		case m.Partial > 0:
			state = fmt.Sprintf("partly downloaded (%s of %s; 'gata models pull' resumes)", core.HumanBytes(m.Partial), core.HumanBytes(m.Spec.Size))
		}
		fmt.Fprintf(env.Stdout, "%-18s %-10s %s\n", m.Spec.Name, core.HumanBytes(m.Spec.Size), state)
	}
	return nil
}

func runModelsPull(ctx context.Context, env *Env, args []string) error {
	var g Global
	var accept bool
	fs := newFlags("models pull", &g)
	fs.BoolVar(&accept, "accept-license", false, "accept the model's licence without asking")
	if err := fs.Parse(args); err != nil {
		return parse(fs, args, env, "gata models pull [NAME] [--accept-license]")
	}
	name, err := modelArg(fs)
	if err != nil {
		return err
	}
	c, closeCore, err := openCore(ctx, env, g)
	if err != nil {
		return err
	}
	defer closeCore()
	ms, err := c.Models(ctx)
	if err != nil {
		return err
	}
	var st *core.ModelStatus
	for i := range ms {
		if ms[i].Spec.Name == name {
			st = &ms[i]
		}
	}
	if st == nil {
		_, err := c.PullModel(ctx, name) // names the known models
		return err
	}
	if !st.LicenseAccepted {
		lic := st.Spec.License
		fmt.Fprintf(env.Stderr, "%s is distributed under the %s:\n  %s\n  %s\n", st.Spec.Title, lic.Name, lic.Summary, lic.URL)
		if !accept {
			if env.Stdin == nil || !env.Interactive {
				return errors.New("the model's licence must be accepted: run again with --accept-license, or in a terminal")
			}
			fmt.Fprint(env.Stderr, "Accept the licence and download? [y/N] ")
			line, _ := bufio.NewReader(env.Stdin).ReadString('\n')
			if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
				return errors.New("licence not accepted: nothing downloaded")
			}
		}
		if err := c.AcceptModelLicense(ctx, name); err != nil {
			return err
		}
	}
	job, err := c.PullModel(ctx, name)
	if err != nil {
		return err
	}
	info, err := followJob(ctx, env, c, job)
	if err != nil {
		return err
	}
	if res, ok := info.Result.(map[string]string); ok {
		fmt.Fprintf(env.Stdout, "%s: %s\n", name, res["dir"])
	}
	return nil
}

func runModelsVerify(ctx context.Context, env *Env, args []string) error {
	var g Global
	fs := newFlags("models verify", &g)
	if err := fs.Parse(args); err != nil {
		return parse(fs, args, env, "gata models verify [NAME]")
	}
	name, err := modelArg(fs)
	if err != nil {
		return err
	}
	c, closeCore, err := openCore(ctx, env, g)
	if err != nil {
		return err
	}
	defer closeCore()
	job, err := c.VerifyModel(name)
	if err != nil {
		return err
	}
	if _, err := followJob(ctx, env, c, job); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s: ok (sha256 matches)\n", name)
	return nil
}

// followJob draws a progress bar on stderr until the job ends; Ctrl-C cancels the job.
func followJob(ctx context.Context, env *Env, c *core.Core, job core.JobInfo) (core.JobInfo, error) {
	last := c.LastEventID()
	cur := job
	// The job may have ended before last was read: its final event is then older than
	// last, but the registry already has its final state.
	if j, err := c.Job(job.ID); err == nil {
		cur = j
	}
	draw := func(j core.JobInfo) {
		if !env.Interactive {
			return
		}
		fmt.Fprintf(env.Stderr, "\r%s", progressLine(j, 30))
	}
	draw(cur)
	for !cur.State.Ended() {
		evs, _, err := c.WaitEvents(ctx, last)
		if err != nil {
			c.CancelJob(job.ID)
			wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			c.Jobs().Wait(wctx, job.ID)
			cancel()
			if env.Interactive {
				fmt.Fprintln(env.Stderr)
			}
			return cur, errors.New("cancelled (run the command again to resume)")
		}
		for _, e := range evs {
			last = e.ID
			if j, ok := e.Data.(core.JobInfo); ok && j.ID == job.ID {
				cur = j
				draw(cur)
			}
		}
		if len(evs) == 0 {
			if j, err := c.Job(job.ID); err == nil {
				cur = j
			}
		}
	}
	if env.Interactive {
		fmt.Fprintln(env.Stderr)
	}
	if cur.State != core.JobDone {
		if cur.Error != "" {
			return cur, errors.New(cur.Error)
		}
		return cur, fmt.Errorf("%s", cur.State)
	}
	return cur, nil
}

// progressLine renders "[=====     ]  48% 290.1 MiB/570.9 MiB 12.3 MiB/s ETA 23s".
func progressLine(j core.JobInfo, width int) string {
	f := j.Fraction()
	bar := strings.Repeat(" ", width)
	pct := "  ?%"
	if f >= 0 {
		n := int(f * float64(width))
		bar = strings.Repeat("=", n) + strings.Repeat(" ", width-n)
		pct = fmt.Sprintf("%3.0f%%", f*100)
	}
	p := j.Progress
	amount := fmt.Sprintf("%d/%d", p.Done, p.Total)
	rate := fmt.Sprintf("%.1f/s", j.Rate)
	if p.Unit == "bytes" {
		amount = core.HumanBytes(p.Done) + "/" + core.HumanBytes(p.Total)
		rate = core.HumanBytes(int64(j.Rate)) + "/s"
	}
	eta := ""
	if j.ETA > 0 {
		eta = " ETA " + (time.Duration(j.ETA) * time.Second).String()
	}
	return fmt.Sprintf("[%s] %s %s %s%s   ", bar, pct, amount, rate, eta)
}
