//go:build e2e

package app

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binary returns the gata binary to test: $GATA_BIN, or one built into a temp folder.
func binary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("GATA_BIN"); b != "" {
		return b
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	out := filepath.Join(t.TempDir(), "gata")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build gata: %v\n%s", err, b)
	}
	return out
}

type served struct {
	cmd    *exec.Cmd
	login  string // URL with #key=
	base   *url.URL
	key    string
	stderr *strings.Builder
}

// startServe runs `gata serve` on a free loopback port and waits for its URL line.
func startServe(t *testing.T, bin, dataDir string) *served {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--data-dir", dataDir, "--addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &served{cmd: cmd, stderr: &strings.Builder{}}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "Web UI: "); ok {
				lines <- u
			}
		}
		close(lines)
	}()
	select {
	case u, ok := <-lines:
		if !ok {
			t.Fatalf("gata serve exited without printing its URL; stderr:\n%s", s.stderr.String())
		}
		s.login = u
	case <-time.After(60 * time.Second):
		t.Fatalf("gata serve printed no URL in 60 s; stderr:\n%s", s.stderr.String())
	}
	base, frag, ok := strings.Cut(s.login, "#key=")
	if !ok || len(frag) < 32 {
		t.Fatalf("login URL %q has no #key=", s.login)
	}
	s.key = frag
	s.base, err = url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *served) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("gata serve after SIGTERM: %v; stderr:\n%s", err, s.stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Errorf("gata serve did not stop within 20 s of SIGTERM")
		s.cmd.Process.Kill()
	}
}

func TestServeSecurity(t *testing.T) {
	bin := binary(t)
	s := startServe(t, bin, t.TempDir())
	api := func(p string) string { return s.base.JoinPath(p).String() }

	do := func(t *testing.T, c *http.Client, method, u string, hdr map[string]string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			if k == "Host" {
				req.Host = v
			} else {
				req.Header.Set(k, v)
			}
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, u, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	plain := &http.Client{Timeout: 10 * time.Second}
	checks := []struct {
		name   string
		method string
		path   string
		hdr    map[string]string
		want   int
	}{
		{"key in X-API-Key", "GET", "/api/info", map[string]string{"X-API-Key": s.key}, 200},
		{"key as bearer token", "GET", "/api/settings", map[string]string{"Authorization": "Bearer " + s.key}, 200},
		{"no key", "GET", "/api/info", nil, 401},
		{"wrong key", "GET", "/api/info", map[string]string{"X-API-Key": strings.Repeat("0", len(s.key))}, 401},
		{"wrong Host (DNS rebinding)", "GET", "/api/info", map[string]string{"X-API-Key": s.key, "Host": "attacker.example:" + s.base.Port()}, 403},
		{"cross-origin POST", "POST", "/api/jobs/check", map[string]string{"X-API-Key": s.key, "Origin": "http://attacker.example", "Sec-Fetch-Site": "cross-site"}, 403},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			resp, body := do(t, plain, c.method, api(c.path), c.hdr)
			if resp.StatusCode != c.want {
				t.Errorf("%s %s = %d %s, want %d", c.method, c.path, resp.StatusCode, body, c.want)
			}
			if resp.Header.Get("X-Frame-Options") != "DENY" {
				t.Errorf("X-Frame-Options = %q, want DENY", resp.Header.Get("X-Frame-Options"))
			}
		})
	}

	t.Run("browser session needs the CSRF token", func(t *testing.T) {
		jar, _ := cookiejar.New(nil)
		browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
		resp, body := do(t, browser, "POST", api("/api/session"), map[string]string{"X-API-Key": s.key})
		if resp.StatusCode != 200 {
			t.Fatalf("POST /api/session = %d %s", resp.StatusCode, body)
		}
		var sess map[string]any
		if err := json.Unmarshal([]byte(body), &sess); err != nil {
			t.Fatalf("session response %q: %v", body, err)
		}
		var csrf string
		for k, v := range sess {
			if strings.Contains(strings.ToLower(k), "csrf") {
				csrf, _ = v.(string)
			}
		}
		if csrf == "" {
			t.Fatalf("session response %q has no CSRF token", body)
		}
		if resp, body := do(t, browser, "GET", api("/api/info"), nil); resp.StatusCode != 200 {
			t.Errorf("GET with the session cookie = %d %s, want 200", resp.StatusCode, body)
		}
		if resp, body := do(t, browser, "POST", api("/api/jobs/check"), nil); resp.StatusCode != 403 {
			t.Errorf("POST without CSRF token = %d %s, want 403", resp.StatusCode, body)
		}
		if resp, body := do(t, browser, "POST", api("/api/jobs/check"), map[string]string{"X-CSRF-Token": "forged"}); resp.StatusCode != 403 {
			t.Errorf("POST with a bad CSRF token = %d %s, want 403", resp.StatusCode, body)
		}
		if resp, body := do(t, browser, "POST", api("/api/jobs/check"), map[string]string{"X-CSRF-Token": csrf}); resp.StatusCode/100 != 2 {
			t.Errorf("POST with the CSRF token = %d %s, want 2xx", resp.StatusCode, body)
		}
	})

	t.Run("API responses are not cached", func(t *testing.T) {
		resp, _ := do(t, plain, "GET", api("/api/info"), map[string]string{"X-API-Key": s.key})
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
			t.Errorf("Cache-Control = %q, want no-store", cc)
		}
	})

	s.stop(t)
}

func TestServeRefusesNonLoopbackWithoutPasswordAndTLS(t *testing.T) {
	bin := binary(t)
	cmd := exec.Command(bin, "serve", "--data-dir", t.TempDir(), "--addr", "0.0.0.0:0")
	cmd.Env = append(os.Environ(), "GATA_WEB_PASSWORD=")
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() == 0 {
		t.Fatalf("gata serve --addr 0.0.0.0:0 = %v, want a non-zero exit; output:\n%s", err, out)
	}
	last := strings.TrimSpace(string(out))
	if i := strings.LastIndex(last, "\n"); i >= 0 {
		last = last[i+1:]
	}
	if !strings.HasPrefix(last, "gata: ") || !strings.Contains(last, "password") || !strings.Contains(last, "TLS") {
		t.Errorf("last line = %q, want a one-line error naming the password and TLS", last)
	}
}

func TestServeStopsCleanlyAndKeepsItsKey(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	s1 := startServe(t, bin, dir)
	s1.stop(t)
	s2 := startServe(t, bin, dir)
	defer s2.stop(t)
	if s1.key != s2.key {
		t.Errorf("API key changed across restarts: %q then %q", s1.key, s2.key)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s2.base.JoinPath("/api/info").String(), nil)
	req.Header.Set("X-API-Key", s2.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /api/info after restart = %d", resp.StatusCode)
	}
	if _, err := os.Stat(filepath.Join(dir, "logs", "gata.log")); err != nil {
		t.Errorf("no log file in the data folder: %v", err)
	}
}
