// Package localnet runs a real BNB Greenfield network on 127.0.0.1 for tests: one gnfd
// validator and three gnfd-sp storage providers registered in genesis, with erasure
// coding set to 1 data + 1 parity chunk (a bucket needs data+parity secondary providers
// besides its primary, so three are enough), a MariaDB server of its own for the
// providers' databases, and test accounts funded in genesis.
//
// Everything runs as the current user in one temporary folder, listens on 127.0.0.1
// only, and is stopped by the PIDs it started. The binaries come from tools/build.sh
// (built from the Go module proxy and cached by version).
package localnet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ChainID is the chain id of every local network.
const ChainID = "greenfield_9000-121"

// Denom is the local network's coin (wei of BNB).
const Denom = "BNB"

// SPs is the number of storage providers.
const SPs = 3

// Balance is what each funded account gets in genesis (a million BNB, in wei).
const Balance = "1000000000000000000000000"

// Options configure Start. Zero values mean the defaults.
type Options struct {
	// BinDir holds gnfd and gnfd-sp; default $GATA_LOCALNET_BIN, else tools/build.sh is
	// run (it builds once and then answers from its cache).
	BinDir string
	// Dir is where the network keeps its files; default a new temporary folder that
	// Stop removes.
	Dir string
	// Accounts is how many test accounts genesis funds; default 2.
	Accounts int
	// Log gets one line per step and the processes' output goes to files in Dir; nil
	// discards the lines.
	Log io.Writer
}

// Network is a running local network.
type Network struct {
	ChainID string
	RPC     string   // the CometBFT RPC endpoint, http://127.0.0.1:port
	Keys    []string // hex private keys of the funded test accounts
	Addrs   []string // their 0x addresses
	SP      []string // the storage providers' endpoints
	Dir     string

	bin     string
	log     io.Writer
	ownDir  bool
	mu      sync.Mutex
	procs   []*proc
	stopped bool
}

// Start brings a network up and returns once it can take uploads: the chain is past its
// upgrade heights and every storage provider answers and has caught up with the chain.
// On error everything started is stopped.
func Start(ctx context.Context, opts Options) (n *Network, err error) {
	if opts.Accounts <= 0 {
		opts.Accounts = 2
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	bin, err := binDir(ctx, opts.BinDir, opts.Log)
	if err != nil {
		return nil, err
	}
	n = &Network{ChainID: ChainID, bin: bin, log: opts.Log, Dir: opts.Dir}
	if n.Dir == "" {
		if n.Dir, err = os.MkdirTemp("", "gata-localnet-"); err != nil {
			return nil, fmt.Errorf("make network folder: %w", err)
		}
		n.ownDir = true
	}
	defer func() {
		if err != nil {
			n.Stop()
			n = nil
		}
	}()
	start := time.Now()
	ports, err := freePorts(6 + 3*SPs)
	if err != nil {
		return n, err
	}
	cp := chainPorts{rpc: ports[0], p2p: ports[1], grpc: ports[2], abci: ports[3]}
	dbPort := ports[4]
	n.RPC = fmt.Sprintf("http://127.0.0.1:%d", cp.rpc)
	sps := make([]spPorts, SPs)
	for i := range sps {
		sps[i] = spPorts{gateway: ports[6+3*i], grpc: ports[7+3*i], probe: ports[8+3*i]}
		n.SP = append(n.SP, fmt.Sprintf("http://127.0.0.1:%d", sps[i].gateway))
	}

	db, err := n.startMariaDB(ctx, dbPort)
	if err != nil {
		return n, err
	}
	n.logf("mariadb up on 127.0.0.1:%d (%s)", dbPort, since(start))

	keys, err := n.genesis(ctx, cp, sps, opts.Accounts)
	if err != nil {
		return n, err
	}
	n.logf("genesis written (%s)", since(start))
	if err := n.startChain(ctx, cp); err != nil {
		return n, err
	}
	n.logf("chain at height %d on %s (%s)", upgradeHeight+1, n.RPC, since(start))
	for i := range sps {
		if err := n.startSP(ctx, i, sps[i], keys.sp[i], db, cp); err != nil {
			return n, err
		}
	}
	if err := n.waitSPsSynced(ctx, sps); err != nil {
		return n, err
	}
	n.logf("%d storage providers in service (%s)", SPs, since(start))
	return n, nil
}

func since(t time.Time) string { return time.Since(t).Round(100 * time.Millisecond).String() }

func (n *Network) logf(format string, a ...any) {
	fmt.Fprintf(n.log, "localnet: "+format+"\n", a...)
}

// binDir finds gnfd and gnfd-sp.
func binDir(ctx context.Context, dir string, log io.Writer) (string, error) {
	if dir == "" {
		dir = os.Getenv("GATA_LOCALNET_BIN")
	}
	if dir == "" {
		_, file, _, ok := runtime.Caller(0)
		if !ok {
			return "", fmt.Errorf("find tools/build.sh: set GATA_LOCALNET_BIN")
		}
		script := filepath.Join(filepath.Dir(file), "tools", "build.sh")
		cmd := exec.CommandContext(ctx, "bash", script)
		cmd.Stderr = log
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("build the local network's binaries (%s): %w", script, err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		dir = lines[len(lines)-1]
	}
	for _, b := range []string{"gnfd", "gnfd-sp"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", fmt.Errorf("local network binary: %w (run storage/greenfield/localnet/tools/build.sh)", err)
		}
	}
	return dir, nil
}

// freePorts reserves n distinct ports on 127.0.0.1 by listening and closing again.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// proc is a process the network started.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	logf *os.File
}

// spawn starts a long-running process with its output in Dir/logs/name.log.
func (n *Network) spawn(name, dir string, args ...string) (*proc, error) {
	if err := os.MkdirAll(filepath.Join(n.Dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	lf, err := os.Create(filepath.Join(n.Dir, "logs", name+".log"))
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = lf, lf
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), logf: lf}
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	n.mu.Lock()
	n.procs = append(n.procs, p)
	n.mu.Unlock()
	return p, nil
}

// exited returns an error when p has exited (with the tail of its log).
func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, tail(p.logf.Name(), 2000))
	default:
		return nil
	}
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Stop stops every process by its PID (SIGTERM, then SIGKILL after 3 s: everything
// lives in a folder that goes away), all at once, and removes the folder Start made. It
// is safe to call more than once.
func (n *Network) Stop() error {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return nil
	}
	n.stopped = true
	procs := n.procs
	n.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		if p.exited() != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.cmd.Process.Signal(terminate)
			select {
			case <-p.done:
			case <-time.After(3 * time.Second):
				p.cmd.Process.Kill()
				<-p.done
			}
		}()
	}
	wg.Wait()
	if n.ownDir {
		return os.RemoveAll(n.Dir)
	}
	return nil
}

// run runs a short command and returns its stdout.
func (n *Network) run(ctx context.Context, stdin string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = n.Dir
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", filepath.Base(args[0]), strings.Join(args[1:min(len(args), 3)], " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// poll calls f every interval until it returns true or an error, or until timeout.
func poll(ctx context.Context, timeout, interval time.Duration, what string, f func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		ok, err := f()
		if ok {
			return nil
		}
		if err != nil {
			var fatal fatalError
			if errors.As(err, &fatal) {
				return fmt.Errorf("%s: %w", what, fatal.err)
			}
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%s: %w (last: %v)", what, ctx.Err(), last)
			}
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(interval):
		}
	}
}

// fatalError stops a poll at once.
type fatalError struct{ err error }

func (e fatalError) Error() string { return e.err.Error() }

func getJSON(ctx context.Context, url string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// Height is the chain's latest block height.
func (n *Network) Height(ctx context.Context) (int64, error) {
	var st struct {
		Result struct {
			SyncInfo struct {
				LatestBlockHeight string `json:"latest_block_height"`
			} `json:"sync_info"`
		} `json:"result"`
	}
	if err := getJSON(ctx, n.RPC+"/status", &st); err != nil {
		return 0, err
	}
	return strconv.ParseInt(st.Result.SyncInfo.LatestBlockHeight, 10, 64)
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return strconv.Itoa(os.Getuid())
}

// Logs returns the last n bytes of every process's log, for a failing test to show.
func (n *Network) Logs(max int) string {
	n.mu.Lock()
	procs := n.procs
	n.mu.Unlock()
	var b strings.Builder
	for _, p := range procs {
		fmt.Fprintf(&b, "==> %s <==\n%s\n", p.name, tail(p.logf.Name(), max))
		if own := filepath.Join(n.Dir, p.name, "gnfd-sp.log"); strings.HasPrefix(p.name, "sp") {
			fmt.Fprintf(&b, "==> %s <==\n%s\n", own, tail(own, max))
		}
	}
	return b.String()
}
