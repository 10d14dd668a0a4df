package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/storage"
	"github.com/gata-contrib/gata/storage/wallet"
)

// Hardhat's first account: a well-known test key and its address.
const (
	cliTestMnemonic = "test test test test test test test test test test test junk"
	cliTestKey      = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
	cliTestAddress  = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
	cliTestPass     = "cli wallet passphrase"
)

// walletCLI runs commands in-process against a data folder of its own, a fresh core on
// the SQLite file each time, the wallet in the keystore file (no keyring service) with
// a light scrypt cost and the passphrase a script would give.
type walletCLI struct {
	t    *testing.T
	dir  string
	vars map[string]string
}

func newWalletCLI(t *testing.T) *walletCLI {
	return &walletCLI{t: t, dir: t.TempDir(), vars: map[string]string{}}
}

func (h *walletCLI) openCore(ctx context.Context, g Global) (*core.Core, func() error, error) {
	st, err := storage.Open(ctx, filepath.Join(h.dir, storage.DBName))
	if err != nil {
		return nil, nil, err
	}
	c, err := core.New(core.Options{Version: "test", DataDir: h.dir, Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		WalletScryptN: wallet.LightScryptN, Passphrase: func() (string, error) { return cliTestPass, nil }})
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return c, func() error { c.Close(); return st.Close() }, nil
}

// runIn runs one command line with stdin and returns its exit status, stdout and stderr.
func (h *walletCLI) runIn(stdin io.Reader, args ...string) (int, string, string) {
	h.t.Helper()
	r := newRecorder()
	r.env.OpenCore = h.openCore
	r.env.Stdin = stdin
	r.env.Getenv = func(k string) string { return h.vars[k] }
	code := Run(context.Background(), &r.env, args)
	return code, r.stdout.String(), r.stderr.String()
}

func (h *walletCLI) run(args ...string) (int, string, string) { return h.runIn(nil, args...) }

func (h *walletCLI) ok(args ...string) string {
	h.t.Helper()
	code, out, errOut := h.run(args...)
	if code != 0 {
		h.t.Fatalf("gata %s exited %d: %s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// typist answers `gata wallet new`'s questions as a person reading the screen would:
// one line per Read, the word asked for by the last "Word N: " prompt, read off the
// numbered words printed before (changed by wrong when it is set).
type typist struct {
	stdout, stderr *bytes.Buffer
	wrong          bool
}

var (
	printedWord = regexp.MustCompile(` (\d{1,2})\. ([a-z]+)`)
	askedWord   = regexp.MustCompile(`Word (\d+): $`)
)

func (ty *typist) Read(p []byte) (int, error) {
	m := askedWord.FindStringSubmatch(ty.stderr.String())
	if m == nil {
		return 0, io.EOF
	}
	words := map[string]string{}
	for _, w := range printedWord.FindAllStringSubmatch(ty.stdout.String(), -1) {
		words[w[1]] = w[2]
	}
	answer := words[m[1]]
	if ty.wrong {
		answer = "zoo" + answer
	}
	ty.stderr.WriteString("\n") // the prompt was answered
	return copy(p, strings.ToUpper(answer)+"\n"), nil
}

// newWallet runs `gata wallet new` with a typist answering.
func (h *walletCLI) newWallet(wrong bool) (int, string, string) {
	h.t.Helper()
	r := newRecorder()
	r.env.OpenCore = h.openCore
	r.env.Stdin = &typist{stdout: &r.stdout, stderr: &r.stderr, wrong: wrong}
	code := Run(context.Background(), &r.env, []string{"wallet", "new"})
	return code, r.stdout.String(), r.stderr.String()
}

func TestWalletUsage(t *testing.T) {
	h := newWalletCLI(t)
	h.vars["EMPTY"] = ""
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no subcommand", []string{"wallet"}, "missing subcommand (new, import, show, export)"},
		{"unknown", []string{"wallet", "burn"}, `unknown subcommand "burn"`},
		{"new stray", []string{"wallet", "new", "x"}, `unexpected argument "x"`},
		{"import both", []string{"wallet", "import", "--mnemonic-env", "A", "--private-key-env", "B"}, "not both"},
		{"import empty var", []string{"wallet", "import", "--private-key-env", "EMPTY"}, "$EMPTY is empty"},
		{"import nothing on stdin", []string{"wallet", "import"}, "no words or key on stdin"},
		{"export without yes", []string{"wallet", "export"}, "add --yes"},
		{"export bad format", []string{"wallet", "export", "--format", "pem", "--yes"}, `--format must be hex or keystore, not "pem"`},
		{"export passphrase with hex", []string{"wallet", "export", "--yes", "--passphrase-env", "X"}, "goes with --format keystore"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := h.run(tt.args...)
			if code != 2 || !strings.Contains(errOut, tt.want) || strings.Count(errOut, "\n") != 1 {
				t.Errorf("gata %q = %d, stderr %q; want 2 and one line with %q", tt.args, code, errOut, tt.want)
			}
		})
	}
	for _, args := range [][]string{{"wallet", "--help"}, {"wallet", "export", "-h"}, {"help", "wallet"}} {
		if code, out, _ := h.run(args...); code != 0 || !strings.Contains(out, "usage") {
			t.Errorf("gata %q = %d, %q; want help", args, code, out)
		}
	}
	if _, out, _ := h.run("help"); !strings.Contains(out, "wallet") || !strings.Contains(out, "submit") || !strings.Contains(out, "verify") {
		t.Errorf("gata help does not list wallet, submit and verify: %q", out)
	}
}

func TestWalletNewShowExport(t *testing.T) {
	h := newWalletCLI(t)
	if code, _, errOut := h.run("wallet", "show"); code != 1 || !strings.Contains(errOut, "no wallet yet") {
		t.Errorf("wallet show with none = %d, %q", code, errOut)
	}
	code, out, errOut := h.newWallet(false)
	if code != 0 {
		t.Fatalf("wallet new = %d: %s%s", code, out, errOut)
	}
	words := printedWord.FindAllStringSubmatch(out, -1)
	if len(words) != wallet.MnemonicWords || strings.Count(errOut, "Word ") != 3 {
		t.Fatalf("wallet new printed %d words and asked %d: %s", len(words), strings.Count(errOut, "Word "), out)
	}
	var phrase []string
	for i, w := range words {
		if w[1] != strconv.Itoa(i+1) {
			t.Fatalf("word %d numbered %s", i+1, w[1])
		}
		phrase = append(phrase, w[2])
	}
	k, err := wallet.FromMnemonic(strings.Join(phrase, " "))
	if err != nil {
		t.Fatal(err)
	}
	addr := k.Address().Hex()
	if !strings.Contains(out, "saved wallet "+addr+" (keystore file "+filepath.Join(h.dir, wallet.KeystoreFile)+")") {
		t.Errorf("wallet new = %q, want it saved as %s", out, addr)
	}
	if out := h.ok("wallet", "show"); !strings.Contains(out, "address  "+addr) || !strings.Contains(out, "keystore file") {
		t.Errorf("wallet show = %q", out)
	}
	var info core.WalletInfo
	if err := json.Unmarshal([]byte(h.ok("wallet", "show", "--json")), &info); err != nil || info.Address != addr || !info.Exists {
		t.Errorf("wallet show --json = %+v, %v", info, err)
	}
	if code, _, errOut := h.newWallet(false); code != 1 || !strings.Contains(errOut, "exists") {
		t.Errorf("wallet new over a wallet = %d, %q", code, errOut)
	}

	hexKey := strings.TrimSpace(h.ok("wallet", "export", "--yes"))
	if hexKey != k.ExportHex() {
		t.Errorf("wallet export --yes = %q, want the key of the words", hexKey)
	}
	h.vars["KS_PASS"] = "keystore pass"
	ks := h.ok("wallet", "export", "--format", "keystore", "--yes", "--passphrase-env", "KS_PASS")
	if got, err := wallet.FromKeystore([]byte(ks), "keystore pass"); err != nil || got.Address().Hex() != addr {
		t.Errorf("the exported keystore opens as %v, %v", got, err)
	}
	if strings.Contains(ks, hexKey[2:]) {
		t.Errorf("the keystore holds the key in plain text")
	}
}

func TestWalletNewWrongWord(t *testing.T) {
	h := newWalletCLI(t)
	code, out, errOut := h.newWallet(true)
	if code != 1 || !strings.Contains(errOut, "does not match") || !strings.Contains(errOut, "not saved") {
		t.Errorf("wallet new with a wrong word = %d, %q %q", code, out, errOut)
	}
	if code, _, _ := h.run("wallet", "show"); code != 1 {
		t.Errorf("wallet show after a failed new = %d, want 1 (no wallet)", code)
	}
}

func TestWalletImport(t *testing.T) {
	h := newWalletCLI(t)
	h.vars["WORDS"] = cliTestMnemonic
	h.vars["KEY"] = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
	h.vars["BAD"] = "not twelve words"
	if code, _, errOut := h.run("wallet", "import", "--mnemonic-env", "BAD"); code != 2 || !strings.Contains(errOut, "BIP-39") {
		t.Errorf("import of bad words = %d, %q; want 2", code, errOut)
	}
	if out := h.ok("wallet", "import", "--mnemonic-env", "WORDS"); !strings.Contains(out, "imported wallet "+cliTestAddress) {
		t.Errorf("import --mnemonic-env = %q", out)
	}
	if code, _, errOut := h.run("wallet", "import", "--private-key-env", "KEY"); code != 1 || !strings.Contains(errOut, "exists") {
		t.Errorf("import over a wallet = %d, %q; want 1 and 'exists'", code, errOut)
	}
	other, _ := wallet.FromHex(h.vars["KEY"])
	if out := h.ok("wallet", "import", "--private-key-env", "KEY", "--replace"); !strings.Contains(out, other.Address().Hex()) {
		t.Errorf("import --replace = %q", out)
	}
	// from stdin: a hex key, then words
	code, out, errOut := h.runIn(strings.NewReader(cliTestKey+"\n"), "wallet", "import", "--replace")
	if code != 0 || !strings.Contains(out, cliTestAddress) {
		t.Errorf("import from stdin (key) = %d, %q %q", code, out, errOut)
	}
	code, out, errOut = h.runIn(strings.NewReader("  "+cliTestMnemonic+"  \n"), "wallet", "import", "--replace")
	if code != 0 || !strings.Contains(out, cliTestAddress) {
		t.Errorf("import from stdin (words) = %d, %q %q", code, out, errOut)
	}
	if out := h.ok("wallet", "export", "--yes"); strings.TrimSpace(out) != cliTestKey {
		t.Errorf("export after import = %q", out)
	}
}
