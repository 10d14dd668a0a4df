// Package web is the embedded web UI: JSON handlers under /api/, server-sent events, and
// server-rendered HTML partials under /ui/ over the static page in assets/web. Every
// handler is a few lines that call app/core; the package holds no logic of its own beyond
// HTTP and its security (syncthing's model: API key, CSRF token for browser sessions,
// Host check against DNS rebinding, no framing, password and TLS off loopback).
package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/assets"
)

// Options configure the web UI.
type Options struct {
	Addr                    string // host:port; port 0 picks a free port
	APIKey                  string // required; generated and persisted by the app
	Password                string // required when Addr is not loopback (browser login form)
	TLSCertFile, TLSKeyFile string // required when Addr is not loopback
	Logger                  *slog.Logger
}

// ShutdownDeadline is how long Serve waits for requests in flight once its context ends.
const ShutdownDeadline = 5 * time.Second

// heartbeat is how often an idle event stream sends a comment to keep proxies and the
// browser from timing it out.
const heartbeat = 20 * time.Second

// Server is the web UI's HTTP server, a supervised service.
type Server struct {
	core     *core.Core
	opts     Options
	log      *slog.Logger
	loopback bool
	tls      *tls.Config
	handler  http.Handler
	tmpl     *template.Template
	sessions *sessions
	login    chan struct{} // one password check at a time
	beat     atomic.Int64  // heartbeat interval in nanoseconds
	quit     chan struct{} // closed when Serve stops: ends the event streams
	quitOnce sync.Once

	ready     chan struct{}
	readyOnce sync.Once
	mu        sync.Mutex
	url       string
}

// New checks the options and builds the server. It refuses a non-loopback address
// without a password and TLS, and an empty API key.
func New(c *core.Core, opts Options) (*Server, error) {
	if c == nil {
		return nil, errors.New("new web UI: a core is required")
	}
	if opts.APIKey == "" {
		return nil, errors.New("new web UI: an API key is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	host, _, err := net.SplitHostPort(opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("web UI address %q is not host:port: %w", opts.Addr, err)
	}
	s := &Server{
		core: c, opts: opts, log: opts.Logger.With("service", "web"),
		loopback: isLoopbackHost(host),
		sessions: newSessions(opts.APIKey),
		login:    make(chan struct{}, 1),
		quit:     make(chan struct{}),
		ready:    make(chan struct{}),
	}
	if !s.loopback && (opts.Password == "" || opts.TLSCertFile == "" || opts.TLSKeyFile == "") {
		return nil, fmt.Errorf("refusing to listen on %s without a password and TLS: anyone on the network could reach the web UI; set GATA_WEB_PASSWORD, --tls-cert and --tls-key, or use a loopback address such as %s", opts.Addr, core.DefaultWebAddr)
	}
	if opts.TLSCertFile != "" || opts.TLSKeyFile != "" {
		cert, err := tls.LoadX509KeyPair(opts.TLSCertFile, opts.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("load web UI TLS certificate: %w", err)
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	s.beat.Store(int64(heartbeat))
	s.tmpl, err = parseTemplates()
	if err != nil {
		return nil, err
	}
	s.handler = s.routes()
	return s, nil
}

// isLoopbackHost reports whether a listen host reaches only this machine.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (s *Server) routes() http.Handler {
	static, err := fs.Sub(assets.Web, "web/static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	h := &handlers{core: s.core, srv: s}

	// Routes anyone who reaches the server may use: the static page and the two ways in.
	pub := http.NewServeMux()
	pub.Handle("GET /{$}", serveFile(static, "index.html"))
	pub.Handle("GET /static/", http.StripPrefix("/static/", staticFiles(static)))
	pub.Handle("GET /favicon.ico", serveFile(static, "icon.svg"))
	pub.HandleFunc("POST /api/session", s.postSession) // X-API-Key → session cookie + CSRF token
	pub.HandleFunc("POST /api/login", s.postLogin)     // password → session cookie + CSRF token

	// Everything else needs the API key or a browser session.
	api := http.NewServeMux()
	api.HandleFunc("GET /api/session", s.getSession)
	api.HandleFunc("DELETE /api/session", s.deleteSession)
	api.HandleFunc("GET /api/info", h.getInfo)
	api.HandleFunc("GET /api/sections", h.getSections)
	api.HandleFunc("GET /api/settings", h.getSettings)
	api.HandleFunc("PATCH /api/settings", h.patchSettings)
	api.HandleFunc("PUT /api/settings", h.patchSettings)
	api.HandleFunc("GET /api/jobs", h.listJobs)
	api.HandleFunc("GET /api/jobs/{id}", h.getJob)
	api.HandleFunc("POST /api/jobs/check", h.startCheck)
	api.HandleFunc("POST /api/jobs/{id}/cancel", h.cancelJob)
	api.HandleFunc("GET /api/events", h.events)
	api.HandleFunc("GET /api/validate", h.getValidate)
	api.HandleFunc("POST /api/validate/score", h.scorePair) // multipart: image, caption
	api.HandleFunc("POST /api/models/{name}/license", h.acceptLicense)
	api.HandleFunc("POST /api/models/{name}/pull", h.pullModel)
	api.HandleFunc("POST /api/models/{name}/verify", h.verifyModel)
	api.HandleFunc("GET /api/runs", h.listRuns)
	api.HandleFunc("POST /api/runs", h.startRun) // core.RunRequest as JSON
	api.HandleFunc("GET /api/runs/{id}", h.getRun)
	api.HandleFunc("POST /api/runs/{id}/pause", h.pauseRun)
	api.HandleFunc("POST /api/runs/{id}/resume", h.resumeRun)     // go on after a pause
	api.HandleFunc("POST /api/runs/{id}/continue", h.continueRun) // [keep_top | min_score] [basic_filter]
	api.HandleFunc("POST /api/runs/{id}/retry", h.retryRun)
	api.HandleFunc("GET /api/runs/{id}/review", h.getReview)             // order min max verdict failed reason offset limit
	api.HandleFunc("GET /api/runs/{id}/distribution", h.getDistribution) // [bins]
	api.HandleFunc("GET /api/runs/{id}/keep", h.getKeep)                 // threshold | keep_top
	api.HandleFunc("GET /api/runs/{id}/image", h.getImage)               // source key
	api.HandleFunc("POST /api/runs/{id}/verdict", h.postVerdict)         // {source, key, verdict}
	api.HandleFunc("GET /api/chat/providers", h.listProviders)
	api.HandleFunc("POST /api/chat/providers", h.addProvider) // core.ProviderInput
	api.HandleFunc("DELETE /api/chat/providers/{name}", h.removeProvider)
	api.HandleFunc("PUT /api/chat/providers/{name}/key", h.setProviderKey) // {api_key}
	api.HandleFunc("GET /api/secrets", h.secrets)
	api.HandleFunc("POST /api/secrets/unlock", h.unlockSecrets) // {passphrase}
	api.HandleFunc("GET /api/chat/models", h.chatModels)
	api.HandleFunc("GET /api/chat/battles", h.listBattles)                       // [limit]
	api.HandleFunc("POST /api/chat/battles", h.startBattle)                      // core.BattleInput
	api.HandleFunc("GET /api/chat/battles/{id}", h.getBattle)                    //
	api.HandleFunc("POST /api/chat/battles/{id}/continue", h.continueBattle)     // {prompt}
	api.HandleFunc("POST /api/chat/battles/{id}/regenerate", h.regenerateColumn) // {column}
	api.HandleFunc("POST /api/chat/battles/{id}/stop", h.stopBattle)             //
	api.HandleFunc("POST /api/chat/battles/{id}/vote", h.voteBattle)             // core.VoteInput
	api.HandleFunc("GET /api/chat/leaderboard", h.chatLeaderboard)               //
	api.HandleFunc("GET /api/chat/export", h.exportChat)                         // format=arena|dpo [include_low]
	api.HandleFunc("GET /api/wallet", h.getWallet)
	api.HandleFunc("POST /api/wallet/new", h.newWallet)         // the words, shown once
	api.HandleFunc("POST /api/wallet/confirm", h.confirmWallet) // {words: {position: word}}
	api.HandleFunc("POST /api/wallet/import", h.importWallet)   // core.WalletImport
	api.HandleFunc("GET /api/submissions", h.listSubmissions)
	api.HandleFunc("POST /api/submissions", h.postSubmission) // {kind, dry_run, out_dir}
	api.HandleFunc("POST /api/verify", h.verify)              // {manifest_path, jsonl_path}
	api.HandleFunc("GET /api/uploads", h.listUploads)
	api.HandleFunc("GET /api/uploads/{id}", h.getUpload)          // id: the submission's
	api.HandleFunc("POST /api/uploads/{id}/retry", h.retryUpload) //
	api.HandleFunc("POST /api/uploads/share", h.shareUploads)     // {address, submission_id}
	api.HandleFunc("GET /api/account", h.getAccount)
	api.HandleFunc("GET /api/share", h.getShare)
	api.HandleFunc("POST /api/share/worker", h.startShare) // {pool, max_temp_c, max_power_w, schedule, gpus, pause_for, …}
	api.HandleFunc("DELETE /api/share/worker", h.stopShare)
	api.HandleFunc("/api/", h.notFound)
	api.HandleFunc("GET /ui/nav", h.uiNav)
	api.HandleFunc("GET /ui/section/{id}", h.uiSection)
	api.HandleFunc("GET /ui/jobs", h.uiJobs)
	api.HandleFunc("GET /ui/validate/model", h.uiValidateModel)
	api.HandleFunc("GET /ui/validate/runs", h.uiRuns)
	api.HandleFunc("GET /ui/validate/review/{id}", h.uiReview)
	api.HandleFunc("GET /ui/chat/providers", h.uiChatProviders)
	api.HandleFunc("GET /ui/chat/models", h.uiChatModels)
	api.HandleFunc("GET /ui/chat/battles/{id}", h.uiChatBattle)
	api.HandleFunc("GET /ui/chat/history", h.uiChatHistory)
	api.HandleFunc("GET /ui/chat/leaderboard", h.uiChatLeaderboard)
	api.HandleFunc("GET /ui/submit/wallet", h.uiSubmitWallet)
	api.HandleFunc("GET /ui/submit/list", h.uiSubmitList)
	api.HandleFunc("GET /ui/submit/account", h.uiSubmitAccount)
	api.HandleFunc("GET /ui/submit/share-options", h.uiSubmitShareOptions)
	api.HandleFunc("GET /ui/share/status", h.uiShareStatus)
	api.HandleFunc("/ui/", h.notFound)
	pub.Handle("/api/", s.requireAuth(api))
	pub.Handle("/ui/", s.requireAuth(api))

	return s.securityHeaders(s.checkHost(s.crossOrigin(pub)))
}

// Handler is the complete HTTP handler, security checks included.
func (s *Server) Handler() http.Handler { return s.handler }

// Ready is closed once the server listens.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// URL is the address of the web UI ("http://127.0.0.1:7800/"), valid after Ready.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// LoginURL opens the web UI already signed in: the page reads the key from the fragment,
// which browsers never send to the server, trades it for a session and removes it.
func (s *Server) LoginURL() string { return s.URL() + "#key=" + s.opts.APIKey }

// Serve listens and serves until ctx ends, then shuts down gracefully, waiting up to
// ShutdownDeadline for requests in flight. Event streams end at once.
func (s *Server) Serve(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("listen for the web UI on %s: %w", s.opts.Addr, err)
	}
	scheme := "http"
	if s.tls != nil {
		scheme = "https"
		ln = tls.NewListener(ln, s.tls)
	}
	s.mu.Lock()
	s.url = scheme + "://" + urlHost(ln.Addr()) + "/"
	s.mu.Unlock()

	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.readyOnce.Do(func() { close(s.ready) })
	s.log.Debug("web UI listening", "url", s.URL())

	select {
	case err := <-errc:
		return fmt.Errorf("serve the web UI: %w", err)
	case <-ctx.Done():
	}
	s.quitOnce.Do(func() { close(s.quit) })
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownDeadline)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		<-errc
		return fmt.Errorf("shut down the web UI: %w", err)
	}
	<-errc
	return nil
}

// urlHost is the listen address as a URL host; an unspecified IP becomes loopback, which
// always reaches it from this machine.
func urlHost(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := ta.IP
	if ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(ta.Port))
}
