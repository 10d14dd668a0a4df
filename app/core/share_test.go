package core

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/gata-contrib/gata/agent"
	"github.com/gata-contrib/gata/dva/dvatest"
	"github.com/gata-contrib/gata/storage"
)

// TestPoolAndWorkersInProcess runs a pool core and two worker cores (each with its own
// data folder) over a photo folder with one corrupt image: the pool's export has every
// item once, the corrupt one failed as corrupt by agreement, and both workers' credit is
// confirmed in PoolState.
func TestPoolAndWorkersInProcess(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 40
	photos := photoFolder(t, n)
	model := dvatest.ClipDir(t)
	pc, _ := newTestCore(t)
	withValidate(t, pc, nil)
	out := filepath.Join(t.TempDir(), "out")
	urls := make(chan string, 1)
	type ended struct {
		res PoolResult
		err error
	}
	done := make(chan ended, 1)
	go func() {
		res, err := pc.RunPool(ctx, PoolRequest{Sources: []string{photos}, Model: model, Out: out, Listen: "127.0.0.1:0",
			JobSize: 8, Canaries: 2, CanarySet: 4, AckWait: 5 * time.Second}, func(u string) { urls <- u }, nil)
		done <- ended{res, err}
	}()
	var url string
	select {
	case url = <-urls:
	case e := <-done:
		t.Fatalf("RunPool ended before it was ready: %v", e.err)
	}
	var wg sync.WaitGroup
	var addrs []string
	for i := range 2 {
		wc, _ := newTestCore(t)
		withValidate(t, wc, nil)
		inv, err := pc.PoolInvite(ctx, "", url)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(inv.URL, inv.Token+"@") {
			t.Fatalf("invite URL %q does not carry its credential", inv.URL)
		}
		k, _ := crypto.GenerateKey()
		key := hex.EncodeToString(crypto.FromECDSA(k))
		want := crypto.PubkeyToAddress(k.PublicKey).Hex()
		addrs = append(addrs, want)
		req := WorkerRequest{Pool: inv.URL, PrivateKeyEnv: "KEY", Getenv: func(string) string { return key }, BatchSize: 3 + i}
		wg.Go(func() {
			_, err := wc.RunWorker(ctx, req, func(addr, from string) {
				if addr != want || from != "$KEY" {
					t.Errorf("worker started as %s from %s, want %s from $KEY", addr, from, want)
				}
			}, nil)
			if err != nil {
				t.Errorf("RunWorker: %v", err)
			}
		})
	}
	var e ended
	select {
	case e = <-done:
	case <-time.After(4 * time.Minute):
		t.Fatal("the pool did not finish in 4 minutes")
	}
	cancel()
	wg.Wait()
	if e.err != nil {
		t.Fatalf("RunPool: %v", e.err)
	}
	s := e.res.Summary
	if s.Total != n+1 || s.Scored != n || s.Failed["corrupt"] != 1 {
		t.Errorf("summary total %d scored %d failed %v; want %d, %d, corrupt 1", s.Total, s.Scored, s.Failed, n+1, n)
	}
	if _, err := os.Stat(filepath.Join(out, "scores.parquet")); err != nil {
		t.Errorf("no scores.parquet: %v", err)
	}
	st, err := pc.PoolState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Run.State != storage.RunDone || st.Counts.Verified != st.Counts.Groups || st.Counts.Pending != 0 {
		t.Errorf("PoolState run %s, counts %+v", st.Run.State, st.Counts)
	}
	earned := map[string]int64{}
	for _, c := range st.Credits {
		earned[strings.ToLower(c.Worker)] = c.Confirmed
	}
	for _, a := range addrs {
		if earned[strings.ToLower(a)] == 0 {
			t.Errorf("worker %s earned nothing: %+v", a, st.Credits)
		}
	}
}

// TestWorkerKey: without $--private-key-env and without a wallet, a worker key is made
// once and kept in the data folder (0600); the environment variable wins when named.
func TestWorkerKey(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCore(t)
	k1, from1, err := c.workerKey(ctx, WorkerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	k2, from2, err := c.workerKey(ctx, WorkerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equal(k2) || from1 != from2 {
		t.Errorf("the kept worker key changed: %s then %s", from1, from2)
	}
	st, err := os.Stat(filepath.Join(c.opts.DataDir, "share", "worker.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("worker.key: %v, mode %v", err, st.Mode())
	}
	k, _ := crypto.GenerateKey()
	hexKey := "0x" + hex.EncodeToString(crypto.FromECDSA(k))
	got, from, err := c.workerKey(ctx, WorkerRequest{PrivateKeyEnv: "K", Getenv: func(string) string { return hexKey }})
	if err != nil || !got.Equal(k) || from != "$K" {
		t.Errorf("workerKey from $K = %v, %v", from, err)
	}
	for _, bad := range []string{"", "zz"} {
		_, _, err := c.workerKey(ctx, WorkerRequest{PrivateKeyEnv: "K", Getenv: func(string) string { return bad }})
		if !errors.Is(err, ErrBadRun) {
			t.Errorf("workerKey from $K = %q: %v, want ErrBadRun", bad, err)
		}
	}
}

func TestShareRefusesBadRequests(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCore(t)
	withValidate(t, c, nil)
	for _, req := range []WorkerRequest{
		{},
		{Pool: "not a pool"},
		{Pool: "127.0.0.1:4222", Schedule: "22-07"},
		{Pool: "127.0.0.1:4222", PauseFor: "2d"},
		{Pool: "127.0.0.1:4222", MaxTempC: -1},
		{Pool: "127.0.0.1:4222", PauseWhileActive: true, ActiveGrace: -time.Minute},
	} {
		if _, err := c.RunWorker(ctx, req, nil, nil); !errors.Is(err, ErrBadRun) {
			t.Errorf("RunWorker(%+v) = %v, want ErrBadRun", req, err)
		}
	}
	for _, req := range []PoolRequest{{}, {Sources: []string{"/no/such/folder"}}, {Sources: []string{t.TempDir()}, KeepTop: 2}} {
		if _, err := c.RunPool(ctx, req, nil, nil); !errors.Is(err, ErrBadRun) {
			t.Errorf("RunPool(%+v) = %v, want ErrBadRun", req, err)
		}
	}
	if _, err := c.PoolState(ctx); !errors.Is(err, ErrNoPool) {
		t.Errorf("PoolState before any pool = %v, want ErrNoPool", err)
	}
	inv, err := c.PoolInvite(ctx, "bob", "")
	if err != nil || inv.Name != "bob" || !strings.HasPrefix(inv.URL, "nats://"+inv.Token+"@127.0.0.1:4222") {
		t.Errorf("PoolInvite = %+v, %v", inv, err)
	}
}

func TestWorkerRequestPreferences(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		req   WorkerRequest
		check func(p agent.Preferences) bool
	}{
		{"defaults: idle GPU, not on battery, not under a fullscreen program, input ignored", WorkerRequest{},
			func(p agent.Preferences) bool {
				return p.RequireIdle && p.SuspendOnBattery && p.SuspendFullscreen && !p.SuspendWhenActive
			}},
		{"pause while active with its grace", WorkerRequest{PauseWhileActive: true, ActiveGrace: 5 * time.Minute},
			func(p agent.Preferences) bool { return p.SuspendWhenActive && p.ActiveGrace == 5*time.Minute }},
		{"fullscreen allowed", WorkerRequest{AllowFullscreen: true}, func(p agent.Preferences) bool { return !p.SuspendFullscreen }},
		{"busy GPU and battery allowed", WorkerRequest{AllowBusyGPU: true, RunOnBattery: true},
			func(p agent.Preferences) bool { return !p.RequireIdle && !p.SuspendOnBattery }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.req.Preferences(now)
			if err != nil || !tt.check(p) {
				t.Errorf("Preferences() = %+v, %v", p, err)
			}
		})
	}
}

func TestLimitsInWords(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		req  WorkerRequest
		want []string
	}{
		{"defaults", WorkerRequest{}, []string{"only while no other program uses the GPU, after it was free for 30s",
			"not on battery", "not while a fullscreen program is in front"}},
		{"everything", WorkerRequest{GPUs: []int{0, 2}, MaxTempC: 80, MaxPowerW: 200, Schedule: "22:00-07:00", AllowBusyGPU: true,
			RunOnBattery: true, PauseWhileActive: true, AllowFullscreen: true},
			[]string{"GPUs 0, 2 only", "pauses a GPU at 80 °C", "keeps a GPU under 200 W", "only 22:00-07:00",
				"not while you use the computer, until 3m0s after the last input"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.req.Preferences(now)
			if err != nil {
				t.Fatal(err)
			}
			// The governor fills in the grace periods, as it does for the running worker.
			got := Limits(agent.NewGovernor(agent.GovernorOptions{Preferences: p}).Preferences())
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("Limits = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseGPUs(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{"", "[]", ""},
		{"0", "[0]", ""},
		{" 0, 2 ,", "[0 2]", ""},
		{"1,,3", "[1 3]", ""},
		{"one", "", `"one" is not a GPU index`},
		{"0,-1", "", `"-1" is not a GPU index`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseGPUs(tt.in)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Errorf("ParseGPUs(%q) = %v, %v; want the error %s", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != tt.want {
				t.Errorf("ParseGPUs(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
			}
		})
	}
}
