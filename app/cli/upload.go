package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/gata-contrib/gata/app/core"
)

// The upload subcommands of 'gata submit': submissions are queued in the outbox first;
// 'gata serve' (or the window) uploads them to the wallet's private bucket on BNB
// Greenfield, retries with backoff and goes on after a restart. Shares are object
// policies on the chain; a share of an upload not done yet is granted once it is done.
//
//	gata submit status [--wait] [--json]
//	gata submit share ADDRESS [--id N] [--json]
//	gata submit retry ID
//	gata submit network [mainnet|testnet|custom --chain-id ID --rpc URL]

// uploadCommand is the runner of a 'gata submit' subcommand about uploads, or nil.
func uploadCommand(name string) func(ctx context.Context, env *Env, args []string) error {
	switch name {
	case "status":
		return runSubmitStatus
	case "share":
		return runSubmitShare
	case "retry":
		return runSubmitRetry
	case "network":
		return runSubmitNetwork
	}
	return nil
}

func uploadErr(err error) error {
	if errors.Is(err, core.ErrBadShare) {
		return &UsageError{Msg: oneLine(err.Error())}
	}
	return err
}

func runSubmitStatus(ctx context.Context, env *Env, args []string) error {
	var g Global
	var asJSON, wait bool
	fs := newFlags("submit status", &g)
	fs.BoolVar(&asJSON, "json", false, "print one JSON object")
	fs.BoolVar(&wait, "wait", false, "wait until no upload is queued, uploading or sealing")
	if err := parse(fs, args, env, "gata submit status [--wait] [--json]"); err != nil {
		return jsonErr(env, asJSON, err)
	}
	c, closeCore, err := openCore(ctx, env, g)
	if err != nil {
		return jsonErr(env, asJSON, err)
	}
	defer closeCore()
	var items []core.UploadItem
	for {
		if items, err = c.Outbox(ctx); err != nil {
			return jsonErr(env, asJSON, err)
		}
		if !wait || settled(items) {
			break
		}
		select {
		case <-ctx.Done():
			return jsonErr(env, asJSON, ctx.Err())
		case <-time.After(time.Second):
		}
	}
	network, nerr := c.GreenfieldNetwork(ctx)
	var st *core.GreenfieldStatus
	var serr error
	if nerr == nil {
		if _, err := c.WalletAddress(ctx); err == nil {
			actx, cancel := context.WithTimeout(ctx, 20*time.Second) // the network may be out of reach
			s, err := c.GreenfieldStatus(actx)
			cancel()
			st, serr = &s, err
			if err != nil {
				st = nil
			}
		}
	}
	if asJSON {
		out := map[string]any{"uploads": items, "network": network}
		if st != nil {
			out["account"] = st
		}
		if nerr != nil {
			out["network_error"] = nerr.Error()
		}
		if serr != nil {
			out["account_error"] = oneLine(serr.Error())
		}
		return json.NewEncoder(env.Stdout).Encode(out)
	}
	w := env.Stdout
	switch {
	case nerr != nil:
		fmt.Fprintf(w, "network  %v\n", nerr)
	default:
		fmt.Fprintf(w, "network  %s (%s, %s)\n", network.Name, network.ChainID, network.RPC)
	}
	if st != nil {
		fmt.Fprintf(w, "account  %s, %s BNB\n", st.Address, st.BalanceBNB)
		if st.Quota != nil {
			fmt.Fprintf(w, "bucket   %s, read quota this month: %s of %s free used, %s bought\n", st.Bucket,
				bytesText(int64(st.Quota.FreeConsumed)), bytesText(int64(st.Quota.FreeMonthly)), bytesText(int64(st.Quota.Charged)))
		} else {
			fmt.Fprintf(w, "bucket   %s (made with the first upload)\n", st.Bucket)
		}
	} else if serr != nil {
		fmt.Fprintf(w, "account  unavailable: %s\n", oneLine(serr.Error()))
	}
	if len(items) == 0 {
		fmt.Fprintln(w, "no submissions yet")
		return nil
	}
	printUploads(w, items)
	return nil
}

// settled says whether no upload is still on its way (all done or failed).
func settled(items []core.UploadItem) bool {
	for _, it := range items {
		if it.State != "done" && it.State != "failed" {
			return false
		}
	}
	return true
}

func printUploads(w io.Writer, items []core.UploadItem) {
	fmt.Fprintf(w, "%-4s %-5s %-9s %-22s %-11s %s\n", "ID", "KIND", "STATE", "PROGRESS", "SPEED", "OBJECT")
	for _, it := range items {
		progress := fmt.Sprintf("%s/%s %.0f%%", bytesText(it.BytesSent), bytesText(it.Size), it.Percent)
		speed := "-"
		if it.Speed > 0 && it.State != "done" {
			speed = bytesText(int64(it.Speed)) + "/s"
		}
		fmt.Fprintf(w, "%-4d %-5s %-9s %-22s %-11s %s\n", it.SubmissionID, it.Kind, it.State, progress, speed, it.Object)
		if it.Error != "" && it.State != "done" {
			line := "     error: " + oneLine(it.Error)
			if it.Attempts > 0 {
				line += fmt.Sprintf(" (attempt %d)", it.Attempts)
			}
			if !it.NextAttempt.IsZero() {
				line += ", next try " + it.NextAttempt.Format(time.TimeOnly)
			}
			fmt.Fprintln(w, line)
		}
		for _, sh := range it.Shares {
			state := "shared"
			if !sh.Granted {
				state = "to share once uploaded"
				if sh.Error != "" {
					state = "share failed: " + oneLine(sh.Error)
				}
			}
			fmt.Fprintf(w, "     %s %s\n", sh.Address, state)
		}
	}
}

// bytesText writes a byte count in B, KiB, MiB or GiB.
func bytesText(n int64) string {
	const k = 1024
	switch {
	case n < k:
		return fmt.Sprintf("%d B", n)
	case n < k*k:
		return fmt.Sprintf("%.1f KiB", float64(n)/k)
	case n < k*k*k:
		return fmt.Sprintf("%.1f MiB", float64(n)/(k*k))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(k*k*k))
}

func runSubmitShare(ctx context.Context, env *Env, args []string) error {
	var g Global
	var asJSON bool
	var id int64
	fs := newFlags("submit share", &g)
	fs.BoolVar(&asJSON, "json", false, "print the shared submissions as JSON")
	fs.Int64Var(&id, "id", 0, "the submission to share (default: all of them)")
	usage := "gata submit share ADDRESS [--id N] [--json]"
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return jsonErr(env, asJSON, parse(fs, args, env, usage))
	}
	if len(pos) != 1 {
		return jsonErr(env, asJSON, &UsageError{Msg: "usage: " + usage})
	}
	address := pos[0]
	c, closeCore, err := openCore(ctx, env, g)
	if err != nil {
		return jsonErr(env, asJSON, err)
	}
	defer closeCore()
	items, err := c.ShareSubmission(ctx, id, address)
	if err != nil && items == nil {
		return jsonErr(env, asJSON, uploadErr(err))
	}
	if asJSON {
		if err != nil {
			return jsonErr(env, asJSON, err)
		}
		return json.NewEncoder(env.Stdout).Encode(items)
	}
	now, later := 0, 0
	for _, it := range items {
		for _, sh := range it.Shares {
			if !strings.EqualFold(sh.Address, address) {
				continue
			}
			if sh.Granted {
				now++
			} else {
				later++
			}
		}
	}
	fmt.Fprintf(env.Stdout, "%s can read %d submissions now; %d more once their upload is done\n", address, now, later)
	return err
}

func runSubmitRetry(ctx context.Context, env *Env, args []string) error {
	var g Global
	fs := newFlags("submit retry", &g)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return parse(fs, args, env, "gata submit retry ID")
	}
	var id int64
	if len(pos) == 1 {
		id, err = strconv.ParseInt(pos[0], 10, 64)
	}
	if len(pos) != 1 || err != nil || id <= 0 {
		return &UsageError{Msg: "usage: gata submit retry ID (the submission's number in 'gata submit status')"}
	}
	c, closeCore, err := openCore(ctx, env, g)
	if err != nil {
		return err
	}
	defer closeCore()
	it, err := c.RetryUpload(ctx, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "submission %d is %s: the uploader tries it now\n", it.SubmissionID, it.State)
	return nil
}

func runSubmitNetwork(ctx context.Context, env *Env, args []string) error {
	var g Global
	var chainID, rpc string
	fs := newFlags("submit network", &g)
	fs.StringVar(&chainID, "chain-id", "", "a custom network's chain id, greenfield_<number>-<number>")
	fs.StringVar(&rpc, "rpc", "", "a custom network's RPC endpoint, http(s)://host:port")
	usage := "gata submit network [mainnet|testnet|custom --chain-id ID --rpc URL]"
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return parse(fs, args, env, usage)
	}
	name := ""
	if len(pos) == 1 {
		name = pos[0]
	}
	if len(pos) > 1 || (name != "custom" && (chainID != "" || rpc != "")) {
		return &UsageError{Msg: "usage: " + usage + " (--chain-id and --rpc go with custom)"}
	}
	c, closeCore, err := openCore(ctx, env, g)
	if err != nil {
		return err
	}
	defer closeCore()
	if name != "" {
		set := map[string]string{core.SettingGreenfieldNetwork: name}
		if name == "custom" {
			set[core.SettingGreenfieldChainID], set[core.SettingGreenfieldRPC] = chainID, rpc
		}
		if _, err := c.UpdateSettings(ctx, set); err != nil {
			return &UsageError{Msg: oneLine(err.Error())}
		}
	}
	n, err := c.GreenfieldNetwork(ctx)
	if err != nil {
		return &UsageError{Msg: oneLine(err.Error())}
	}
	evm, _ := n.EVMChainID()
	fmt.Fprintf(env.Stdout, "%s: chain %s (EIP-712 chain id %d), RPC %s\n", n.Name, n.ChainID, evm, n.RPC)
	return nil
}
