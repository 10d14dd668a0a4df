package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gata-contrib/gata/app/core"
)

const submitUsage = `usage:
  gata submit chat [--dry-run --out DIR] [--json]   your voted chat battles above the quality floor
  gata submit dva  [--dry-run --out DIR] [--json]   the scores of your finished DVA runs
  gata submit status [--wait] [--json]             the uploads: state, progress, speed, errors, shares; the account
  gata submit share ADDRESS [--id N]               let ADDRESS read one submission (or all of them)
  gata submit retry ID                             try a failed upload again now
  gata submit network [mainnet|testnet|custom --chain-id ID --rpc URL]   show or choose the Greenfield network

Collects what was not submitted yet, writes it as canonical JSONL (<sha256>.jsonl) with a
manifest (<sha256>.manifest.json) that your wallet signs (EIP-712), records it and queues
it for upload to BNB Greenfield. With --dry-run both files go to DIR and nothing is
recorded or uploaded. Anyone can check a submission with 'gata verify MANIFEST'.
`

func runSubmit(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 {
		return &UsageError{Msg: "submit: missing kind (chat, dva) or subcommand (status, share, retry, network)"}
	}
	if run := uploadCommand(args[0]); run != nil { // status, share, retry, network: upload.go
		return run(ctx, env, args[1:])
	}
	switch args[0] {
	case core.SubmitChat, core.SubmitDVA:
		return runSubmitKind(ctx, env, args[0], args[1:])
	case "-h", "--help", "help":
		fmt.Fprint(env.Stdout, submitUsage)
		return nil
	}
	return &UsageError{Msg: fmt.Sprintf("submit: unknown kind %q (chat, dva)", args[0])}
}

func runSubmitKind(ctx context.Context, env *Env, kind string, args []string) error {
	var g Global
	var opts core.SubmitOptions
	var asJSON bool
	fs := newFlags("submit "+kind, &g)
	fs.BoolVar(&opts.DryRun, "dry-run", false, "write the JSONL file and the signed manifest to --out; record and upload nothing")
	fs.StringVar(&opts.OutDir, "out", "", "folder for the files of a dry run")
	fs.BoolVar(&asJSON, "json", false, "print the result as one JSON object")
	if err := parse(fs, args, env, "gata submit "+kind+" [--dry-run --out DIR] [--json]"); err != nil {
		return jsonErr(env, asJSON, err)
	}
	switch {
	case opts.DryRun && opts.OutDir == "":
		return jsonErr(env, asJSON, &UsageError{Msg: "submit " + kind + ": --dry-run needs --out DIR"})
	case !opts.DryRun && opts.OutDir != "":
		return jsonErr(env, asJSON, &UsageError{Msg: "submit " + kind + ": --out goes with --dry-run (submissions are kept in the data folder)"})
	}
	c, closeCore, err := openCore(ctx, env, g)
	if err != nil {
		return jsonErr(env, asJSON, err)
	}
	defer closeCore()
	res, err := c.Submit(ctx, kind, opts)
	if errors.Is(err, core.ErrNothingToSubmit) {
		if asJSON {
			return json.NewEncoder(env.Stdout).Encode(map[string]any{"nothing": true, "kind": kind})
		}
		what := "no voted battle above the quality floor"
		if kind == core.SubmitDVA {
			what = "no finished run with scores"
		}
		fmt.Fprintf(env.Stdout, "nothing new to submit: %s that was not submitted already\n", what)
		return nil
	}
	if err != nil {
		return jsonErr(env, asJSON, usageIf(err, core.ErrBadSubmit))
	}
	if asJSON {
		return json.NewEncoder(env.Stdout).Encode(res)
	}
	m := res.Manifest
	what := "battles"
	if kind == core.SubmitDVA {
		what = "runs"
	}
	state := "recorded and queued for upload"
	if res.DryRun {
		state = "dry run: nothing recorded or uploaded"
	}
	fmt.Fprintf(env.Stdout, "%s submission %s: %d records from %d %s, %d bytes, nonce %d, chain %d, signed by %s (%s)\n",
		kind, m.SHA256, m.Records, res.Items, what, m.Bytes, m.Nonce, m.ChainID, m.Submitter, state)
	fmt.Fprintf(env.Stdout, "  %s\n  %s\n", res.JSONLPath, res.ManifestPath)
	return nil
}
