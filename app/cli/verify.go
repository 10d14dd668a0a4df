package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

func runVerify(ctx context.Context, env *Env, args []string) error {
	var g Global
	var asJSON bool
	fs := newFlags("verify", &g)
	fs.BoolVar(&asJSON, "json", false, "print the result as one JSON object")
	usage := "gata verify MANIFEST [JSONL] [--json]\n\n" +
		"Checks a submission: the JSONL file's sha256, size and canonical form against the\n" +
		"manifest, and the EIP-712 signature, and prints the signer. JSONL defaults to the\n" +
		"<sha256>.jsonl beside the manifest. Exits 1 when anything does not match."
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return jsonErr(env, asJSON, parse(fs, args, env, usage))
	}
	if len(pos) < 1 || len(pos) > 2 {
		return jsonErr(env, asJSON, &UsageError{Msg: "verify: name the MANIFEST and, optionally, the JSONL file (gata verify MANIFEST [JSONL])"})
	}
	jsonl := ""
	if len(pos) == 2 {
		jsonl = pos[1]
	}
	c, closeCore, err := openCore(ctx, env, g)
	if err != nil {
		return jsonErr(env, asJSON, err)
	}
	defer closeCore()
	res, err := c.Verify(ctx, pos[0], jsonl)
	if err != nil {
		return jsonErr(env, asJSON, err)
	}
	if asJSON {
		return json.NewEncoder(env.Stdout).Encode(res)
	}
	m := res.Manifest
	fmt.Fprintf(env.Stdout, "ok: signed by %s\n  %s submission, %d records, %d bytes, sha256 %s, nonce %d, chain %d, made %s by %s\n",
		res.Signer, m.Kind, m.Records, m.Bytes, m.SHA256, m.Nonce, m.ChainID, unixUTC(m.Created), m.App)
	return nil
}

func unixUTC(s uint64) string { return time.Unix(int64(s), 0).UTC().Format(time.RFC3339) }
