package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// contentSecurityPolicy allows only the page's own files: no inline script or style, no
// framing by anyone.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"

// securityHeaders sets the headers every response carries, errors included.
func (s *Server) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, "/ui/") {
			h.Set("Cache-Control", "no-store")
		}
		if s.tls != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// checkHost refuses, on a loopback address, requests whose Host is not a loopback name:
// a page on another site whose DNS name was rebound to 127.0.0.1 sends its own Host.
func (s *Server) checkHost(next http.Handler) http.Handler {
	if !s.loopback {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		switch strings.ToLower(strings.Trim(host, "[]")) {
		case "localhost", "127.0.0.1", "::1":
			next.ServeHTTP(w, r)
		default:
			writeError(w, http.StatusForbidden, "host "+r.Host+" is not allowed; open the web UI at localhost or 127.0.0.1")
		}
	})
}

// crossOrigin refuses unsafe requests sent by another site (Sec-Fetch-Site, else Origin
// against Host), so a page elsewhere cannot post to the UI with the user's cookie.
func (s *Server) crossOrigin(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "cross-origin request refused")
	}))
	return cop.Handler(next)
}

// Session cookie and CSRF header names.
const (
	csrfHeader = "X-CSRF-Token"
	maxSession = 7 * 24 * time.Hour
	maxLive    = 256 // sessions kept; the oldest goes first
)

// sessions are the browser sessions, kept in memory: a restart signs browsers out, and
// they sign in again with the login URL the app prints.
type sessions struct {
	cookie string // cookie name, distinct per API key so two instances on localhost do not clash
	mu     sync.Mutex
	live   map[string]session
	now    func() time.Time
}

type session struct {
	csrf    string
	expires time.Time
}

func newSessions(apiKey string) *sessions {
	sum := sha256.Sum256([]byte("gata-session-cookie:" + apiKey))
	return &sessions{cookie: "gata_session_" + hex.EncodeToString(sum[:4]), live: map[string]session{}, now: time.Now}
}

func randomToken() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// create starts a session and returns its ID and CSRF token.
func (ss *sessions) create() (id, csrf string, expires time.Time) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.now()
	for k, v := range ss.live {
		if now.After(v.expires) {
			delete(ss.live, k)
		}
	}
	for len(ss.live) >= maxLive {
		var oldest string
		for k, v := range ss.live {
			if oldest == "" || v.expires.Before(ss.live[oldest].expires) {
				oldest = k
			}
		}
		delete(ss.live, oldest)
	}
	id, csrf, expires = randomToken(), randomToken(), now.Add(maxSession)
	ss.live[id] = session{csrf: csrf, expires: expires}
	return id, csrf, expires
}

// lookup returns the session named by the request's cookie.
func (ss *sessions) lookup(r *http.Request) (id string, s session, ok bool) {
	c, err := r.Cookie(ss.cookie)
	if err != nil {
		return "", session{}, false
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok = ss.live[c.Value]
	if !ok || ss.now().After(s.expires) {
		return "", session{}, false
	}
	return c.Value, s, true
}

func (ss *sessions) remove(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.live, id)
}

func equalSecret(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// keyOK reports whether the request carries the API key (X-API-Key or a bearer token).
func (s *Server) keyOK(r *http.Request) bool {
	k := r.Header.Get("X-API-Key")
	if k == "" {
		if b, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			k = strings.TrimSpace(b)
		}
	}
	return k != "" && equalSecret(k, s.opts.APIKey)
}

type ctxKey struct{}

// requireAuth lets through API clients with the key, and browser sessions whose unsafe
// requests carry the session's CSRF token.
func (s *Server) requireAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.keyOK(r) {
			next.ServeHTTP(w, r)
			return
		}
		id, sess, ok := s.sessions.lookup(r)
		if !ok {
			s.unauthorized(w)
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			if t := r.Header.Get(csrfHeader); t == "" || !equalSecret(t, sess.csrf) {
				writeError(w, http.StatusForbidden, "missing or wrong CSRF token")
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, id)))
	})
}

// unauthorized answers 401 and tells the page which way in it has.
func (s *Server) unauthorized(w http.ResponseWriter) {
	writeJSON(w, http.StatusUnauthorized, map[string]any{
		"error":          "not signed in: send the API key (X-API-Key or Authorization: Bearer) or open the login URL the app printed",
		"password_login": s.opts.Password != "",
	})
}

// sessionReply is what the page gets when it signs in.
type sessionReply struct {
	CSRFToken string `json:"csrf_token"`
}

func (s *Server) startSession(w http.ResponseWriter) {
	id, csrf, expires := s.sessions.create()
	http.SetCookie(w, &http.Cookie{
		Name: s.sessions.cookie, Value: id, Path: "/", Expires: expires,
		HttpOnly: true, Secure: s.tls != nil, SameSite: http.SameSiteStrictMode,
	})
	writeJSON(w, http.StatusOK, sessionReply{CSRFToken: csrf})
}

// postSession trades the API key (from the login URL's fragment) for a browser session.
func (s *Server) postSession(w http.ResponseWriter, r *http.Request) {
	if !s.keyOK(r) {
		s.unauthorized(w)
		return
	}
	s.startSession(w)
}

// getSession returns the CSRF token of the caller's browser session, so a reloaded page
// or a new tab can go on. Other sites cannot read it (no CORS, Host checked).
func (s *Server) getSession(w http.ResponseWriter, r *http.Request) {
	if _, sess, ok := s.sessions.lookup(r); ok {
		writeJSON(w, http.StatusOK, sessionReply{CSRFToken: sess.csrf})
		return
	}
	writeJSON(w, http.StatusOK, sessionReply{}) // an API client: no session, no token needed
}

// deleteSession signs the browser out.
func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request) {
	if id, ok := r.Context().Value(ctxKey{}).(string); ok {
		s.sessions.remove(id)
	}
	http.SetCookie(w, &http.Cookie{Name: s.sessions.cookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.tls != nil, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

// loginFailDelay slows down password guessing; attempts are checked one at a time.
const loginFailDelay = 500 * time.Millisecond

// postLogin trades the password (the login form, for non-loopback addresses) for a session.
func (s *Server) postLogin(w http.ResponseWriter, r *http.Request) {
	if s.opts.Password == "" {
		writeError(w, http.StatusNotFound, "password login is off; open the login URL the app printed")
		return
	}
	var req struct {
		Password string `json:"password"`
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "read login: "+err.Error())
		return
	}
	select {
	case s.login <- struct{}{}:
		defer func() { <-s.login }()
	case <-r.Context().Done():
		return
	}
	if !equalSecret(req.Password, s.opts.Password) {
		time.Sleep(loginFailDelay)
		writeError(w, http.StatusUnauthorized, "wrong password")
		return
	}
	s.startSession(w)
}
