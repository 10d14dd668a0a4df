package pool

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// DefaultListen is where the embedded NATS server listens unless told otherwise.
const DefaultListen = "127.0.0.1:4222"

// TokenChecker says whether a worker credential (as `gata pool invite` issued it) is
// valid; the ledger keeps only the sha256 of each.
type TokenChecker interface {
	PoolInviteValid(ctx context.Context, tokenSHA256 string) (bool, error)
}

// NewToken makes a worker credential and returns it with the hex sha256 to keep.
func NewToken() (token, sum string, err error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("make worker credential: %w", err)
	}
	token = "gw_" + hex.EncodeToString(b[:])
	return token, TokenSHA256(token), nil
}

// TokenSHA256 is the hex sha256 of a credential.
func TokenSHA256(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// ServerOptions configure the embedded NATS server.
type ServerOptions struct {
	// Listen is host:port; port 0 picks a free one. Default DefaultListen.
	Listen string
	// StoreDir holds JetStream's files.
	StoreDir string
	// TLSCertFile and TLSKeyFile are required when Listen is not a loopback address, and
	// used on loopback too when given.
	TLSCertFile, TLSKeyFile string
	// Tokens checks worker credentials.
	Tokens TokenChecker
	Logger *slog.Logger
}

// Server is an embedded NATS server with JetStream whose clients are the pool itself
// (an in-process connection with a secret of this process) and workers holding a
// credential from `gata pool invite`, who may only take jobs, read images and publish
// results.
type Server struct {
	ns       *server.Server
	internal string
	tls      bool
	mu       sync.Mutex
	valid    map[string]time.Time // credential sha256 → when it was last found valid
	tokens   TokenChecker
	log      *slog.Logger
}

// workerPermissions let a worker pull jobs, ack them, read the images bucket and publish
// results, and nothing that changes streams, consumers, objects or jobs.
func workerPermissions() *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{
			Allow: []string{"$JS.API.>", "$JS.ACK.>", ResultsSubjectPrefix + ">", "$JS.FC.>"},
			Deny: []string{JobsSubjectPrefix + ">", "$O.>", "$JS.API.STREAM.CREATE.>", "$JS.API.STREAM.UPDATE.>",
				"$JS.API.STREAM.DELETE.>", "$JS.API.STREAM.PURGE.>", "$JS.API.STREAM.MSG.DELETE.>",
				"$JS.API.CONSUMER.DELETE." + JobsStream + ".>", "$JS.API.CONSUMER.DELETE." + ResultsStream + ".>",
				"$JS.API.CONSUMER.CREATE." + JobsStream + ".>",
				"$JS.API.CONSUMER.DURABLE.CREATE." + JobsStream + ".>", "$JS.API.CONSUMER.CREATE." + ResultsStream + ".>",
				"$JS.API.CONSUMER.DURABLE.CREATE." + ResultsStream + ".>", "$JS.API.CONSUMER.MSG.NEXT." + ResultsStream + ".>"},
		},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>", CreditsSubjectPrefix + "*"}},
	}
}

// Check authenticates a client (nats-server's custom authentication hook).
func (s *Server) Check(c server.ClientAuthentication) bool {
	tok := c.GetOpts().Token
	if tok == "" {
		return false
	}
	if subtle.ConstantTimeCompare([]byte(tok), []byte(s.internal)) == 1 {
		c.RegisterUser(&server.User{Username: "pool"})
		return true
	}
	if s.tokens == nil {
		return false
	}
	sum := TokenSHA256(tok)
	s.mu.Lock()
	seen, ok := s.valid[sum]
	s.mu.Unlock()
	if !ok || time.Since(seen) > 30*time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		v, err := s.tokens.PoolInviteValid(ctx, sum)
		if err != nil {
			s.log.Warn("check a worker credential", "err", err)
			return false
		}
		if !v {
			s.mu.Lock()
			delete(s.valid, sum)
			s.mu.Unlock()
			return false
		}
		s.mu.Lock()
		s.valid[sum] = time.Now()
		s.mu.Unlock()
	}
	c.RegisterUser(&server.User{Username: "worker-" + sum[:8], Permissions: workerPermissions()})
	return true
}

// isLoopback reports whether host is a loopback address or localhost.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// StartServer starts the embedded NATS server and waits until it takes connections.
func StartServer(o ServerOptions) (*Server, error) {
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	host, portStr, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("pool address %q: %w", o.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("pool address %q: bad port", o.Listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("start pool server: %w", err)
	}
	s := &Server{internal: hex.EncodeToString(b[:]), valid: map[string]time.Time{}, tokens: o.Tokens, log: o.Logger}
	if err := os.MkdirAll(o.StoreDir, 0o700); err != nil {
		return nil, fmt.Errorf("create JetStream folder: %w", err)
	}
	sopts := &server.Options{
		ServerName: "gata-pool", Host: host, Port: port, JetStream: true, StoreDir: o.StoreDir,
		NoSigs: true, NoLog: true, MaxPayload: 8 << 20, CustomClientAuthentication: s,
		JetStreamMaxMemory: 256 << 20,
	}
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		return nil, errors.New("a TLS certificate needs its key and a key its certificate (--tls-cert with --tls-key)")
	}
	if !isLoopback(host) && o.TLSCertFile == "" {
		return nil, fmt.Errorf("pool address %s is not loopback: a TLS certificate and key are required (--tls-cert, --tls-key)", o.Listen)
	}
	if o.TLSCertFile != "" { // required beyond loopback, and used on loopback when given
		cert, err := tls.LoadX509KeyPair(o.TLSCertFile, o.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("load TLS certificate: %w", err)
		}
		sopts.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		sopts.TLS = true
		s.tls = true
	}
	ns, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("start pool server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(15 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("start pool server: not ready after 15 s")
	}
	s.ns = ns
	return s, nil
}

// URL is the address workers connect to (nats:// or tls://), without a credential.
func (s *Server) URL() string {
	u := s.ns.ClientURL()
	if s.tls && strings.HasPrefix(u, "nats://") {
		u = "tls://" + strings.TrimPrefix(u, "nats://")
	}
	return u
}

// Connect opens the pool's own in-process connection.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.InProcessServer(s.ns), nats.Token(s.internal), nats.Name("gata-pool")}, opts...)
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to the pool server: %w", err)
	}
	return nc, nil
}

// Clients is the number of client connections.
func (s *Server) Clients() int { return s.ns.NumClients() }

// Shutdown stops the server and waits for it.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// StoreDir is where JetStream keeps its files under a pool's data folder.
func StoreDir(dataDir string) string { return filepath.Join(dataDir, "pool", "nats") }
