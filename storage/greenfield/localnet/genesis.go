package localnet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// upgradeHeight is the height by which every hard fork this chain knows is active.
// Greenfield turns features on by named upgrades at configured heights (app.toml); the
// SDK and the storage providers expect all of them.
const upgradeHeight = 10

// upgrades are the named upgrades of greenfield v1.9.1 and the heights they get here.
var upgrades = []struct {
	name   string
	height int
}{
	{"Nagqu", 2}, {"Pampas", 2}, {"Manchurian", 2}, {"Hulunbeier", 3}, {"HulunbeierPatch", 3},
	{"Ural", 4}, {"Pawnee", 5}, {"Serengeti", 6}, {"Erdos", 7}, {"Veld", 8}, {"Mongolian", upgradeHeight},
}

type chainPorts struct{ rpc, p2p, grpc, abci int }

type spPorts struct{ gateway, grpc, probe int }

// spKeys are one storage provider's accounts: addresses, and the hex private keys its
// config needs.
type spKeys struct {
	operator, fund, seal, approval, gc, maintenance   string // addresses
	operatorKey, fundKey, sealKey, approvalKey, gcKey string
	blsKey, blsPub, blsProof                          string
}

type genesisKeys struct{ sp []spKeys }

func (n *Network) chainHome() string { return filepath.Join(n.Dir, "chain") }

func (n *Network) gnfd(ctx context.Context, args ...string) ([]byte, error) {
	return n.run(ctx, "", append([]string{filepath.Join(n.bin, "gnfd")}, args...)...)
}

// keyring flags of every gnfd keys call: the test backend (no passphrase) in the chain's
// home.
func (n *Network) kr() []string {
	return []string{"--keyring-backend", "test", "--home", n.chainHome()}
}

// addKey makes a key in the keyring and returns its address and public key (hex).
func (n *Network) addKey(ctx context.Context, name string, bls bool) (addr, pubHex string, err error) {
	args := append([]string{"keys", "add", name, "--output", "json"}, n.kr()...)
	if bls {
		args = append(args, "--algo", "eth_bls")
	}
	out, err := n.gnfd(ctx, args...)
	if err != nil {
		return "", "", err
	}
	var k struct {
		Address string `json:"address"`
		PubHex  string `json:"pubkey_hex"`
	}
	// gnfd prints the JSON on stdout; skip anything before it.
	if i := bytes.IndexByte(out, '{'); i >= 0 {
		out = out[i:]
	}
	if err := json.Unmarshal(out, &k); err != nil || k.Address == "" {
		return "", "", fmt.Errorf("gnfd keys add %s: unexpected output %q", name, out)
	}
	return k.Address, k.PubHex, nil
}

// exportKey returns a key's private key as hex.
func (n *Network) exportKey(ctx context.Context, name string) (string, error) {
	out, err := n.run(ctx, "y\n", append([]string{filepath.Join(n.bin, "gnfd"), "keys", "export", name, "--unarmored-hex", "--unsafe"}, n.kr()...)...)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// signBLS proves possession of a BLS key: its signature over its own public key.
func (n *Network) signBLS(ctx context.Context, name, pubHex string) (string, error) {
	out, err := n.gnfd(ctx, append([]string{"keys", "sign", pubHex, "--from", name}, n.kr()...)...)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// inParallel runs the functions, at most four at a time, and returns the first error.
func inParallel(fs ...func() error) error {
	sem := make(chan struct{}, 4)
	errs := make([]error, len(fs))
	var wg sync.WaitGroup
	for i, f := range fs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = f()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// genesis writes the chain's home: keys, funded accounts, the validator's and the
// storage providers' genesis transactions, and the parameters a small test network
// needs.
func (n *Network) genesis(ctx context.Context, cp chainPorts, sps []spPorts, accounts int) (genesisKeys, error) {
	var gk genesisKeys
	home := n.chainHome()
	if _, err := n.gnfd(ctx, "init", "validator0", "--chain-id", ChainID, "--default-denom", Denom, "--home", home); err != nil {
		return gk, err
	}
	addrs := map[string]string{}
	pubs := map[string]string{}
	add := func(name string, bls bool) error {
		a, p, err := n.addKey(ctx, name, bls)
		addrs[name], pubs[name] = a, p
		return err
	}
	for _, k := range []struct {
		name string
		bls  bool
	}{{"validator", false}, {"delegator", false}, {"validator_bls", true}, {"relayer", false}, {"challenger", false}} {
		if err := add(k.name, k.bls); err != nil {
			return gk, err
		}
	}
	spRoles := []string{"", "_fund", "_seal", "_approval", "_gc", "_maintenance"}
	for i := range sps {
		for _, r := range spRoles {
			if err := add(fmt.Sprintf("sp%d%s", i, r), false); err != nil {
				return gk, err
			}
		}
		if err := add(fmt.Sprintf("sp%d_bls", i), true); err != nil {
			return gk, err
		}
	}
	for i := range accounts {
		if err := add(fmt.Sprintf("test%d", i), false); err != nil {
			return gk, err
		}
	}

	// Fund everything but the BLS keys.
	for name, addr := range addrs {
		if strings.HasSuffix(name, "_bls") {
			continue
		}
		bal := Balance
		if name == "validator" || name == "delegator" || strings.HasPrefix(name, "sp") {
			bal += "000" // enough for the validator's bond and the providers' deposits
		}
		if _, err := n.gnfd(ctx, "add-genesis-account", addr, bal+Denom, "--home", home); err != nil {
			return gk, err
		}
	}

	// The validator.
	proof, err := n.signBLS(ctx, "validator_bls", pubs["validator_bls"])
	if err != nil {
		return gk, err
	}
	if _, err := n.gnfd(ctx, append([]string{"gentx", "10000000000000000000000000" + Denom,
		addrs["validator"], addrs["delegator"], addrs["relayer"], addrs["challenger"], pubs["validator_bls"], proof,
		"--chain-id", ChainID, "--moniker", "validator0", "--commission-max-change-rate", "0.01",
		"--commission-max-rate", "1.0", "--commission-rate", "0.07", "--details", "validator0",
		"--website", "http://localhost", "--node", fmt.Sprintf("tcp://127.0.0.1:%d", cp.rpc),
		"--node-id", "validator0", "--ip", "127.0.0.1", "--gas", ""}, n.kr()...)...); err != nil {
		return gk, err
	}
	if _, err := n.gnfd(ctx, "collect-gentxs", "--home", home); err != nil {
		return gk, err
	}

	// The storage providers, registered in genesis by their own genesis transactions.
	spDir := filepath.Join(n.Dir, "gensptx")
	if err := os.MkdirAll(spDir, 0o755); err != nil {
		return gk, err
	}
	gk.sp = make([]spKeys, len(sps))
	var jobs []func() error
	for i := range sps {
		p := fmt.Sprintf("sp%d", i)
		k := &gk.sp[i]
		k.operator, k.fund, k.seal = addrs[p], addrs[p+"_fund"], addrs[p+"_seal"]
		k.approval, k.gc, k.maintenance = addrs[p+"_approval"], addrs[p+"_gc"], addrs[p+"_maintenance"]
		k.blsPub = pubs[p+"_bls"]
		for dst, name := range map[*string]string{&k.operatorKey: p, &k.fundKey: p + "_fund", &k.sealKey: p + "_seal",
			&k.approvalKey: p + "_approval", &k.gcKey: p + "_gc", &k.blsKey: p + "_bls"} {
			jobs = append(jobs, func() (err error) { *dst, err = n.exportKey(ctx, name); return err })
		}
		jobs = append(jobs, func() (err error) { k.blsProof, err = n.signBLS(ctx, p+"_bls", k.blsPub); return err })
	}
	if err := inParallel(jobs...); err != nil {
		return gk, err
	}
	for i, k := range gk.sp {
		if _, err := n.gnfd(ctx, append([]string{"spgentx", "10000000000000000000000000" + Denom,
			"--creator", k.operator, "--operator-address", k.operator, "--funding-address", k.fund,
			"--seal-address", k.seal, "--bls-pub-key", k.blsPub, "--bls-proof", k.blsProof,
			"--approval-address", k.approval, "--gc-address", k.gc, "--maintenance-address", k.maintenance,
			"--chain-id", ChainID, "--moniker", fmt.Sprintf("sp%d", i), "--details", fmt.Sprintf("sp%d", i),
			"--website", "http://localhost", "--endpoint", fmt.Sprintf("http://127.0.0.1:%d", sps[i].gateway),
			"--free-read-quota", "10000000000", "--node", fmt.Sprintf("tcp://127.0.0.1:%d", cp.rpc),
			"--node-id", fmt.Sprintf("sp%d", i), "--ip", "127.0.0.1", "--gas", "",
			"--output-document", filepath.Join(spDir, fmt.Sprintf("gentx-sp%d.json", i))}, n.kr()...)...); err != nil {
			return gk, err
		}
	}
	if _, err := n.gnfd(ctx, "collect-spgentxs", "--gentx-dir", spDir, "--home", home); err != nil {
		return gk, err
	}

	// The test accounts' keys.
	n.Keys = make([]string, accounts)
	n.Addrs = make([]string, accounts)
	jobs = nil
	for i := range accounts {
		n.Addrs[i] = addrs[fmt.Sprintf("test%d", i)]
		jobs = append(jobs, func() (err error) { n.Keys[i], err = n.exportKey(ctx, fmt.Sprintf("test%d", i)); return err })
	}
	if err := inParallel(jobs...); err != nil {
		return gk, err
	}
	if err := n.editGenesis(); err != nil {
		return gk, err
	}
	return gk, n.editChainConfig(cp)
}

// editGenesis sets what a three-provider test network needs: 1 data + 1 parity chunk,
// the BNB denomination's metadata, and "stake" nowhere.
func (n *Network) editGenesis() error {
	path := filepath.Join(n.chainHome(), "config", "genesis.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read genesis: %w", err)
	}
	b = bytes.ReplaceAll(b, []byte(`"stake"`), []byte(strconv.Quote(Denom)))
	var g map[string]any
	if err := json.Unmarshal(b, &g); err != nil {
		return fmt.Errorf("read genesis: %w", err)
	}
	app, _ := g["app_state"].(map[string]any)
	set := func(v any, path ...string) error {
		m := app
		for _, k := range path[:len(path)-1] {
			next, ok := m[k].(map[string]any)
			if !ok {
				return fmt.Errorf("genesis has no %s", strings.Join(path, "."))
			}
			m = next
		}
		m[path[len(path)-1]] = v
		return nil
	}
	for _, e := range []struct {
		v    any
		path []string
	}{
		{1, []string{"storage", "params", "versioned_params", "redundant_data_chunk_num"}},
		{1, []string{"storage", "params", "versioned_params", "redundant_parity_chunk_num"}},
		{[]any{map[string]any{
			"description": "The native staking token of the Greenfield.", "base": Denom, "display": Denom,
			"denom_units": []any{map[string]any{"denom": Denom, "exponent": 0, "aliases": []any{"wei"}}},
		}}, []string{"bank", "denom_metadata"}},
	} {
		if err := set(e.v, e.path...); err != nil {
			return err
		}
	}
	out, err := json.MarshalIndent(g, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o644)
}

// editChainConfig puts every listener on 127.0.0.1 at the ports picked for it, makes
// blocks fast, and schedules the upgrades.
func (n *Network) editChainConfig(cp chainPorts) error {
	dir := filepath.Join(n.chainHome(), "config")
	cfg := filepath.Join(dir, "config.toml")
	if err := editTOML(cfg, []tomlSet{
		{"", "proxy_app", strconv.Quote(fmt.Sprintf("tcp://127.0.0.1:%d", cp.abci))},
		{"rpc", "laddr", strconv.Quote(fmt.Sprintf("tcp://127.0.0.1:%d", cp.rpc))},
		{"rpc", "pprof_laddr", `""`},
		{"p2p", "laddr", strconv.Quote(fmt.Sprintf("tcp://127.0.0.1:%d", cp.p2p))},
		{"p2p", "addr_book_strict", "false"},
		{"p2p", "allow_duplicate_ip", "true"},
		{"consensus", "timeout_commit", `"500ms"`},
		{"instrumentation", "prometheus", "false"},
	}); err != nil {
		return err
	}
	app := filepath.Join(dir, "app.toml")
	if err := editTOML(app, []tomlSet{
		{"api", "enable", "false"},
		{"grpc", "address", strconv.Quote(fmt.Sprintf("127.0.0.1:%d", cp.grpc))},
		{"grpc-web", "enable", "false"},
	}); err != nil {
		return err
	}
	f, err := os.OpenFile(app, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	for _, u := range upgrades {
		fmt.Fprintf(f, "\n[[upgrade]]\nname = %q\nheight = %d\ninfo = \"\"\n", u.name, u.height)
	}
	return f.Close()
}

// tomlSet is one key to set in a section of a TOML file ("" is the top).
type tomlSet struct{ section, key, value string }

// editTOML replaces the values of existing keys in a TOML file, line by line, knowing
// which [section] each line is in. Every key must exist.
func editTOML(path string, sets []tomlSet) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("edit %s: %w", path, err)
	}
	lines := strings.Split(string(b), "\n")
	done := make([]bool, len(sets))
	section := ""
	for i, line := range lines {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "[") {
			section = strings.Trim(t, "[]")
			continue
		}
		k, _, ok := strings.Cut(t, "=")
		if !ok || strings.HasPrefix(t, "#") {
			continue
		}
		k = strings.TrimSpace(k)
		for j, s := range sets {
			if s.section == section && s.key == k {
				lines[i] = s.key + " = " + s.value
				done[j] = true
			}
		}
	}
	for j, s := range sets {
		if !done[j] {
			return fmt.Errorf("edit %s: no key %s in [%s]", path, s.key, s.section)
		}
	}
	return os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644)
}

// startChain starts the validator and waits until the chain is past its upgrades.
func (n *Network) startChain(ctx context.Context, cp chainPorts) error {
	p, err := n.spawn("gnfd", n.Dir, filepath.Join(n.bin, "gnfd"), "start", "--home", n.chainHome(),
		"--address", fmt.Sprintf("tcp://127.0.0.1:%d", cp.abci),
		"--grpc.address", fmt.Sprintf("127.0.0.1:%d", cp.grpc),
		"--p2p.laddr", fmt.Sprintf("tcp://127.0.0.1:%d", cp.p2p),
		"--rpc.laddr", fmt.Sprintf("tcp://127.0.0.1:%d", cp.rpc))
	if err != nil {
		return err
	}
	return poll(ctx, 3*time.Minute, 300*time.Millisecond, "wait for the chain", func() (bool, error) {
		if err := p.exited(); err != nil {
			return false, fatalError{err}
		}
		h, err := n.Height(ctx)
		return h > upgradeHeight, err
	})
}
