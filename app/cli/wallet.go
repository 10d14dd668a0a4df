package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/gata-contrib/gata/app/core"
)

const walletUsage = `usage:
  gata wallet new                      make a wallet from 24 new words (shown once, three asked back)
  gata wallet import [--mnemonic-env VAR | --private-key-env VAR] [--replace]
                                       import words or a hex private key (from stdin without a flag)
  gata wallet show [--json]            the address and where the key is kept
  gata wallet export [--format hex|keystore] --yes [--passphrase-env VAR]
                                       print the private key (hex) or an Ethereum V3 keystore

The wallet is a secp256k1 key with an Ethereum-style 0x address (BIP-39 words,
BIP-44 path m/44'/60'/0'/0/0): the same key a BNB Greenfield account uses. It signs
your submissions. The key is kept in the OS keyring, or where no keyring service runs
(headless Linux) in wallet.json in the data folder, an Ethereum V3 keystore sealed with
the passphrase ($GATA_PASSPHRASE or asked on the terminal). It never goes to the
database, the logs or the web UI.
`

func runWallet(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 {
		return &UsageError{Msg: "wallet: missing subcommand (new, import, show, export)"}
	}
	switch args[0] {
	case "new":
		return runWalletNew(ctx, env, args[1:])
	case "import":
		return runWalletImport(ctx, env, args[1:])
	case "show":
		return runWalletShow(ctx, env, args[1:])
	case "export":
		return runWalletExport(ctx, env, args[1:])
	case "-h", "--help", "help":
		fmt.Fprint(env.Stdout, walletUsage)
		return nil
	}
	return &UsageError{Msg: fmt.Sprintf("wallet: unknown subcommand %q (new, import, show, export)", args[0])}
}

// walletErr turns the core's refusals that the user can fix on the command line into
// usage errors (exit 2).
func walletErr(err error) error {
	if errors.Is(err, core.ErrBadWallet) || errors.Is(err, core.ErrExportNotConfirmed) {
		return &UsageError{Msg: oneLine(err.Error())}
	}
	return err
}

func runWalletNew(ctx context.Context, env *Env, args []string) error {
	var g Global
	fs := newFlags("wallet new", &g)
	if err := parse(fs, args, env, "gata wallet new"); err != nil {
		return err
	}
	c, closeCore, err := openCore(ctx, env, g)
	if err != nil {
		return err
	}
	defer closeCore()
	nw, err := c.CreateWallet(ctx)
	if err != nil {
		return err
	}
	out := env.Stdout
	fmt.Fprintf(out, "Your new wallet %s. Write these %d words down, in order, and keep them offline:\n\n", nw.Address, len(nw.Words))
	for i, w := range nw.Words {
		fmt.Fprintf(out, "%4d. %-10s", i+1, w)
		if (i+1)%4 == 0 {
			fmt.Fprintln(out)
		}
	}
	fmt.Fprintf(out, "\nWhoever has them owns the wallet; they are shown only now. The wallet is saved once you type three of them back.\n")
	in := bufio.NewReader(io.LimitReader(orEmpty(env.Stdin), maxKeyBytes))
	answers := map[int]string{}
	for _, p := range nw.Confirm {
		fmt.Fprintf(env.Stderr, "Word %d: ", p)
		line, err := in.ReadString('\n')
		if err != nil && (err != io.EOF || line == "") {
			return fmt.Errorf("wallet new: read word %d: the wallet was not saved: %w", p, err)
		}
		answers[p] = strings.TrimSpace(line)
	}
	info, err := c.ConfirmWallet(ctx, answers)
	if errors.Is(err, core.ErrNotConfirmed) {
		return fmt.Errorf("%w; the wallet was not saved: run 'gata wallet new' again", err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "saved wallet %s (%s)\n", info.Address, where(info))
	return nil
}

func orEmpty(r io.Reader) io.Reader {
	if r == nil {
		return strings.NewReader("")
	}
	return r
}

func where(info core.WalletInfo) string {
	if info.Path != "" {
		return info.Where + " " + info.Path
	}
	return info.Where
}

var hexKeyRE = regexp.MustCompile(`^(0[xX])?[0-9a-fA-F]{64}$`)

func runWalletImport(ctx context.Context, env *Env, args []string) error {
	var g Global
	var mnemonicEnv, keyEnv string
	var replace bool
	fs := newFlags("wallet import", &g)
	fs.StringVar(&mnemonicEnv, "mnemonic-env", "", "environment variable holding the BIP-39 words")
	fs.StringVar(&keyEnv, "private-key-env", "", "environment variable holding the hex private key")
	fs.BoolVar(&replace, "replace", false, "replace the wallet stored now (its key is gone unless you exported it)")
	if err := parse(fs, args, env, "gata wallet import [--mnemonic-env VAR | --private-key-env VAR] [--replace]"); err != nil {
		return err
	}
	in := core.WalletImport{Replace: replace}
	switch {
	case mnemonicEnv != "" && keyEnv != "":
		return &UsageError{Msg: "wallet import: give --mnemonic-env or --private-key-env, not both"}
	case mnemonicEnv != "":
		if in.Mnemonic = strings.TrimSpace(env.Getenv(mnemonicEnv)); in.Mnemonic == "" {
			return &UsageError{Msg: fmt.Sprintf("wallet import: $%s is empty", mnemonicEnv)}
		}
	case keyEnv != "":
		if in.PrivateKey = strings.TrimSpace(env.Getenv(keyEnv)); in.PrivateKey == "" {
			return &UsageError{Msg: fmt.Sprintf("wallet import: $%s is empty", keyEnv)}
		}
	default:
		v, err := readKey(env, "Words or hex private key: ")
		if err != nil {
			return err
		}
		if v == "" {
			return &UsageError{Msg: "wallet import: no words or key on stdin (or use --mnemonic-env VAR / --private-key-env VAR)"}
		}
		if hexKeyRE.MatchString(v) {
			in.PrivateKey = v
		} else {
			in.Mnemonic = v
		}
	}
	c, closeCore, err := openCore(ctx, env, g)
	if err != nil {
		return err
	}
	defer closeCore()
	info, err := c.ImportWallet(ctx, in)
	if err != nil {
		return walletErr(err)
	}
	fmt.Fprintf(env.Stdout, "imported wallet %s (%s)\n", info.Address, where(info))
	return nil
}

func runWalletShow(ctx context.Context, env *Env, args []string) error {
	var g Global
	var asJSON bool
	fs := newFlags("wallet show", &g)
	fs.BoolVar(&asJSON, "json", false, "print one JSON object")
	if err := parse(fs, args, env, "gata wallet show [--json]"); err != nil {
		return jsonErr(env, asJSON, err)
	}
	c, closeCore, err := openCore(ctx, env, g)
	if err != nil {
		return jsonErr(env, asJSON, err)
	}
	defer closeCore()
	info, err := c.WalletStatus(ctx)
	if err != nil {
		return jsonErr(env, asJSON, err)
	}
	if asJSON {
		return json.NewEncoder(env.Stdout).Encode(info)
	}
	if !info.Exists {
		return core.ErrNoWallet
	}
	fmt.Fprintf(env.Stdout, "address  %s\nkept in  %s\n", info.Address, where(info))
	if info.Locked {
		fmt.Fprintf(env.Stdout, "locked   signing needs the passphrase ($GATA_PASSPHRASE)\n")
	}
	return nil
}

func runWalletExport(ctx context.Context, env *Env, args []string) error {
	var g Global
	var in core.WalletExport
	var passEnv string
	fs := newFlags("wallet export", &g)
	fs.StringVar(&in.Format, "format", core.ExportHex, "hex (0x and 64 digits) or keystore (Ethereum V3 JSON, for MetaMask, geth or ethers)")
	fs.BoolVar(&in.Confirm, "yes", false, "yes, print the private key: whoever has it owns the wallet")
	fs.StringVar(&passEnv, "passphrase-env", "", "environment variable holding the keystore's passphrase (default: the app's passphrase)")
	if err := parse(fs, args, env, "gata wallet export [--format hex|keystore] --yes [--passphrase-env VAR]"); err != nil {
		return err
	}
	switch {
	case in.Format != core.ExportHex && in.Format != core.ExportKeystore:
		return &UsageError{Msg: fmt.Sprintf("wallet export: --format must be hex or keystore, not %q", in.Format)}
	case !in.Confirm:
		return &UsageError{Msg: "wallet export: this prints the private key, and whoever has it owns the wallet: add --yes to go on"}
	case passEnv != "" && in.Format != core.ExportKeystore:
		return &UsageError{Msg: "wallet export: --passphrase-env goes with --format keystore"}
	case passEnv != "":
		if in.Passphrase = env.Getenv(passEnv); in.Passphrase == "" {
			return &UsageError{Msg: fmt.Sprintf("wallet export: $%s is empty", passEnv)}
		}
	}
	c, closeCore, err := openCore(ctx, env, g)
	if err != nil {
		return err
	}
	defer closeCore()
	key, err := c.ExportWallet(ctx, in)
	if err != nil {
		return walletErr(err)
	}
	fmt.Fprintln(env.Stdout, key)
	return nil
}
