package pool_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gata-contrib/gata/agent"
	"github.com/gata-contrib/gata/dva/pipeline"
)

// testCA writes a CA and a certificate it signed for 127.0.0.1 into dir, as PEM files.
func testCA(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caKey, leafKey := newKey(), newKey()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pool test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "pool"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("pool.pem", "CERTIFICATE", leafDER), write("pool.key", "EC PRIVATE KEY", keyDER)
}

// TestWorkersOverTLS: a pool with a certificate speaks TLS only; workers that trust its CA
// do the run, a client that does not trust it, or speaks plain NATS, gets nowhere.
func TestWorkersOverTLS(t *testing.T) {
	caFile, certFile, keyFile := testCA(t, t.TempDir())
	src := memSource{name: "mem://tls", n: 48}
	r := newRigOf(t, []pipeline.Source{src}, []string{src.name})
	o := simOptions(13)
	o.TLSCertFile, o.TLSKeyFile = certFile, keyFile
	r.start(o)
	url := r.pool.URL()
	if !strings.HasPrefix(url, "tls://127.0.0.1:") {
		t.Fatalf("pool URL %s, want tls://", url)
	}
	for _, c := range []struct{ name, url string }{
		{"TLS with only the system's CAs", url},
		{"plain NATS", "nats://" + strings.TrimPrefix(url, "tls://")},
	} {
		if nc, err := nats.Connect(c.url, nats.Token(r.token), nats.MaxReconnects(0), nats.Timeout(5*time.Second)); err == nil {
			nc.Close()
			t.Errorf("%s: a client connected to %s", c.name, c.url)
		}
	}
	for i := range 2 {
		s := newSimScorer(2e-3, 20*time.Microsecond, uint64(400+i))
		r.startWorker(agent.Options{URL: url, TLSCAFile: caFile, Engine: func(ctx context.Context, model, sha string) (pipeline.Scorer, string, error) {
			return s, "cpu (simulated)", nil
		}})
	}
	r.wait(2 * time.Minute)
	r.checkOutputs(src, 5e-3)
}
