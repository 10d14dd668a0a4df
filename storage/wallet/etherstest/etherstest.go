// Package etherstest runs JavaScript with node against the npm package ethers, the
// independent Ethereum implementation that the wallet and submission tests check
// against: BIP-32/39/44 derivation, V3 keystores, signatures and EIP-712 typed data.
//
// ethers is a dev dependency of app/web/e2e (`make npm-deps` installs it, and `make
// test` does that first). Where node or the package is missing, Run skips the test with
// a message saying so, unless GATA_REQUIRE_ETHERS is set (the Makefile sets it), in
// which case the test fails.
package etherstest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// RequireEnv names the environment variable that turns a missing node or ethers from a
// skip into a failure.
const RequireEnv = "GATA_REQUIRE_ETHERS"

// e2eDir is where the npm packages are installed, relative to the module root.
const e2eDir = "app/web/e2e"

// prelude puts ethers, the input and out() in scope and runs the body as an async function.
const prelude = `const { ethers } = require("ethers");
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const out = (v) => process.stdout.write(JSON.stringify(v, (k, x) => typeof x === "bigint" ? x.toString() : x));
(async () => {
%s
})().catch((e) => { console.error(e && e.stack ? e.stack : String(e)); process.exit(1); });
`

// Dir returns the folder holding node_modules/ethers, or why it cannot be used.
func Dir() (string, error) {
	if _, err := exec.LookPath("node"); err != nil {
		return "", errors.New("node is not installed (make npm-deps installs it with the other test dependencies)")
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			dir := filepath.Join(d, e2eDir)
			if _, err := os.Stat(filepath.Join(dir, "node_modules", "ethers", "package.json")); err != nil {
				return "", fmt.Errorf("the npm package ethers is not installed in %s (run make npm-deps)", dir)
			}
			return dir, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", wd)
		}
	}
}

// Run runs body (the inside of an async function that can use ethers, input and
// out(value)) with in as input, and decodes what it passed to out into out. BigInts
// come out as decimal strings.
func Run(t testing.TB, body string, in, out any) {
	t.Helper()
	dir, err := Dir()
	if err != nil {
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("ethers cross-check needed (%s is set): %v", RequireEnv, err)
		}
		t.Skipf("SKIP ethers cross-check: %v", err)
	}
	inJSON, err := json.Marshal(in)
	if err != nil {
		t.Fatalf("encode input for node: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "-e", fmt.Sprintf(prelude, body))
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(inJSON)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node with ethers: %v\n%s", err, stderr.String())
	}
	if out == nil {
		return
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		t.Fatalf("decode node's output %q: %v", stdout.String(), err)
	}
}
