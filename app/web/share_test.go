package web

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/dva/dvatest"
)

// TestShareSection: the Share page's form and status, a bad worker request refused, then
// a pool run by this app's core with one worker started through the API and one more in
// another core: the status partial shows the verified run, both workers' credits, and
// stopping the worker ends its job.
func TestShareSection(t *testing.T) {
	_, ts, c := serveCore(t, newValidateCore(t, nil), Options{})
	url := ts.URL

	r := call(t, "GET", url+"/ui/section/share", "", withKey(nil))
	if r.status != 200 || !strings.Contains(r.body, `data-testid="share-form"`) || !strings.Contains(r.body, `id="share-status"`) {
		t.Fatalf("share section = %d %s", r.status, r.body)
	}
	r = call(t, "GET", url+"/ui/share/status", "", withKey(nil))
	if !strings.Contains(r.body, `data-testid="share-idle"`) || !strings.Contains(r.body, `data-testid="share-no-pool"`) {
		t.Errorf("status before sharing = %s", r.body)
	}
	for _, body := range []string{`{}`, `{"pool":"127.0.0.1:4222","schedule":"22-07"}`, `{"pool":"x","bogus":1}`, `{"pool":"127.0.0.1:4222","gpu_list":"0, one"}`} {
		if r := call(t, "POST", url+"/api/share/worker", body, withKey(nil)); r.status != 400 {
			t.Errorf("POST /api/share/worker %s = %d %s, want 400", body, r.status, r.body)
		}
	}
	if r := call(t, "DELETE", url+"/api/share/worker", "", withKey(nil)); r.status != 404 {
		t.Errorf("DELETE with no worker = %d, want 404", r.status)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		_, err := c.RunPool(ctx, core.PoolRequest{Sources: []string{photoFolder(t, 12)}, Model: dvatest.ClipDir(t), Out: t.TempDir(),
			Listen: "127.0.0.1:0", JobSize: 4, CanarySet: 2, Canaries: 1, AckWait: 5 * time.Second}, func(u string) { ready <- u }, nil)
		done <- err
	}()
	poolURL := <-ready
	inv, err := c.PoolInvite(ctx, "web", poolURL)
	if err != nil {
		t.Fatal(err)
	}
	r = call(t, "POST", url+"/api/share/worker", `{"pool":"`+inv.URL+`","max_temp_c":80}`, withKey(nil))
	if r.status != 202 {
		t.Fatalf("start sharing = %d %s", r.status, r.body)
	}
	if r := call(t, "POST", url+"/api/share/worker", `{"pool":"`+inv.URL+`"}`, withKey(nil)); r.status != 409 {
		t.Errorf("a second worker = %d, want 409", r.status)
	}
	other := newValidateCore(t, nil)
	inv2, _ := c.PoolInvite(ctx, "other", poolURL)
	go other.RunWorker(ctx, core.WorkerRequest{Pool: inv2.URL}, nil, nil)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RunPool: %v", err)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("the pool did not finish")
	}
	// The pool's last word on the worker's credit comes a moment after the run ends.
	var st shareState
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st = shareState{}
		call(t, "GET", url+"/api/share", "", withKey(nil)).json(t, &st)
		if c := st.Worker.Stats.Credits; c != nil && c.Pending == 0 || time.Now().After(deadline) {
			break
		}
	}
	if !st.Worker.Running || st.Pool == nil || st.Pool.Counts.Verified != st.Pool.Counts.Groups || len(st.Pool.Credits) != 2 {
		t.Fatalf("GET /api/share = %+v", st)
	}
	r = call(t, "GET", url+"/ui/share/status", "", withKey(nil))
	for _, want := range []string{`data-testid="share-address"`, st.Worker.Stats.Address, `data-testid="share-credits"`, st.Pool.Credits[0].Worker,
		"groups verified", `data-testid="share-throughput"`, `data-testid="share-earned"`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("status partial lacks %q:\n%s", want, r.body)
		}
	}
	if r := call(t, "DELETE", url+"/api/share/worker", "", withKey(nil)); r.status != 204 {
		t.Errorf("stop sharing = %d %s", r.status, r.body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for c.ShareState().Running && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if c.ShareState().Running {
		t.Error("the worker still runs after stop")
	}
}
