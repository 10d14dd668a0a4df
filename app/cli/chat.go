package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gata-contrib/gata/app/core"
)

const chatUsage = `usage:
  gata chat providers add --name NAME --kind openai|anthropic --base-url URL [--api-key-env VAR | --api-key-stdin] [--model M …]
  gata chat providers set-key NAME          (reads the key from stdin or the terminal; an empty key deletes it)
  gata chat providers list
  gata chat providers remove NAME
  gata chat models
  gata chat ask --models A,B[,C,D] [--named] [--vote a|b|c|d|tie|bad [--reason TEXT]] PROMPT
  gata chat leaderboard
  gata chat export --format arena|dpo [--out FILE] [--all]

An API key is kept in the OS keyring (--api-key-stdin, set-key) or read from the
environment variable a provider names (--api-key-env); a stored key wins. Where no
keyring service runs (headless Linux), keys are kept in an encrypted file in the data
folder whose passphrase comes from $GATA_PASSPHRASE or a terminal prompt. Keys are never
stored in the database, logged or printed.
`

func runChat(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 {
		return &UsageError{Msg: "chat: missing subcommand (providers, models, ask, leaderboard, export)"}
	}
	switch args[0] {
	case "providers":
		return runChatProviders(ctx, env, args[1:])
	case "models":
		return runChatModels(ctx, env, args[1:])
	case "ask":
		return runChatAsk(ctx, env, args[1:])
	case "leaderboard":
		return runChatLeaderboard(ctx, env, args[1:])
	case "export":
		return runChatExport(ctx, env, args[1:])
	case "-h", "--help", "help":
		fmt.Fprint(env.Stdout, chatUsage)
		return nil
	}
	return &UsageError{Msg: fmt.Sprintf("chat: unknown subcommand %q (providers, models, ask, leaderboard, export)", args[0])}
}

func runChatProviders(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 {
		return &UsageError{Msg: "chat providers: missing subcommand (add, set-key, list, remove)"}
	}
	switch args[0] {
	case "add":
		return runChatProvidersAdd(ctx, env, args[1:])
	case "set-key":
		return runChatProvidersSetKey(ctx, env, args[1:])
	case "list":
		return runChatProvidersList(ctx, env, args[1:])
	case "remove":
		return runChatProvidersRemove(ctx, env, args[1:])
	case "-h", "--help", "help":
		fmt.Fprint(env.Stdout, chatUsage)
		return nil
	}
	return &UsageError{Msg: fmt.Sprintf("chat providers: unknown subcommand %q (add, set-key, list, remove)", args[0])}
}

func runChatProvidersAdd(ctx context.Context, env *Env, args []string) error {
	var g Global
	var in core.ProviderInput
	var models multi
	fs := newFlags("chat providers add", &g)
	fs.StringVar(&in.Name, "name", "", "the provider's name, the prefix of its model ids (NAME/model)")
	fs.StringVar(&in.Kind, "kind", "", "openai (any OpenAI-compatible server: OpenAI, DeepSeek, OpenRouter, Ollama, vLLM, llama.cpp) or anthropic")
	fs.StringVar(&in.BaseURL, "base-url", "", "the API's root, e.g. https://api.openai.com/v1, http://127.0.0.1:11434/v1, https://api.anthropic.com")
	fs.StringVar(&in.APIKeyEnv, "api-key-env", "", "environment variable holding the API key (none for local servers)")
	keyStdin := fs.Bool("api-key-stdin", false, "read the API key from stdin (or the terminal) and keep it in the OS keyring")
	fs.Var(&models, "model", "a model to offer even if the server does not list it (repeat for more)")
	if err := parse(fs, args, env, "gata chat providers add --name NAME --kind openai|anthropic --base-url URL [--api-key-env VAR | --api-key-stdin] [--model M …]"); err != nil {
		return err
	}
	switch {
	case in.Name == "":
		return &UsageError{Msg: "chat providers add: --name is required"}
	case in.Kind == "":
		return &UsageError{Msg: "chat providers add: --kind is required (openai or anthropic)"}
	case in.BaseURL == "":
		return &UsageError{Msg: "chat providers add: --base-url is required"}
	}
	in.Models = models
	if *keyStdin {
		key, err := readKey(env, "API key of "+in.Name+": ")
		if err != nil {
			return err
		}
		if key == "" {
			return &UsageError{Msg: "chat providers add: --api-key-stdin: no key on stdin"}
		}
		in.APIKey = key
	}
	c, closeCore, err := openCore(ctx, env, g)
	if err != nil {
		return err
	}
	defer closeCore()
	p, err := c.AddProvider(ctx, in)
	if err != nil {
		return usageIf(err, core.ErrBadChat)
	}
	fmt.Fprintf(env.Stdout, "added provider %s (%s, %s)\n", p.Name, p.Kind, p.BaseURL)
	if p.KeyStored {
		fmt.Fprintf(env.Stdout, "its API key is kept in the %s\n", secretsPlace(c.Secrets(ctx)))
	}
	if p.APIKeyEnv != "" && !p.HasKey {
		fmt.Fprintf(env.Stderr, "gata: %s is not set: requests to %s will go without a key\n", p.APIKeyEnv, p.Name)
	}
	return nil
}

// usageIf turns err into a usage error (exit 2) when it is the mark's kind.
func usageIf(err, mark error) error {
	if errors.Is(err, mark) {
		return &UsageError{Msg: oneLine(err.Error())}
	}
	return err
}

func runChatProvidersList(ctx context.Context, env *Env, args []string) error {
	var g Global
	fs := newFlags("chat providers list", &g)
	if err := parse(fs, args, env, "gata chat providers list"); err != nil {
		return err
	}
	c, closeCore, err := openCore(ctx, env, g)
	if err != nil {
		return err
	}
	defer closeCore()
	ps, err := c.Providers(ctx)
	if err != nil {
		return err
	}
	if len(ps) == 0 {
		fmt.Fprintln(env.Stdout, "no providers: add one with 'gata chat providers add'")
		return nil
	}
	for _, p := range ps {
		key := p.KeyState()
		line := fmt.Sprintf("%-12s %-9s %s  %s", p.Name, p.Kind, p.BaseURL, key)
		if len(p.Models) > 0 {
			line += "  models: " + strings.Join(p.Models, ", ")
		}
		fmt.Fprintln(env.Stdout, line)
	}
	return nil
}

// secretsPlace names where secrets are kept, for messages.
func secretsPlace(s core.SecretsInfo) string {
	if s.Backend == core.SecretsFile {
		return "encrypted secrets file of the data folder"
	}
	return "OS keyring"
}

func runChatProvidersSetKey(ctx context.Context, env *Env, args []string) error {
	var g Global
	fs := newFlags("chat providers set-key", &g)
	usage := "gata chat providers set-key NAME   (the key is read from stdin or the terminal; an empty key deletes the stored one)"
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return parse(fs, args, env, usage)
	}
	if len(pos) != 1 {
		return &UsageError{Msg: "chat providers set-key: name one provider (" + usage + ")"}
	}
	key, err := readKey(env, "API key of "+pos[0]+" (empty to delete the stored one): ")
	if err != nil {
		return err
	}
	c, closeCore, err := openCore(ctx, env, g)
	if err != nil {
		return err
	}
	defer closeCore()
	if err := c.SetProviderKey(ctx, pos[0], key); err != nil {
		return usageIf(err, core.ErrBadChat)
	}
	if key == "" {
		fmt.Fprintf(env.Stdout, "deleted the stored API key of %s\n", pos[0])
	} else {
		fmt.Fprintf(env.Stdout, "stored the API key of %s in the %s\n", pos[0], secretsPlace(c.Secrets(ctx)))
	}
	return nil
}

func runChatProvidersRemove(ctx context.Context, env *Env, args []string) error {
	var g Global
	fs := newFlags("chat providers remove", &g)
	usage := "gata chat providers remove NAME"
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return parse(fs, args, env, usage)
	}
	if len(pos) != 1 {
		return &UsageError{Msg: "chat providers remove: name one provider (" + usage + ")"}
	}
	c, closeCore, err := openCore(ctx, env, g)
	if err != nil {
		return err
	}
	defer closeCore()
	if err := c.RemoveProvider(ctx, pos[0]); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "removed provider %s\n", pos[0])
	return nil
}

func runChatModels(ctx context.Context, env *Env, args []string) error {
	var g Global
	fs := newFlags("chat models", &g)
	if err := parse(fs, args, env, "gata chat models"); err != nil {
		return err
	}
	c, closeCore, err := openCore(ctx, env, g)
	if err != nil {
		return err
	}
	defer closeCore()
	ms, err := c.ChatModels(ctx)
	if err != nil {
		return err
	}
	if len(ms) == 0 {
		fmt.Fprintln(env.Stdout, "no providers: add one with 'gata chat providers add'")
	}
	for _, p := range ms {
		if p.Error != "" {
			fmt.Fprintf(env.Stderr, "gata: provider %s: %s\n", p.Provider, p.Error)
		}
		for _, m := range p.Models {
			fmt.Fprintln(env.Stdout, m)
		}
	}
	return nil
}

func runChatAsk(ctx context.Context, env *Env, args []string) error {
	var g Global
	var models, vote, reason string
	var named bool
	fs := newFlags("chat ask", &g)
	fs.StringVar(&models, "models", "", "2 to 4 model ids, comma-separated: provider/model,provider/model")
	fs.BoolVar(&named, "named", false, "show the models' names from the start (default: blind until the vote)")
	fs.StringVar(&vote, "vote", "", "record a vote right after the answers: a, b, c, d (that column is best), tie or bad")
	fs.StringVar(&reason, "reason", "", "why, with --vote")
	usage := "gata chat ask --models A,B[,C,D] [--named] [--vote a|b|c|d|tie|bad [--reason TEXT]] PROMPT"
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return parse(fs, args, env, usage)
	}
	var ids []string
	for _, m := range strings.Split(models, ",") {
		if m = strings.TrimSpace(m); m != "" {
			ids = append(ids, m)
		}
	}
	prompt := strings.TrimSpace(strings.Join(pos, " "))
	vote = strings.ToLower(strings.TrimSpace(vote))
	switch {
	case len(ids) < 2 || len(ids) > 4:
		return &UsageError{Msg: fmt.Sprintf("chat ask: --models wants 2 to 4 model ids, got %d (%s)", len(ids), usage)}
	case prompt == "":
		return &UsageError{Msg: "chat ask: the PROMPT is missing (" + usage + ")"}
	case vote != "" && vote != "tie" && vote != "bad" && (len(vote) != 1 || vote[0] < 'a' || int(vote[0]-'a') >= len(ids)):
		return &UsageError{Msg: fmt.Sprintf("chat ask: --vote %q is not one of %s, tie, bad", vote, strings.Join(letters(len(ids)), ", "))}
	case reason != "" && vote == "":
		return &UsageError{Msg: "chat ask: --reason goes with --vote"}
	}
	c, closeCore, err := openCore(ctx, env, g)
	if err != nil {
		return err
	}
	defer closeCore()
	after := c.LastEventID()
	info, err := c.StartBattle(ctx, core.BattleInput{Models: ids, Prompt: prompt, Blind: !named})
	if err != nil {
		return usageIf(err, core.ErrBadChat)
	}
	info, err = followBattle(ctx, env.Stdout, c, info, after)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "battle %s\n", info.ID)
	if vote == "" {
		return nil
	}
	voted, err := c.Vote(ctx, info.ID, core.VoteInput{Outcome: vote, Reason: reason})
	if err != nil {
		return err
	}
	printVote(env.Stdout, voted)
	return nil
}

func letters(n int) []string {
	var out []string
	for i := range n {
		out = append(out, string(rune('a'+i)))
	}
	return out
}

// followBattle prints the battle's columns as labelled blocks while they stream: the
// first column live, the others as soon as the one before has ended. When ctx ends it
// stops the battle; it returns the battle as stored.
func followBattle(ctx context.Context, w io.Writer, c *core.Core, info core.BattleInfo, after int64) (core.BattleInfo, error) {
	p := newBlockPrinter(w, info)
	for {
		evs, missed, err := c.WaitEvents(ctx, after)
		if err != nil {
			c.StopBattle(info.ID)
			stopped, werr := c.WaitBattle(context.WithoutCancel(ctx), info.ID)
			if werr == nil {
				p.finish(stopped)
			}
			return stopped, fmt.Errorf("ask: stopped: %w", err)
		}
		ended := false
		for _, e := range evs {
			after = e.ID
			ce, ok := e.Data.(core.ChatEvent)
			if !ok || e.Type != core.EventChat || ce.Battle != info.ID {
				continue
			}
			if ce.Kind == core.ChatEnd {
				ended = true
				if ce.Error != "" {
					return info, fmt.Errorf("ask: %s", ce.Error)
				}
				continue
			}
			p.event(ce)
		}
		if ended || missed {
			// The whole battle as stored fills in anything the event buffer dropped.
			final, err := c.WaitBattle(ctx, info.ID)
			if err != nil {
				return info, err
			}
			p.finish(final)
			return final, nil
		}
	}
}

// blockPrinter writes the columns one after the other, each under its label.
type blockPrinter struct {
	w       io.Writer
	cols    []*printedColumn
	cur     int
	started bool
}

type printedColumn struct {
	label   string
	text    strings.Builder
	printed int
	done    bool
	answer  core.AnswerInfo
}

func newBlockPrinter(w io.Writer, info core.BattleInfo) *blockPrinter {
	p := &blockPrinter{w: w}
	for _, col := range info.Columns {
		label := "Model " + col.Column
		if col.Model != "" {
			label += " (" + col.Model + ")"
		}
		p.cols = append(p.cols, &printedColumn{label: label})
	}
	return p
}

func (p *blockPrinter) column(letter string) *printedColumn {
	i := strings.Index("ABCD", letter)
	if i < 0 || i >= len(p.cols) {
		return nil
	}
	return p.cols[i]
}

func (p *blockPrinter) event(e core.ChatEvent) {
	col := p.column(e.Column)
	if col == nil {
		return
	}
	switch e.Kind {
	case core.ChatStart:
		col.text.Reset()
		col.printed, col.done = 0, false
	case core.ChatDelta:
		col.text.WriteString(e.Text)
	case core.ChatDone, core.ChatError:
		col.done = true
		col.answer = core.AnswerInfo{Error: e.Error, TTFTMillis: e.TTFTMillis, OutputTokens: e.Tokens, TokensPerSec: e.TokensPerSec}
	}
	p.flush()
}

// finish takes the answers of the last turn from the stored battle and prints the rest.
func (p *blockPrinter) finish(info core.BattleInfo) {
	for i, col := range info.Columns {
		if i >= len(p.cols) || len(col.Answers) == 0 {
			continue
		}
		a := col.Answers[len(col.Answers)-1]
		pc := p.cols[i]
		if strings.HasPrefix(a.Text, pc.text.String()) {
			pc.text.WriteString(a.Text[pc.text.Len():])
		}
		pc.done, pc.answer = true, a
	}
	p.flush()
}

// flush prints what the current column has and moves on past the columns that ended.
func (p *blockPrinter) flush() {
	for p.cur < len(p.cols) {
		col := p.cols[p.cur]
		if !p.started {
			fmt.Fprintf(p.w, "── %s ──\n", col.label)
			p.started = true
		}
		s := col.text.String()
		if col.printed < len(s) {
			io.WriteString(p.w, s[col.printed:])
			col.printed = len(s)
		}
		if !col.done {
			return
		}
		if s != "" && !strings.HasSuffix(s, "\n") {
			fmt.Fprintln(p.w)
		}
		fmt.Fprintln(p.w, answerStats(col.answer))
		fmt.Fprintln(p.w)
		p.cur++
		p.started = false
	}
}

func answerStats(a core.AnswerInfo) string {
	if a.Error != "" {
		return "[failed: " + a.Error + "]"
	}
	return fmt.Sprintf("[%d ms to first token · %d tokens · %.1f tokens/s]", a.TTFTMillis, a.OutputTokens, a.TokensPerSec)
}

func printVote(w io.Writer, b core.BattleInfo) {
	outcome := b.Vote.Outcome
	switch outcome {
	case "tie":
		outcome = "a tie"
	case "bad":
		outcome = "all bad"
	default:
		outcome = "Model " + outcome + " is best"
	}
	fmt.Fprintf(w, "vote: %s\n", outcome)
	for _, col := range b.Columns {
		fmt.Fprintf(w, "  Model %s was %s\n", col.Column, col.Model)
	}
	if q := b.Quality; q != nil {
		verdict := "exported"
		if !q.Passes {
			verdict = fmt.Sprintf("below %.2g: kept here, left out of exports", q.Threshold)
		}
		fmt.Fprintf(w, "quality: %.2f (%s)\n", q.Score, verdict)
		for _, r := range q.Reasons {
			fmt.Fprintf(w, "  %s: %s\n", r.Signal, r.Detail)
		}
	}
}

func runChatLeaderboard(ctx context.Context, env *Env, args []string) error {
	var g Global
	fs := newFlags("chat leaderboard", &g)
	if err := parse(fs, args, env, "gata chat leaderboard"); err != nil {
		return err
	}
	c, closeCore, err := openCore(ctx, env, g)
	if err != nil {
		return err
	}
	defer closeCore()
	lb, err := c.Leaderboard(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%d voted battles counted", lb.Battles)
	if lb.Excluded > 0 {
		fmt.Fprintf(env.Stdout, ", %d left out for quality below %.2g", lb.Excluded, lb.Threshold)
	}
	fmt.Fprintln(env.Stdout)
	if len(lb.Ratings) == 0 {
		return nil
	}
	fmt.Fprintf(env.Stdout, "%-4s %-32s %7s  %-15s %5s  %s\n", "rank", "model", "rating", "95% interval", "games", "won/tied/lost")
	for i, r := range lb.Ratings {
		fmt.Fprintf(env.Stdout, "%-4d %-32s %7.0f  %-15s %5d  %d/%d/%d\n", i+1, r.Model, r.Rating,
			fmt.Sprintf("%.0f–%.0f", r.Lower, r.Upper), r.Games, r.Wins, r.Ties, r.Losses)
	}
	return nil
}

func runChatExport(ctx context.Context, env *Env, args []string) (err error) {
	var g Global
	var format, out string
	var all bool
	fs := newFlags("chat export", &g)
	fs.StringVar(&format, "format", "", "arena (Arena battles, one record per pair of models) or dpo (TRL preference pairs)")
	fs.StringVar(&out, "out", "", "file to write (default: standard output)")
	fs.BoolVar(&all, "all", false, "include the battles below the quality floor (the chat.quality_min setting)")
	if err := parse(fs, args, env, "gata chat export --format arena|dpo [--out FILE] [--all]"); err != nil {
		return err
	}
	if format != core.ExportArena && format != core.ExportDPO {
		return &UsageError{Msg: fmt.Sprintf("chat export: --format must be arena or dpo, not %q", format)}
	}
	c, closeCore, err := openCore(ctx, env, g)
	if err != nil {
		return err
	}
	defer closeCore()
	w := env.Stdout
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return fmt.Errorf("chat export: %w", err)
		}
		defer func() {
			if cerr := f.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("chat export: %w", cerr)
			}
		}()
		w = f
	}
	n, err := c.ExportChat(ctx, format, w, all)
	if err != nil {
		return err
	}
	if out != "" {
		fmt.Fprintf(env.Stdout, "wrote %d %s records to %s\n", n, format, out)
	} else {
		fmt.Fprintf(env.Stderr, "gata: wrote %d %s records\n", n, format)
	}
	return nil
}
