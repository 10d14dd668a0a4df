package web

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math"
	"math/big"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/dva"
	"github.com/gata-contrib/gata/dva/clip"
	"github.com/gata-contrib/gata/dva/cpu"
	"github.com/gata-contrib/gata/dva/dvatest"
	"github.com/gata-contrib/gata/dva/models"
	"github.com/gata-contrib/gata/storage"
)

const testKey = "0123456789abcdef0123456789abcdef0123456789abcdef"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newTestCore builds a core on a real SQLite file and serves its job registry until the test ends.
func newTestCore(t *testing.T) *core.Core {
	t.Helper()
	return newTestCoreWith(t, nil)
}

// newTestCoreWith is newTestCore with options changed by edit (may be nil) before the core is built.
func newTestCoreWith(t *testing.T, edit func(*core.Options)) *core.Core {
	t.Helper()
	dir := t.TempDir()
	st, err := storage.Open(context.Background(), filepath.Join(dir, storage.DBName))
	if err != nil {
		t.Fatal(err)
	}
	opts := core.Options{Version: "test", DataDir: dir, Store: st, LogLevel: new(slog.LevelVar), Logger: quiet}
	if edit != nil {
		edit(&opts)
	}
	c, err := core.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Jobs().Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Jobs.Serve returned %v", err)
		}
		c.Close()
		st.Close()
	})
	return c
}

// newTestServer serves the web UI of a fresh core on an httptest server (127.0.0.1:port).
func newTestServer(t *testing.T, opts Options) (*Server, *httptest.Server, *core.Core) {
	t.Helper()
	return serveCore(t, newTestCore(t), opts)
}

// serveCore serves the web UI of c on an httptest server.
func serveCore(t *testing.T, c *core.Core, opts Options) (*Server, *httptest.Server, *core.Core) {
	t.Helper()
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.APIKey == "" {
		opts.APIKey = testKey
	}
	opts.Logger = quiet
	s, err := New(c, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts, c
}

type reply struct {
	status int
	header http.Header
	body   string
}

func (r reply) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
}

// call sends one request. Header "Host" sets the request's Host; "Cookie" is sent as is.
func call(t *testing.T, method, url, body string, hdr map[string]string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s %s: %v", method, url, err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func withKey(h map[string]string) map[string]string {
	out := map[string]string{"X-API-Key": testKey}
	for k, v := range h {
		out[k] = v
	}
	return out
}

// selfSignedCert writes a certificate and key for 127.0.0.1 into dir.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gata test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestNewChecksOptions(t *testing.T) {
	c := newTestCore(t)
	cert, key := selfSignedCert(t, t.TempDir())
	tests := []struct {
		name    string
		opts    Options
		wantErr string // "" for success
	}{
		{"loopback IPv4", Options{Addr: "127.0.0.1:7800", APIKey: testKey}, ""},
		{"loopback IPv6", Options{Addr: "[::1]:0", APIKey: testKey}, ""},
		{"localhost", Options{Addr: "localhost:0", APIKey: testKey}, ""},
		{"all interfaces without password or TLS", Options{Addr: "0.0.0.0:7800", APIKey: testKey},
			"refusing to listen on 0.0.0.0:7800 without a password and TLS: "},
		{"empty host means all interfaces", Options{Addr: ":7800", APIKey: testKey}, "refusing to listen on :7800 without a password and TLS"},
		{"LAN address with password but no TLS", Options{Addr: "192.168.1.5:7800", APIKey: testKey, Password: "pw"},
			"refusing to listen on 192.168.1.5:7800 without a password and TLS"},
		{"all interfaces with TLS but no password", Options{Addr: "0.0.0.0:7800", APIKey: testKey, TLSCertFile: cert, TLSKeyFile: key},
			"without a password and TLS"},
		{"all interfaces with password and TLS", Options{Addr: "0.0.0.0:7800", APIKey: testKey, Password: "pw", TLSCertFile: cert, TLSKeyFile: key}, ""},
		{"unreadable TLS files", Options{Addr: "0.0.0.0:7800", APIKey: testKey, Password: "pw", TLSCertFile: cert + ".missing", TLSKeyFile: key},
			"load web UI TLS certificate"},
		{"no API key", Options{Addr: "127.0.0.1:0"}, "an API key is required"},
		{"address without port", Options{Addr: "127.0.0.1", APIKey: testKey}, "is not host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(c, tt.opts)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("New(%+v) = %v, want success", tt.opts, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("New(%+v) = %v, want an error containing %q", tt.opts, err, tt.wantErr)
			}
		})
	}
}

func TestSecurityRules(t *testing.T) {
	_, ts, _ := newTestServer(t, Options{})
	port := ts.URL[strings.LastIndex(ts.URL, ":")+1:]
	tests := []struct {
		name   string
		method string
		path   string
		hdr    map[string]string
		want   int
	}{
		{"X-API-Key", "GET", "/api/info", withKey(nil), 200},
		{"bearer token", "GET", "/api/settings", map[string]string{"Authorization": "Bearer " + testKey}, 200},
		{"no key", "GET", "/api/info", nil, 401},
		{"no key for a partial", "GET", "/ui/nav", nil, 401},
		{"no key for events", "GET", "/api/events", nil, 401},
		{"wrong key", "GET", "/api/info", map[string]string{"X-API-Key": strings.Repeat("0", len(testKey))}, 401},
		{"wrong key of another length", "GET", "/api/info", map[string]string{"X-API-Key": "short"}, 401},
		{"wrong bearer token", "GET", "/api/info", map[string]string{"Authorization": "Bearer nope"}, 401},
		{"key as basic auth is not accepted", "GET", "/api/info", map[string]string{"Authorization": "Basic " + testKey}, 401},
		{"localhost Host", "GET", "/api/info", withKey(map[string]string{"Host": "localhost:" + port}), 200},
		{"IPv6 loopback Host", "GET", "/api/info", withKey(map[string]string{"Host": "[::1]:" + port}), 200},
		{"rebound DNS name", "GET", "/api/info", withKey(map[string]string{"Host": "attacker.example:" + port}), 403},
		{"rebound DNS name, static page", "GET", "/", map[string]string{"Host": "attacker.example"}, 403},
		{"Host that only starts like localhost", "GET", "/api/info", withKey(map[string]string{"Host": "localhost.attacker.example"}), 403},
		{"cross-site POST with the key", "POST", "/api/jobs/check", withKey(map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://attacker.example"}), 403},
		{"cross-origin POST, Origin only", "POST", "/api/jobs/check", withKey(map[string]string{"Origin": "http://attacker.example"}), 403},
		{"cross-site PATCH", "PATCH", "/api/settings", withKey(map[string]string{"Sec-Fetch-Site": "cross-site"}), 403},
		{"cross-site login", "POST", "/api/session", withKey(map[string]string{"Sec-Fetch-Site": "cross-site"}), 403},
		{"same-origin POST with the key", "POST", "/api/jobs/check", withKey(map[string]string{"Sec-Fetch-Site": "same-origin"}), 202},
		{"POST from a script with the key", "POST", "/api/jobs/check", withKey(nil), 202},
		{"cross-site GET is a plain read", "GET", "/api/info", withKey(map[string]string{"Sec-Fetch-Site": "cross-site"}), 200},
		{"static page needs no key", "GET", "/", nil, 200},
		{"script needs no key", "GET", "/static/app.js", nil, 200},
		{"no directory listing", "GET", "/static/", nil, 404},
		{"unknown API path", "GET", "/api/nope", withKey(nil), 404},
		{"password login is off on loopback", "POST", "/api/login", nil, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := ""
			if tt.method == "PATCH" {
				body = `{"ui.theme":"dark"}`
			}
			r := call(t, tt.method, ts.URL+tt.path, body, tt.hdr)
			if r.status != tt.want {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, r.status, r.body, tt.want)
			}
			wantHeaders := map[string]string{
				"X-Frame-Options":        "DENY",
				"X-Content-Type-Options": "nosniff",
				"Referrer-Policy":        "no-referrer",
			}
			for k, v := range wantHeaders {
				if got := r.header.Get(k); got != v {
					t.Errorf("%s %s: header %s = %q, want %q", tt.method, tt.path, k, got, v)
				}
			}
			csp := r.header.Get("Content-Security-Policy")
			for _, d := range []string{"frame-ancestors 'none'", "default-src 'self'", "script-src 'self'"} {
				if !strings.Contains(csp, d) {
					t.Errorf("%s %s: Content-Security-Policy %q lacks %q", tt.method, tt.path, csp, d)
				}
			}
			if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
				t.Errorf("Content-Security-Policy %q allows inline code", csp)
			}
			if strings.HasPrefix(tt.path, "/api/") && !strings.Contains(r.header.Get("Cache-Control"), "no-store") {
				t.Errorf("%s %s: Cache-Control = %q, want no-store", tt.method, tt.path, r.header.Get("Cache-Control"))
			}
			if r.status >= 400 && strings.HasPrefix(tt.path, "/api/") || r.status == 401 || r.status == 403 {
				var e struct{ Error string }
				r.json(t, &e)
				if e.Error == "" {
					t.Errorf("%s %s: error body %q has no error message", tt.method, tt.path, r.body)
				}
			}
		})
	}
}

func sessionCookie(t *testing.T, r reply) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if strings.HasPrefix(c.Name, "gata_session_") {
			return c
		}
	}
	t.Fatalf("no session cookie in %v", r.header["Set-Cookie"])
	return nil
}

func TestBrowserSession(t *testing.T) {
	_, ts, _ := newTestServer(t, Options{})
	if r := call(t, "POST", ts.URL+"/api/session", "", nil); r.status != 401 {
		t.Fatalf("POST /api/session without the key = %d, want 401", r.status)
	}
	r := call(t, "POST", ts.URL+"/api/session", "", withKey(nil))
	if r.status != 200 {
		t.Fatalf("POST /api/session = %d %s", r.status, r.body)
	}
	var sess struct {
		CSRF string `json:"csrf_token"`
	}
	r.json(t, &sess)
	if len(sess.CSRF) < 32 {
		t.Fatalf("CSRF token %q is too short", sess.CSRF)
	}
	ck := sessionCookie(t, r)
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" {
		t.Errorf("session cookie = %+v, want HttpOnly, SameSite=Strict, Path=/", ck)
	}
	if strings.Contains(ck.Value, testKey) || strings.Contains(sess.CSRF, testKey) {
		t.Error("the session cookie or CSRF token carries the API key")
	}
	cookie := ck.Name + "=" + ck.Value

	tests := []struct {
		name   string
		method string
		path   string
		hdr    map[string]string
		want   int
	}{
		{"GET with the cookie", "GET", "/api/info", map[string]string{"Cookie": cookie}, 200},
		{"partial with the cookie", "GET", "/ui/section/settings", map[string]string{"Cookie": cookie}, 200},
		{"POST without CSRF token", "POST", "/api/jobs/check", map[string]string{"Cookie": cookie}, 403},
		{"POST with a forged CSRF token", "POST", "/api/jobs/check", map[string]string{"Cookie": cookie, "X-CSRF-Token": "forged"}, 403},
		{"POST with the CSRF token", "POST", "/api/jobs/check", map[string]string{"Cookie": cookie, "X-CSRF-Token": sess.CSRF}, 202},
		{"PATCH without CSRF token", "PATCH", "/api/settings", map[string]string{"Cookie": cookie}, 403},
		{"score without CSRF token", "POST", "/api/validate/score", map[string]string{"Cookie": cookie}, 403},
		{"licence without CSRF token", "POST", "/api/models/dfn2b-vit-b-16/license", map[string]string{"Cookie": cookie}, 403},
		{"download without CSRF token", "POST", "/api/models/dfn2b-vit-b-16/pull", map[string]string{"Cookie": cookie}, 403},
		{"verify without CSRF token", "POST", "/api/models/dfn2b-vit-b-16/verify", map[string]string{"Cookie": cookie}, 403},
		{"unknown cookie value", "GET", "/api/info", map[string]string{"Cookie": ck.Name + "=" + strings.Repeat("a", 64)}, 401},
		{"CSRF token is not a key", "GET", "/api/info", map[string]string{"X-API-Key": sess.CSRF}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := call(t, tt.method, ts.URL+tt.path, "", tt.hdr); r.status != tt.want {
				t.Errorf("%s %s = %d %s, want %d", tt.method, tt.path, r.status, r.body, tt.want)
			}
		})
	}

	t.Run("a reloaded page gets its token back", func(t *testing.T) {
		r := call(t, "GET", ts.URL+"/api/session", "", map[string]string{"Cookie": cookie})
		var again struct {
			CSRF string `json:"csrf_token"`
		}
		r.json(t, &again)
		if r.status != 200 || again.CSRF != sess.CSRF {
			t.Errorf("GET /api/session = %d %q, want 200 and the session's token", r.status, r.body)
		}
	})
	t.Run("sign out", func(t *testing.T) {
		if r := call(t, "DELETE", ts.URL+"/api/session", "", map[string]string{"Cookie": cookie}); r.status != 403 {
			t.Errorf("DELETE /api/session without CSRF = %d, want 403", r.status)
		}
		if r := call(t, "DELETE", ts.URL+"/api/session", "", map[string]string{"Cookie": cookie, "X-CSRF-Token": sess.CSRF}); r.status != 204 {
			t.Errorf("DELETE /api/session = %d %s, want 204", r.status, r.body)
		}
		if r := call(t, "GET", ts.URL+"/api/info", "", map[string]string{"Cookie": cookie}); r.status != 401 {
			t.Errorf("GET after sign-out = %d, want 401", r.status)
		}
	})
}

func TestPasswordLogin(t *testing.T) {
	cert, key := selfSignedCert(t, t.TempDir())
	_, ts, _ := newTestServer(t, Options{Addr: "0.0.0.0:0", Password: "correct horse", TLSCertFile: cert, TLSKeyFile: key})

	r := call(t, "GET", ts.URL+"/api/info", "", nil)
	var unauth struct {
		Error         string `json:"error"`
		PasswordLogin bool   `json:"password_login"`
	}
	r.json(t, &unauth)
	if r.status != 401 || !unauth.PasswordLogin {
		t.Errorf("GET /api/info without auth = %d %s, want 401 offering the password login", r.status, r.body)
	}
	// Off loopback there is no Host check: the server is reached by whatever name the LAN uses.
	if r := call(t, "GET", ts.URL+"/api/info", "", withKey(map[string]string{"Host": "gpu-rig.lan:7800"})); r.status != 200 {
		t.Errorf("GET with a LAN Host = %d, want 200", r.status)
	}
	tests := []struct {
		name string
		body string
		want int
	}{
		{"wrong password", `{"password":"wrong"}`, 401},
		{"empty password", `{"password":""}`, 401},
		{"not JSON", `password=correct+horse`, 400},
		{"right password", `{"password":"correct horse"}`, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, "POST", ts.URL+"/api/login", tt.body, map[string]string{"Content-Type": "application/json"})
			if r.status != tt.want {
				t.Fatalf("POST /api/login %s = %d %s, want %d", tt.body, r.status, r.body, tt.want)
			}
			if tt.want != 200 {
				return
			}
			var sess struct {
				CSRF string `json:"csrf_token"`
			}
			r.json(t, &sess)
			ck := sessionCookie(t, r)
			if !ck.Secure {
				t.Errorf("session cookie over TLS is not Secure: %+v", ck)
			}
			cookie := ck.Name + "=" + ck.Value
			if r := call(t, "GET", ts.URL+"/api/settings", "", map[string]string{"Cookie": cookie}); r.status != 200 {
				t.Errorf("GET with the password session = %d", r.status)
			}
			if r := call(t, "POST", ts.URL+"/api/jobs/check", "", map[string]string{"Cookie": cookie}); r.status != 403 {
				t.Errorf("POST without CSRF = %d, want 403", r.status)
			}
			if r := call(t, "POST", ts.URL+"/api/jobs/check", "", map[string]string{"Cookie": cookie, "X-CSRF-Token": sess.CSRF}); r.status != 202 {
				t.Errorf("POST with CSRF = %d %s, want 202", r.status, r.body)
			}
		})
	}
}

func TestSettingsRoundTrip(t *testing.T) {
	_, ts, c := newTestServer(t, Options{})
	get := func(t *testing.T) map[string]core.Setting {
		t.Helper()
		r := call(t, "GET", ts.URL+"/api/settings", "", withKey(nil))
		if r.status != 200 {
			t.Fatalf("GET /api/settings = %d %s", r.status, r.body)
		}
		var list []core.Setting
		r.json(t, &list)
		m := map[string]core.Setting{}
		for _, s := range list {
			m[s.Key] = s
		}
		return m
	}
	before := get(t)
	if before[core.SettingTheme].Value != "system" || before[core.SettingLogLevel].Value != "info" {
		t.Fatalf("defaults = %+v", before)
	}
	if got, want := before[core.SettingDataDir].Value, c.Info().DataDir; got != want || !before[core.SettingDataDir].ReadOnly {
		t.Errorf("data dir setting = %+v, want read-only %q", before[core.SettingDataDir], want)
	}

	r := call(t, "PATCH", ts.URL+"/api/settings", `{"ui.theme":"dark","log.level":"debug","share.paused":true,"web.addr":"127.0.0.1:7801"}`, withKey(nil))
	if r.status != 200 {
		t.Fatalf("PATCH /api/settings = %d %s", r.status, r.body)
	}
	after := get(t)
	for k, want := range map[string]string{core.SettingTheme: "dark", core.SettingLogLevel: "debug", core.SettingSharePaused: "true", core.SettingWebAddr: "127.0.0.1:7801"} {
		if after[k].Value != want {
			t.Errorf("after PATCH, %s = %q, want %q", k, after[k].Value, want)
		}
		if v, err := c.SettingValue(context.Background(), k); err != nil || v != want {
			t.Errorf("core.SettingValue(%q) = %q, %v, want %q", k, v, err, want)
		}
	}
	if r := call(t, "PUT", ts.URL+"/api/settings", `{"ui.theme":"light"}`, withKey(nil)); r.status != 200 || get(t)[core.SettingTheme].Value != "light" {
		t.Errorf("PUT /api/settings = %d %s, want 200 and theme light", r.status, r.body)
	}

	bad := []struct {
		name      string
		body      string
		wantField string
		wantMsg   string
	}{
		{"unknown choice", `{"ui.theme":"purple"}`, "ui.theme", `"purple" is not one of system, light, dark`},
		{"bad address", `{"web.addr":"nowhere"}`, "web.addr", "is not host:port"},
		{"bad port", `{"web.addr":"127.0.0.1:99999"}`, "web.addr", "port"},
		{"read-only", `{"data.dir":"/elsewhere"}`, "data.dir", "read-only"},
		{"unknown key", `{"no.such":"x"}`, "no.such", "unknown setting"},
		{"bool that is not", `{"share.paused":"maybe"}`, "share.paused", "not true or false"},
		{"one bad value spoils the batch", `{"log.level":"warn","ui.theme":"neon"}`, "ui.theme", "neon"},
		{"not an object", `["ui.theme"]`, "", "JSON object"},
		{"nested value", `{"ui.theme":{"x":1}}`, "", "want a string, boolean or number"},
		{"truncated", `{"ui.theme":`, "", "read settings"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, "PATCH", ts.URL+"/api/settings", tt.body, withKey(nil))
			var e struct {
				Error string `json:"error"`
				Field string `json:"field"`
			}
			r.json(t, &e)
			if r.status != 400 || e.Field != tt.wantField || !strings.Contains(e.Error, tt.wantMsg) {
				t.Errorf("PATCH %s = %d %s, want 400 on field %q saying %q", tt.body, r.status, r.body, tt.wantField, tt.wantMsg)
			}
		})
	}
	if got := get(t)[core.SettingLogLevel].Value; got != "debug" {
		t.Errorf("log level after refused batches = %q, want debug (nothing stored)", got)
	}

	t.Run("the settings partial shows the stored values", func(t *testing.T) {
		r := call(t, "GET", ts.URL+"/ui/section/settings", "", withKey(nil))
		for _, want := range []string{
			`<option value="light" selected>`, `<option value="debug" selected>`,
			`id="setting-share-paused" name="share.paused" data-testid="setting-share.paused" value="true" checked`,
			`value="127.0.0.1:7801"`, `data-testid="restart-hint"`,
			`readonly`, `data-testid="error-ui.theme"`, `id="check-start"`,
		} {
			if !strings.Contains(r.body, want) {
				t.Errorf("GET /ui/section/settings lacks %q", want)
			}
		}
	})
}

// waitJob polls the API until the job has ended.
func waitJob(t *testing.T, base, id string) core.JobInfo {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := call(t, "GET", base+"/api/jobs/"+id, "", withKey(nil))
		if r.status != 200 {
			t.Fatalf("GET /api/jobs/%s = %d %s", id, r.status, r.body)
		}
		var j core.JobInfo
		r.json(t, &j)
		if j.State.Ended() {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s after 30 s", id, j.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCheckJobThroughTheAPI(t *testing.T) {
	_, ts, c := newTestServer(t, Options{})
	r := call(t, "POST", ts.URL+"/api/jobs/check", "", withKey(nil))
	if r.status != 202 {
		t.Fatalf("POST /api/jobs/check = %d %s", r.status, r.body)
	}
	var started core.JobInfo
	r.json(t, &started)
	if started.ID == "" || started.Kind != "check" || started.State != core.JobRunning {
		t.Fatalf("started job = %+v", started)
	}
	end := waitJob(t, ts.URL, started.ID)
	// The JSON result is the check report.
	var res struct {
		Result core.CheckReport `json:"result"`
	}
	call(t, "GET", ts.URL+"/api/jobs/"+started.ID, "", withKey(nil)).json(t, &res)
	if end.State != core.JobDone || end.Progress.Done != end.Progress.Total || end.Progress.Total == 0 {
		t.Errorf("check job ended as %+v, want done with full progress", end)
	}
	names := map[string]bool{}
	for _, it := range res.Result.Items {
		names[it.Name] = true
		if it.Status == core.CheckFail {
			t.Errorf("check item %+v failed on a fresh data folder", it)
		}
	}
	for _, n := range []string{"Data folder", "Database integrity", "Database schema", "Models folder"} {
		if !names[n] {
			t.Errorf("check report %+v lacks %q", res.Result, n)
		}
	}

	t.Run("events follow the job to its end", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch := openStream(t, ctx, ts.URL+"/api/events?since="+strconv.FormatInt(c.LastEventID(), 10), nil)
		var j core.JobInfo
		call(t, "POST", ts.URL+"/api/jobs/check", "", withKey(nil)).json(t, &j)
		var states []core.JobState
		for !slices.ContainsFunc(states, core.JobState.Ended) {
			e := nextEvents(t, ch, 1)[0]
			var got core.JobInfo
			if err := json.Unmarshal([]byte(e.data), &got); e.event != "job" || err != nil {
				t.Fatalf("event %+v: want a job event (%v)", e, err)
			}
			if got.ID == j.ID {
				states = append(states, got.State)
			}
		}
		if states[0] != core.JobRunning || states[len(states)-1] != core.JobDone {
			t.Errorf("job %s went through %v, want running … done", j.ID, states)
		}
	})

	var list []core.JobInfo
	call(t, "GET", ts.URL+"/api/jobs", "", withKey(nil)).json(t, &list)
	if len(list) != 2 || list[1].ID != started.ID {
		t.Errorf("GET /api/jobs = %+v, want the two check jobs, the first one last", list)
	}
	html := call(t, "GET", ts.URL+"/ui/jobs", "", withKey(nil)).body
	if !strings.Contains(html, `data-job-id="`+started.ID+`"`) || strings.Count(html, `data-testid="check-item"`) != 2*len(res.Result.Items) {
		t.Errorf("GET /ui/jobs does not render both jobs with their %d report rows:\n%s", len(res.Result.Items), html)
	}

	t.Run("cancel a running job", func(t *testing.T) {
		j, err := c.Jobs().Start(core.JobSpec{Kind: "test.wait", Title: "Waiting", Run: func(ctx context.Context, report func(core.Progress)) (any, error) {
			report(core.Progress{Done: 1, Total: 4, Unit: "steps", Message: "waiting"})
			<-ctx.Done()
			return nil, ctx.Err()
		}})
		if err != nil {
			t.Fatal(err)
		}
		html := call(t, "GET", ts.URL+"/ui/jobs", "", withKey(nil)).body
		if !strings.Contains(html, `data-action="cancel" data-job="`+j.ID+`"`) {
			t.Errorf("running job has no cancel button:\n%s", html)
		}
		if r := call(t, "POST", ts.URL+"/api/jobs/"+j.ID+"/cancel", "", withKey(nil)); r.status != 202 {
			t.Fatalf("POST cancel = %d %s", r.status, r.body)
		}
		if got := waitJob(t, ts.URL, j.ID); got.State != core.JobCancelled {
			t.Errorf("cancelled job ended %q, want cancelled", got.State)
		}
		if r := call(t, "POST", ts.URL+"/api/jobs/"+j.ID+"/cancel", "", withKey(nil)); r.status != 202 {
			t.Errorf("cancelling an ended job = %d, want 202", r.status)
		}
	})
	for _, p := range []string{"GET /api/jobs/nope", "POST /api/jobs/nope/cancel"} {
		method, path, _ := strings.Cut(p, " ")
		if r := call(t, method, ts.URL+path, "", withKey(nil)); r.status != 404 || !strings.Contains(r.body, "no such job") {
			t.Errorf("%s = %d %s, want 404 no such job", p, r.status, r.body)
		}
	}
}

// sse is one server-sent event, or a comment when comment is set.
type sse struct {
	id, event, data, comment string
}

// readSSE parses a text/event-stream body onto a channel until it ends.
func readSSE(body io.Reader) <-chan sse {
	ch := make(chan sse, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(body)
		var e sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if e != (sse{}) {
					ch <- e
				}
				e = sse{}
			case strings.HasPrefix(line, ":"):
				ch <- sse{comment: strings.TrimSpace(line[1:])}
			default:
				k, v, _ := strings.Cut(line, ":")
				v = strings.TrimPrefix(v, " ")
				switch k {
				case "id":
					e.id = v
				case "event":
					e.event = v
				case "data":
					e.data = v
				}
			}
		}
	}()
	return ch
}

// openStream opens /api/events with the given headers and query, and returns its events.
func openStream(t *testing.T, ctx context.Context, url string, hdr map[string]string) <-chan sse {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range withKey(hdr) {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("GET %s = %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return readSSE(resp.Body)
}

// nextEvents reads n events (skipping comments) or fails after a deadline.
func nextEvents(t *testing.T, ch <-chan sse, n int) []sse {
	t.Helper()
	var out []sse
	timeout := time.After(20 * time.Second)
	for len(out) < n {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended after %d of %d events: %+v", len(out), n, out)
			}
			if e.comment == "" {
				out = append(out, e)
			}
		case <-timeout:
			t.Fatalf("got %d of %d events in 20 s: %+v", len(out), n, out)
		}
	}
	return out
}

func ids(evs []sse) string {
	var s []string
	for _, e := range evs {
		s = append(s, e.event+"#"+e.id)
	}
	return strings.Join(s, " ")
}

func TestEventsResume(t *testing.T) {
	srv, ts, c := newTestServer(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	patch := func(v string) {
		t.Helper()
		if r := call(t, "PATCH", ts.URL+"/api/settings", `{"log.level":"`+v+`"}`, withKey(nil)); r.status != 200 {
			t.Fatalf("PATCH = %d %s", r.status, r.body)
		}
	}
	base := c.LastEventID()
	for _, v := range []string{"debug", "warn", "error"} {
		patch(v)
	}
	if got := c.LastEventID(); got != base+3 {
		t.Fatalf("LastEventID = %d after 3 changes from %d", got, base)
	}
	id := func(n int64) string { return strconv.FormatInt(base+n, 10) }

	t.Run("Last-Event-ID", func(t *testing.T) {
		ch := openStream(t, ctx, ts.URL+"/api/events", map[string]string{"Last-Event-ID": id(1)})
		evs := nextEvents(t, ch, 2)
		if got, want := ids(evs), "settings#"+id(2)+" settings#"+id(3); got != want {
			t.Fatalf("events after Last-Event-ID %s = %s, want %s", id(1), got, want)
		}
		var changed []core.Setting
		if err := json.Unmarshal([]byte(evs[1].data), &changed); err != nil || len(changed) != 1 || changed[0].Value != "error" {
			t.Errorf("event data %q = %+v, %v, want the log level set to error", evs[1].data, changed, err)
		}
		patch("info") // a live event on the same stream
		if got, want := ids(nextEvents(t, ch, 1)), "settings#"+id(4); got != want {
			t.Errorf("live event = %s, want %s", got, want)
		}
	})
	t.Run("since query", func(t *testing.T) {
		ch := openStream(t, ctx, ts.URL+"/api/events?since="+id(2), nil)
		if got, want := ids(nextEvents(t, ch, 2)), "settings#"+id(3)+" settings#"+id(4); got != want {
			t.Errorf("events since %s = %s, want %s", id(2), got, want)
		}
	})
	t.Run("no ID: only new events", func(t *testing.T) {
		ch := openStream(t, ctx, ts.URL+"/api/events", nil)
		time.Sleep(50 * time.Millisecond) // let the stream register before the change
		patch("warn")
		if got, want := ids(nextEvents(t, ch, 1)), "settings#"+id(5); got != want {
			t.Errorf("first event on a fresh stream = %s, want %s", got, want)
		}
	})
	t.Run("ID from an earlier run", func(t *testing.T) {
		ch := openStream(t, ctx, ts.URL+"/api/events", map[string]string{"Last-Event-ID": "999999"})
		if evs := nextEvents(t, ch, 1); evs[0].event != "reload" || evs[0].id != "" {
			t.Errorf("first event for a future ID = %+v, want reload without an ID", evs[0])
		}
	})
	t.Run("bad ID", func(t *testing.T) {
		if r := call(t, "GET", ts.URL+"/api/events?since=x", "", withKey(nil)); r.status != 400 {
			t.Errorf("GET /api/events?since=x = %d, want 400", r.status)
		}
	})
	t.Run("heartbeat", func(t *testing.T) {
		srv.beat.Store(int64(30 * time.Millisecond))
		defer srv.beat.Store(int64(heartbeat))
		ch := openStream(t, ctx, ts.URL+"/api/events", nil)
		timeout := time.After(10 * time.Second)
		for {
			select {
			case e := <-ch:
				if e.comment == "heartbeat" {
					return
				}
			case <-timeout:
				t.Fatal("no heartbeat comment in 10 s")
			}
		}
	})
	t.Run("missed events", func(t *testing.T) {
		// Push the first events out of the core's ring buffer (1024 events).
		for i := range 1030 {
			if err := c.SetSharingPaused(context.Background(), i%2 == 0); err != nil {
				t.Fatal(err)
			}
		}
		ch := openStream(t, ctx, ts.URL+"/api/events", map[string]string{"Last-Event-ID": id(1)})
		evs := nextEvents(t, ch, 2)
		if evs[0].event != "reload" || evs[1].event != "settings" || evs[1].id == id(2) {
			t.Errorf("resuming after dropped events = %s, want reload then the oldest kept event", ids(evs))
		}
	})
}

func TestPartials(t *testing.T) {
	_, ts, c := newTestServer(t, Options{})
	page := call(t, "GET", ts.URL+"/", "", nil)
	if page.status != 200 || !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %s", page.status, page.header.Get("Content-Type"))
	}
	if strings.Contains(page.body, c.Info().DataDir) || strings.Contains(page.body, testKey) {
		t.Error("the static page carries data")
	}
	if regexp.MustCompile(`<script(>| [^>]*>[^<])| on[a-z]+=`).MatchString(page.body) {
		t.Error("the static page has inline script")
	}
	nav := call(t, "GET", ts.URL+"/ui/nav", "", withKey(nil)).body
	for _, s := range c.Sections() {
		if !strings.Contains(nav, `href="#/`+s.ID+`"`) {
			t.Errorf("nav lacks a link to %s", s.ID)
		}
		r := call(t, "GET", ts.URL+"/ui/section/"+s.ID, "", withKey(nil))
		if r.status != 200 || !strings.Contains(r.body, ">"+s.Title+"</h1>") || !strings.Contains(r.body, `data-testid="section-`+s.ID+`"`) {
			t.Errorf("GET /ui/section/%s = %d, want its title %q in an h1", s.ID, r.status, s.Title)
		}
		for _, item := range s.Coming {
			if !strings.Contains(r.body, "<li>"+templateEscape(item)+"</li>") {
				t.Errorf("section %s lacks coming item %q", s.ID, item)
			}
		}
	}
	if r := call(t, "GET", ts.URL+"/ui/section/nope", "", withKey(nil)); r.status != 404 {
		t.Errorf("GET /ui/section/nope = %d, want 404", r.status)
	}
}

func templateEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(s)
}

func TestServe(t *testing.T) {
	c := newTestCore(t)
	cert, key := selfSignedCert(t, t.TempDir())
	tests := []struct {
		name   string
		opts   Options
		scheme string
	}{
		{"http on loopback", Options{Addr: "127.0.0.1:0", APIKey: testKey, Logger: quiet}, "http"},
		{"https on loopback", Options{Addr: "127.0.0.1:0", APIKey: testKey, Logger: quiet, TLSCertFile: cert, TLSKeyFile: key}, "https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(c, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- s.Serve(ctx) }()
			select {
			case <-s.Ready():
			case err := <-done:
				t.Fatalf("Serve returned %v before Ready", err)
			case <-time.After(10 * time.Second):
				t.Fatal("not Ready in 10 s")
			}
			if !regexp.MustCompile(`^` + tt.scheme + `://127\.0\.0\.1:[1-9][0-9]*/$`).MatchString(s.URL()) {
				t.Fatalf("URL() = %q", s.URL())
			}
			if got, want := s.LoginURL(), s.URL()+"#key="+testKey; got != want {
				t.Errorf("LoginURL() = %q, want %q", got, want)
			}
			pool := x509.NewCertPool()
			if pem, err := os.ReadFile(cert); err == nil {
				pool.AppendCertsFromPEM(pem)
			}
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
			defer client.CloseIdleConnections()

			get := func(path string, hdr map[string]string) (*http.Response, error) {
				req, _ := http.NewRequestWithContext(context.Background(), "GET", s.URL()+path, nil)
				for k, v := range hdr {
					req.Header.Set(k, v)
				}
				return client.Do(req)
			}
			resp, err := get("api/info", withKey(nil))
			if err != nil {
				t.Fatal(err)
			}
			var info core.Info
			json.NewDecoder(resp.Body).Decode(&info)
			resp.Body.Close()
			if resp.StatusCode != 200 || info.Version != "test" {
				t.Errorf("GET api/info = %d %+v", resp.StatusCode, info)
			}
			// An open event stream must not hold up the shutdown.
			stream, err := get("api/events", withKey(nil))
			if err != nil {
				t.Fatal(err)
			}
			defer stream.Body.Close()
			ended := make(chan error, 1)
			go func() { _, err := io.Copy(io.Discard, stream.Body); ended <- err }()

			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Serve after cancel = %v, want nil", err)
				}
			case <-time.After(ShutdownDeadline + 5*time.Second):
				t.Fatal("Serve did not return after its context ended")
			}
			select {
			case <-ended:
			case <-time.After(5 * time.Second):
				t.Error("the event stream is still open after Serve returned")
			}
			if resp, err := get("api/info", withKey(nil)); err == nil {
				resp.Body.Close()
				t.Errorf("GET after shutdown = %d, want a refused connection", resp.StatusCode)
			}
		})
	}
}

func TestServeReportsListenErrors(t *testing.T) {
	c := newTestCore(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := New(c, Options{Addr: ln.Addr().String(), APIKey: testKey, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(context.Background()); err == nil || !strings.Contains(err.Error(), "listen for the web UI") {
		t.Errorf("Serve on a taken port = %v, want a listen error", err)
	}
	select {
	case <-s.Ready():
		t.Error("Ready closed though the server never listened")
	default:
	}
}

// newValidateCore is a test core with the Validate section: a model store in its data
// folder that knows specs (nil: the built-in registry) and the CPU engine.
func newValidateCore(t *testing.T, specs []models.Spec) *core.Core {
	t.Helper()
	return newTestCoreWith(t, func(o *core.Options) {
		o.Models = models.NewStore(filepath.Join(o.DataDir, "models"), models.Options{Specs: specs, RetryWait: time.Millisecond})
		o.LoadEngine = func(ctx context.Context, dir string) (core.Engine, error) {
			m, err := clip.LoadModel(dir)
			if err != nil {
				return nil, err
			}
			return dva.NewEngine(m.Config, cpu.New(m, runtime.GOMAXPROCS(0)), dva.EngineOptions{ModelDir: dir})
		}
	})
}

// part is one field of a multipart request; a file when filename is set.
type part struct {
	name, filename string
	data           []byte
}

// postForm sends parts as multipart/form-data with the API key.
func postForm(t *testing.T, url string, parts ...part) reply {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, p := range parts {
		var w io.Writer
		var err error
		if p.filename != "" {
			w, err = mw.CreateFormFile(p.name, p.filename)
		} else {
			w, err = mw.CreateFormField(p.name)
		}
		if err != nil {
			t.Fatal(err)
		}
		w.Write(p.data)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return call(t, "POST", url, b.String(), withKey(map[string]string{"Content-Type": mw.FormDataContentType()}))
}

// errorLine returns the error message of an error reply and checks that it is one line.
func errorLine(t *testing.T, r reply) string {
	t.Helper()
	var e apiError
	r.json(t, &e)
	if e.Error == "" || strings.ContainsAny(e.Error, "\r\n") {
		t.Errorf("error body %q: want a one-line error", r.body)
	}
	return e.Error
}

func patchSetting(t *testing.T, base, key, value string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{key: value})
	if r := call(t, "PATCH", base+"/api/settings", string(body), withKey(nil)); r.status != 200 {
		t.Fatalf("PATCH %s=%q = %d %s", key, value, r.status, r.body)
	}
}

func TestScoreThroughTheAPI(t *testing.T) {
	ctx := context.Background()
	c := newValidateCore(t, nil)
	_, ts, _ := serveCore(t, c, Options{})
	dir := dvatest.ClipDir(t)
	img, err := os.ReadFile(filepath.Join(dir, "coffee.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	const caption = "a cup of coffee on a saucer, seen from above"

	// The default model is not downloaded here: a conflict the user resolves by downloading.
	r := postForm(t, ts.URL+"/api/validate/score", part{"image", "coffee.jpg", img}, part{"caption", "", []byte(caption)})
	if msg := errorLine(t, r); r.status != 409 || !strings.Contains(msg, "not downloaded") {
		t.Errorf("POST /api/validate/score without a model = %d %q, want an error saying it is not downloaded", r.status, msg)
	}

	patchSetting(t, ts.URL, core.SettingModel, dir)
	var st core.ValidateState
	call(t, "GET", ts.URL+"/api/validate", "", withKey(nil)).json(t, &st)
	if st.Model != dir || !st.Ready || st.Loaded || st.Known != nil || st.Problem != "" {
		t.Errorf("GET /api/validate with a model folder = %+v, want it ready, not loaded", st)
	}

	r = postForm(t, ts.URL+"/api/validate/score", part{"image", "coffee.jpg", img}, part{"caption", "", []byte(caption)})
	if r.status != 200 {
		t.Fatalf("POST /api/validate/score = %d %s", r.status, r.body)
	}
	var got core.ScoreResult
	r.json(t, &got)
	want, err := c.ScorePair(ctx, core.ScoreRequest{Name: "coffee.jpg", Image: img, Caption: caption})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(got.Score-want.Score)) > 1e-6 || got.Score == 0 {
		t.Errorf("POST /api/validate/score = %v, ScorePair = %v; want the same", got.Score, want.Score)
	}
	if got.Caption != caption || got.Name != "coffee.jpg" || got.Model.Dir != dir || got.Model.EmbedDim != want.Model.EmbedDim {
		t.Errorf("score result = %+v, want the caption, the file name and the model folder", got)
	}
	call(t, "GET", ts.URL+"/api/validate", "", withKey(nil)).json(t, &st)
	if !st.Loaded {
		t.Error("GET /api/validate: Loaded = false after scoring")
	}
	card := call(t, "GET", ts.URL+"/ui/validate/model", "", withKey(nil)).body
	if !strings.Contains(card, `data-loaded="true"`) || !strings.Contains(card, ">"+templateEscape(dir)+"</code>") {
		t.Errorf("GET /ui/validate/model after scoring does not show the loaded folder:\n%s", card)
	}

	captionPart := part{"caption", "", []byte(caption)}
	tests := []struct {
		name  string
		send  func() reply
		want  int
		words string // the error contains them
	}{
		{"a text file", func() reply {
			return postForm(t, ts.URL+"/api/validate/score", part{"image", "notes.txt", []byte("these are notes, not a picture")}, captionPart)
		}, 400, "notes.txt"},
		{"no image", func() reply { return postForm(t, ts.URL+"/api/validate/score", captionPart) }, 400, "choose an image"},
		{"an empty file", func() reply {
			return postForm(t, ts.URL+"/api/validate/score", part{"image", "empty.jpg", nil}, captionPart)
		}, 400, "choose an image"},
		{"an image over the limit", func() reply {
			return postForm(t, ts.URL+"/api/validate/score", part{"image", "huge.jpg", make([]byte, core.MaxImageBytes+1)}, captionPart)
		}, 413, "huge.jpg is larger than the 50 MB limit"},
		{"a request over the limit", func() reply {
			return postForm(t, ts.URL+"/api/validate/score", captionPart, part{"other", "", make([]byte, maxScoreBody)})
		}, 413, "larger than the 51 MB limit"},
		{"JSON instead of a form", func() reply {
			return call(t, "POST", ts.URL+"/api/validate/score", `{"caption":"x"}`, withKey(map[string]string{"Content-Type": "application/json"}))
		}, 400, "multipart/form-data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.send()
			if r.status != tt.want {
				t.Errorf("status = %d %s, want %d", r.status, r.body, tt.want)
			}
			if msg := errorLine(t, r); !strings.Contains(msg, tt.words) {
				t.Errorf("error %q does not say %q", msg, tt.words)
			}
		})
	}
}

// tinySpec describes the test model folder as a known model served by hub, a stand-in
// for the Hugging Face hub on loopback.
func tinySpec(t *testing.T, hub string) (models.Spec, string) {
	t.Helper()
	dir := dvatest.ClipDir(t)
	weights, err := os.ReadFile(filepath.Join(dir, models.SafetensorsFile))
	if err != nil {
		t.Fatal(err)
	}
	config, err := os.ReadFile(filepath.Join(dir, models.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(weights)
	return models.Spec{Name: "tiny-clip", Title: "Tiny CLIP", URL: hub + "/tiny/resolve/main/" + models.SafetensorsFile,
		File: models.SafetensorsFile, Size: int64(len(weights)), SHA256: hex.EncodeToString(sum[:]), Config: config,
		License: models.License{Name: "Test Licence", URL: "https://example.org/licence"}}, dir
}

func TestModelDownloadThroughTheAPI(t *testing.T) {
	ctx := context.Background()
	var gets atomic.Int32
	var weights []byte
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		http.ServeContent(w, r, models.SafetensorsFile, time.Time{}, bytes.NewReader(weights))
	}))
	defer hub.Close()
	sp, dir := tinySpec(t, hub.URL)
	weights, _ = os.ReadFile(filepath.Join(dir, models.SafetensorsFile))
	c := newValidateCore(t, []models.Spec{sp})
	_, ts, _ := serveCore(t, c, Options{})
	patchSetting(t, ts.URL, core.SettingModel, sp.Name)

	section := call(t, "GET", ts.URL+"/ui/section/validate", "", withKey(nil)).body
	for _, want := range []string{`data-testid="model-card"`, ">Tiny CLIP <code>tiny-clip</code>", `href="https://example.org/licence"`,
		`data-testid="license-accept"`, "Tiny CLIP is not downloaded yet.", `data-testid="model-pull" disabled`} {
		if !strings.Contains(section, want) {
			t.Errorf("Validate section before the download lacks %s:\n%s", want, section)
		}
	}

	t.Run("the download waits for the licence", func(t *testing.T) {
		r := call(t, "POST", ts.URL+"/api/models/tiny-clip/pull", "", withKey(nil))
		if r.status != 409 {
			t.Errorf("POST pull before accepting = %d %s, want 409", r.status, r.body)
		}
		if msg := errorLine(t, r); !strings.Contains(msg, "licence has not been accepted") || !strings.Contains(msg, "Test Licence") {
			t.Errorf("pull refused with %q, want it to name the licence", msg)
		}
		if n := gets.Load(); n != 0 {
			t.Errorf("the hub was asked %d times before the licence was accepted", n)
		}
		for _, route := range []string{"license", "pull", "verify"} {
			if r := call(t, "POST", ts.URL+"/api/models/nope/"+route, "", withKey(nil)); r.status != 404 || !strings.Contains(errorLine(t, r), `unknown model "nope"`) {
				t.Errorf("POST /api/models/nope/%s = %d %s, want 404 naming the unknown model", route, r.status, r.body)
			}
		}
	})

	r := call(t, "POST", ts.URL+"/api/models/tiny-clip/license", "", withKey(nil))
	var st core.ValidateState
	r.json(t, &st)
	if r.status != 200 || st.Known == nil || !st.Known.LicenseAccepted || st.Ready {
		t.Fatalf("POST license = %d %+v, want the licence accepted, the model not ready yet", r.status, st)
	}
	card := call(t, "GET", ts.URL+"/ui/validate/model", "", withKey(nil)).body
	if !strings.Contains(card, `data-testid="license-accepted"`) || strings.Contains(card, `data-testid="model-pull" disabled`) {
		t.Errorf("model card after accepting the licence does not offer the download:\n%s", card)
	}

	evctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := openStream(t, evctx, ts.URL+"/api/events?since="+strconv.FormatInt(c.LastEventID(), 10), nil)
	var job core.JobInfo
	if r := call(t, "POST", ts.URL+"/api/models/tiny-clip/pull", "", withKey(nil)); r.status != 202 {
		t.Fatalf("POST pull = %d %s", r.status, r.body)
	} else {
		r.json(t, &job)
	}
	if job.Kind != "model.pull" {
		t.Errorf("pull job = %+v, want kind model.pull", job)
	}
	var last core.JobInfo
	for !last.State.Ended() {
		e := nextEvents(t, ch, 1)[0]
		var j core.JobInfo
		if e.event == "job" && json.Unmarshal([]byte(e.data), &j) == nil && j.ID == job.ID {
			last = j
		}
	}
	if last.State != core.JobDone || last.Progress.Unit != "bytes" || last.Progress.Done != sp.Size || last.Progress.Total != sp.Size {
		t.Errorf("last event of the pull job = %+v, want done with %d of %d bytes", last, sp.Size, sp.Size)
	}
	call(t, "GET", ts.URL+"/api/validate", "", withKey(nil)).json(t, &st)
	if !st.Ready || st.Known == nil || !st.Known.Downloaded {
		t.Errorf("GET /api/validate after the download = %+v, want it downloaded and ready", st)
	}
	card = call(t, "GET", ts.URL+"/ui/validate/model", "", withKey(nil)).body
	for _, want := range []string{`data-testid="model-verify"`, `data-job-id="` + job.ID + `" data-kind="model.pull" data-state="done"`, "1.2 MB of 1.2 MB"} {
		if !strings.Contains(card, want) {
			t.Errorf("model card after the download lacks %s:\n%s", want, card)
		}
	}

	if r := call(t, "POST", ts.URL+"/api/models/tiny-clip/verify", "", withKey(nil)); r.status != 202 {
		t.Fatalf("POST verify = %d %s", r.status, r.body)
	} else {
		r.json(t, &job)
	}
	if got := waitJob(t, ts.URL, job.ID); got.State != core.JobDone || got.Kind != "model.verify" {
		t.Errorf("verify job ended as %+v, want done", got)
	}

	img, err := os.ReadFile(filepath.Join(dir, "coffee.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	r = postForm(t, ts.URL+"/api/validate/score", part{"image", "coffee.jpg", img}, part{"caption", "", []byte("a cup of coffee")})
	var got core.ScoreResult
	r.json(t, &got)
	want, err := c.ScorePair(ctx, core.ScoreRequest{Model: dir, Image: img, Caption: "a cup of coffee"})
	if err != nil {
		t.Fatal(err)
	}
	if r.status != 200 || math.Abs(float64(got.Score-want.Score)) > 1e-6 {
		t.Errorf("score with the downloaded model = %d %v, with the folder it came from = %v; want the same", r.status, got.Score, want.Score)
	}
}

func TestValidateSection(t *testing.T) {
	_, ts, c := serveCore(t, newValidateCore(t, nil), Options{})
	html := call(t, "GET", ts.URL+"/ui/section/validate", "", withKey(nil)).body
	for _, want := range []string{
		`<form id="score-form"`, `type="file" id="score-image" name="image" accept="image/*"`, `name="caption"`,
		`data-testid="score-submit"`, `data-testid="model-card"`, `href="#/settings"`, `data-testid="coming-list"`,
		"dfn2b-vit-b-16", `data-testid="license-accept"`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("Validate section lacks %s:\n%s", want, html)
		}
	}
	var coming []string
	for _, s := range c.Sections() {
		if s.ID == "validate" {
			coming = s.Coming
		}
	}
	if got := strings.Count(html, "<li>"); got != len(coming) {
		t.Errorf("Validate section lists %d coming items, want only the %d still to come", got, len(coming))
	}
	if strings.Contains(html, "This part of the app is being built") {
		t.Error("Validate section still says the whole section is being built")
	}

	// Without models the card says why, and the page still renders.
	_, ts, _ = newTestServer(t, Options{})
	r := call(t, "GET", ts.URL+"/ui/section/validate", "", withKey(nil))
	if r.status != 200 || !strings.Contains(r.body, "validation is not available") {
		t.Errorf("Validate section without models = %d, want the card to say validation is unavailable:\n%s", r.status, r.body)
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KB"}, {1304228, "1.2 MB"}, {598641023, "570.9 MB"}, {3 << 30, "3.0 GB"}, {5 << 40, "5.0 TB"},
	}
	for _, tt := range tests {
		if got := byteSize(tt.n); got != tt.want {
			t.Errorf("byteSize(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
