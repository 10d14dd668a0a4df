//go:build e2e

package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/parquet-go/parquet-go"

	"github.com/gata-contrib/gata/dva/dvatest"
	"github.com/gata-contrib/gata/dva/pipeline"
	"github.com/gata-contrib/gata/storage"
)

// proc is a gata process whose stdout lines are watched.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []string
	stderr bytes.Buffer
	seen   chan string // every stdout line
	exited chan error
}

func startProc(t *testing.T, name, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, cmd: exec.Command(bin, args...), seen: make(chan string, 4096), exited: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = &syncWriter{mu: &p.mu, w: &p.stderr}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
			select {
			case p.seen <- sc.Text():
			default:
			}
		}
	}()
	go func() {
		<-done
		p.exited <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			p.mu.Lock()
			t.Logf("%s stderr (last 3000 bytes):\n%s", p.name, tail(p.stderr.String(), 3000))
			p.mu.Unlock()
		}
	})
	return p
}

type syncWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// waitLine waits for a stdout line with the prefix and returns the rest of it.
func (p *proc) waitLine(prefix string, d time.Duration) string {
	p.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case l := <-p.seen:
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return rest
			}
		case err := <-p.exited:
			p.exited <- err
			p.t.Fatalf("%s exited (%v) before printing %q; stderr:\n%s", p.name, err, prefix, tail(p.stderr.String(), 3000))
		case <-deadline:
			p.t.Fatalf("%s printed no %q in %s", p.name, prefix, d)
		}
	}
}

// wait waits for the process to exit.
func (p *proc) wait(d time.Duration) error {
	p.t.Helper()
	select {
	case err := <-p.exited:
		p.exited <- err
		return err
	case <-time.After(d):
		p.t.Fatalf("%s still running after %s", p.name, d)
		return nil
	}
}

// shareRig is a pool process and its worker processes.
type shareRig struct {
	t       *testing.T
	bin     string
	model   string
	shard   string
	poolDir string
	out     string
	pool    *proc
	url     string
	workers []*proc
	keys    []string // worker addresses
}

func newShareRig(t *testing.T, n int) *shareRig {
	bin := binary(t)
	return &shareRig{t: t, bin: bin, model: dvatest.ClipDir(t), shard: writeShard(t, n), poolDir: t.TempDir(),
		out: filepath.Join(t.TempDir(), "pool-out")}
}

// startPool starts `gata pool` (again, after a stop, on the same address when there is one).
func (r *shareRig) startPool(extra ...string) {
	r.t.Helper()
	listen := "127.0.0.1:0"
	if r.url != "" {
		listen = strings.TrimPrefix(r.url, "nats://")
	}
	args := append([]string{"pool", "--data-dir", r.poolDir, "--dataset", r.shard, "--model", r.model, "--listen", listen,
		"--out", r.out, "--job-size", "12", "--canary-set", "6", "--canaries", "2", "--ack-wait", "4s", "--keep-top", "0.5"}, extra...)
	r.pool = startProc(r.t, "pool", r.bin, nil, args...)
	r.url = strings.TrimSpace(r.pool.waitLine("Pool: ", 60*time.Second))
}

// invite issues a credential with `gata pool invite` and returns the URL with it.
func (r *shareRig) invite(name string) string {
	r.t.Helper()
	out, err := exec.Command(r.bin, "pool", "invite", "--data-dir", r.poolDir, "--name", name, "--addr", r.url, "--json").Output()
	if err != nil {
		r.t.Fatalf("gata pool invite: %v", err)
	}
	var inv struct{ URL string }
	if err := json.Unmarshal(out, &inv); err != nil || inv.URL == "" {
		r.t.Fatalf("gata pool invite printed %q", out)
	}
	return inv.URL
}

// startWorker starts a `gata worker` with a key of its own and returns it.
func (r *shareRig) startWorker(i int, extra ...string) *proc {
	r.t.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		r.t.Fatal(err)
	}
	url := r.invite(fmt.Sprintf("worker-%d", i))
	args := append([]string{"worker", "--data-dir", r.t.TempDir(), "--pool", url, "--private-key-env", "GATA_TEST_WORKER_KEY",
		"--batch-size", "4", "--json"}, extra...)
	w := startProc(r.t, fmt.Sprintf("worker %d", i), r.bin, []string{"GATA_TEST_WORKER_KEY=" + hex.EncodeToString(crypto.FromECDSA(k))}, args...)
	r.workers = append(r.workers, w)
	r.keys = append(r.keys, crypto.PubkeyToAddress(k.PublicKey).Hex())
	return w
}

// scoresOf reads scores.parquet: key → score (NaN when not scored) and whether it was kept.
func scoresOf(t *testing.T, path string) (map[string]float64, map[string]bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	reader := parquet.NewReader(f)
	defer reader.Close()
	scores, kept := map[string]float64{}, map[string]bool{}
	buf := make([]parquet.Row, 64)
	for {
		n, err := reader.ReadRows(buf)
		for _, row := range buf[:n] {
			var key string
			score := math.NaN()
			var k bool
			for _, v := range row {
				switch v.Column() {
				case 1:
					key = string(v.ByteArray())
				case 5:
					if !v.IsNull() {
						score = float64(v.Float())
					}
				case 8:
					k = v.Boolean()
				}
			}
			if _, dup := scores[key]; dup {
				t.Fatalf("%s: key %s twice", path, key)
			}
			scores[key], kept[key] = score, k
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
	}
	return scores, kept
}

// checkAgainstLocalRun runs `gata dva run` on the same shard and compares its outputs with
// the pool's: the same items, scores within the pool's tolerance, the same summary counts.
func (r *shareRig) checkAgainstLocalRun(n int) {
	t := r.t
	t.Helper()
	local := filepath.Join(t.TempDir(), "local-out")
	cmd := exec.Command(r.bin, "dva", "run", r.shard, "--data-dir", t.TempDir(), "--model", r.model, "--out", local, "--keep-top", "0.5")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gata dva run: %v\n%s", err, b)
	}
	ps, pk := scoresOf(t, filepath.Join(r.out, pipeline.ScoresFile))
	ls, lk := scoresOf(t, filepath.Join(local, pipeline.ScoresFile))
	if len(ps) != n || len(ls) != n {
		t.Fatalf("pool output has %d items, local run %d, want %d", len(ps), len(ls), n)
	}
	var sum pipeline.Summary
	b, err := os.ReadFile(filepath.Join(local, pipeline.SummaryFile))
	if err != nil || json.Unmarshal(b, &sum) != nil || sum.Threshold == nil {
		t.Fatalf("local summary.json: %v", err)
	}
	worst := 0.0
	for k, l := range ls {
		p, ok := ps[k]
		if !ok {
			t.Fatalf("item %s missing from the pool's output", k)
		}
		d := math.Abs(p - l)
		if !(d <= 5e-3) {
			t.Errorf("item %s: pool %v, local %v", k, p, l)
		}
		worst = max(worst, d)
		if pk[k] != lk[k] && math.Abs(l-float64(*sum.Threshold)) > 5e-3 {
			t.Errorf("item %s kept %v by the pool, %v by the local run", k, pk[k], lk[k])
		}
	}
	t.Logf("pool vs local run: %d items, largest score difference %.2g", len(ls), worst)
	var psum pipeline.Summary
	b, err = os.ReadFile(filepath.Join(r.out, pipeline.SummaryFile))
	if err != nil || json.Unmarshal(b, &psum) != nil {
		t.Fatalf("pool summary.json: %v", err)
	}
	if psum.Total != sum.Total || psum.Scored != sum.Scored || psum.Kept != sum.Kept || psum.ShardSamples != sum.ShardSamples {
		t.Errorf("pool summary total/scored/kept/shard samples %d/%d/%d/%d, local %d/%d/%d/%d", psum.Total, psum.Scored, psum.Kept,
			psum.ShardSamples, sum.Total, sum.Scored, sum.Kept, sum.ShardSamples)
	}
}

// ledger opens the pool's database (after the pool stopped).
func (r *shareRig) ledger() *storage.Store {
	r.t.Helper()
	s, err := storage.Open(context.Background(), filepath.Join(r.poolDir, storage.DBName))
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { s.Close() })
	return s
}

// checkCredits checks that nothing is left pending, that each worker address named has
// confirmed credit, and that no job's group was credited twice to one worker.
func (r *shareRig) checkCredits(mustEarn ...string) []storage.PoolCredit {
	t := r.t
	t.Helper()
	s := r.ledger()
	credits, err := s.PoolCredits(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]storage.PoolCredit{}
	for _, c := range credits {
		by[strings.ToLower(c.Worker)] = c
		if c.Pending != 0 {
			t.Errorf("worker %s has %d credits still pending", c.Worker, c.Pending)
		}
	}
	for _, a := range mustEarn {
		if by[strings.ToLower(a)].Confirmed == 0 {
			t.Errorf("worker %s earned no confirmed credit: %+v", a, credits)
		}
	}
	var dup int
	if err := s.DB().QueryRow(`SELECT COUNT(*) FROM (SELECT group_id, worker FROM pool_results WHERE state = 'confirmed'
		GROUP BY group_id, worker HAVING COUNT(*) > 1)`).Scan(&dup); err != nil {
		t.Fatal(err)
	}
	if dup != 0 {
		t.Errorf("%d groups credited twice to one worker", dup)
	}
	return credits
}

// TestShareEndToEnd: a pool over a WebDataset shard and three `gata worker` processes on
// the CPU backend. Every item is scored exactly once in the output, every worker's credit
// is confirmed, and the output equals `gata dva run` on the same shard within tolerance.
func TestShareEndToEnd(t *testing.T) {
	const n = 150
	r := newShareRig(t, n)
	r.startPool()
	for i := range 3 {
		r.startWorker(i)
	}
	if err := r.pool.wait(3 * time.Minute); err != nil {
		t.Fatalf("gata pool: %v\n%s", err, tail(r.pool.stderr.String(), 3000))
	}
	r.checkAgainstLocalRun(n)
	credits := r.checkCredits(r.keys...)
	t.Logf("credits: %+v", credits)
	for _, w := range r.workers {
		w.cmd.Process.Signal(syscall.SIGTERM)
	}
}

// event is a line of `gata worker --json`.
type event struct {
	Kind string `json:"kind"`
	Job  string `json:"job"`
}

// waitEvent waits for a worker event of the kind and returns it.
func (p *proc) waitEvent(kind string, d time.Duration) event {
	p.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case l := <-p.seen:
			var e event
			if json.Unmarshal([]byte(l), &e) == nil && e.Kind == kind {
				return e
			}
		case err := <-p.exited:
			p.exited <- err
			p.t.Fatalf("%s exited (%v) before a %q event", p.name, err, kind)
		case <-deadline:
			p.t.Fatalf("%s had no %q event in %s", p.name, kind, d)
		}
	}
}

// checkGroups checks the ledger's groups: every item of the shard in exactly one group or
// the canary set, every group verified.
func (r *shareRig) checkGroups(n, canaries int) {
	t := r.t
	t.Helper()
	s := r.ledger()
	runs, err := s.Runs(context.Background(), 10)
	if err != nil || len(runs) != 1 {
		t.Fatalf("pool runs: %v, %v (want one)", runs, err)
	}
	groups, err := s.PoolGroups(context.Background(), runs[0].ID, "")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, g := range groups {
		if g.State != storage.GroupVerified {
			t.Errorf("group %s is %s", g.ID, g.State)
		}
		var items struct {
			Items []struct{ Key string } `json:"items"`
		}
		if err := json.Unmarshal(g.Items, &items); err != nil {
			t.Fatal(err)
		}
		for _, it := range items.Items {
			if other, dup := seen[it.Key]; dup {
				t.Errorf("item %s in groups %s and %s", it.Key, other, g.ID)
			}
			seen[it.Key] = g.ID
		}
	}
	if len(seen)+canaries != n {
		t.Errorf("%d items in groups + %d canaries, want %d", len(seen), canaries, n)
	}
}

// TestShareWorkerKilledMidJob kills a worker with SIGKILL while it scores a job: the job
// goes to another worker after the ack wait, every item is scored once, and the killed
// worker is credited nothing for it.
func TestShareWorkerKilledMidJob(t *testing.T) {
	const n = 126
	r := newShareRig(t, n)
	r.startPool("--job-size", "40")
	victim := r.startWorker(0, "--batch-size", "1")
	e := victim.waitEvent("batch", 90*time.Second)
	victim.cmd.Process.Signal(syscall.SIGKILL)
	victim.wait(10 * time.Second)
	t.Logf("killed worker 0 in job %s", e.Job)
	for i := 1; i < 3; i++ {
		r.startWorker(i)
	}
	if err := r.pool.wait(3 * time.Minute); err != nil {
		t.Fatalf("gata pool: %v", err)
	}
	r.checkAgainstLocalRun(n)
	r.checkGroups(n, 6)
	r.checkCredits(r.keys[1:]...)
	s := r.ledger()
	var byVictim, forJob int
	s.DB().QueryRow(`SELECT COUNT(*) FROM pool_results WHERE lower(worker) = lower(?)`, r.keys[0]).Scan(&byVictim)
	s.DB().QueryRow(`SELECT COUNT(*) FROM pool_results WHERE job_id = ? AND state = 'confirmed'`, e.Job).Scan(&forJob)
	if byVictim != 0 {
		t.Errorf("the killed worker has %d results; it died in its first job", byVictim)
	}
	if forJob != 1 {
		t.Errorf("job %s has %d confirmed results, want 1 (redelivered to another worker)", e.Job, forJob)
	}
}

// TestSharePoolRestarted kills the pool with SIGKILL once some groups are verified and
// starts it again on the same data folder and address: the workers reconnect by
// themselves, and nothing is lost or duplicated.
func TestSharePoolRestarted(t *testing.T) {
	const n = 150
	r := newShareRig(t, n)
	r.startPool()
	for i := range 2 {
		r.startWorker(i, "--batch-size", "1")
	}
	// Wait until some but not all groups are verified.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := exec.Command(r.bin, "pool", "status", "--data-dir", r.poolDir, "--json").Output()
		var st struct {
			Counts storage.PoolCounts `json:"counts"`
		}
		if err == nil && json.Unmarshal(out, &st) == nil && st.Counts.Verified >= 2 {
			if st.Counts.ReadAll && st.Counts.Verified == st.Counts.Groups {
				t.Fatal("the run finished before the pool could be stopped")
			}
			t.Logf("stopping the pool at %+v", st.Counts)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no groups verified in 2 minutes (%v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.pool.cmd.Process.Signal(syscall.SIGKILL)
	r.pool.wait(10 * time.Second)
	r.startPool()
	if err := r.pool.wait(3 * time.Minute); err != nil {
		t.Fatalf("gata pool after the restart: %v", err)
	}
	r.checkAgainstLocalRun(n)
	r.checkGroups(n, 6)
	r.checkCredits(r.keys...)
}

// proxy forwards TCP connections to a target until cut, so a test can take a worker's
// network away and give it back.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	down   bool
}

func startProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.cut(false) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			down := p.down
			p.mu.Unlock()
			if down {
				c.Close()
				continue
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	return p
}

// cut closes every connection; down refuses new ones until cut(false).
func (p *proxy) cut(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestShareWorkerReconnects takes a worker's connection away mid-run for two seconds: it
// reconnects by itself and goes on, and its results are not lost.
func TestShareWorkerReconnects(t *testing.T) {
	const n = 150
	r := newShareRig(t, n)
	r.startPool()
	px := startProxy(t, strings.TrimPrefix(r.url, "nats://"))
	url := strings.Replace(r.invite("behind-proxy"), strings.TrimPrefix(r.url, "nats://"), px.ln.Addr().String(), 1)
	k, _ := crypto.GenerateKey()
	w := startProc(t, "worker behind the proxy", r.bin, []string{"GATA_TEST_WORKER_KEY=" + hex.EncodeToString(crypto.FromECDSA(k))},
		"worker", "--data-dir", t.TempDir(), "--pool", url, "--private-key-env", "GATA_TEST_WORKER_KEY", "--batch-size", "1", "--json")
	addr := crypto.PubkeyToAddress(k.PublicKey).Hex()
	w.waitEvent("done", 90*time.Second)
	px.cut(true)
	w.waitEvent("disconnected", 30*time.Second)
	time.Sleep(2 * time.Second)
	px.cut(false)
	w.waitEvent("connected", 30*time.Second)
	w.waitEvent("done", 60*time.Second)
	r.startWorker(1)
	if err := r.pool.wait(3 * time.Minute); err != nil {
		t.Fatalf("gata pool: %v", err)
	}
	r.checkAgainstLocalRun(n)
	r.checkGroups(n, 6)
	r.checkCredits(addr, r.keys[0])
}
