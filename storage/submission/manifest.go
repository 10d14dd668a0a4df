// Package submission packs contributions (chat preferences, DVA scores) into a
// canonical JSONL file and a manifest that the contributor's wallet signs as EIP-712
// typed data, so that any Ethereum tool can check who submitted what (DESIGN §5):
//
//	<sha256>.jsonl          one record a line, canonical JSON, each line ending in "\n"
//	<sha256>.manifest.json  {schema, kind, records, bytes, sha256, created, app,
//	                         submitter, nonce, chain_id, signature}
//
// The signature covers the typed data
//
//	domain  {name: "Gata Submission", version: "1", chainId: chain_id}
//	Submission(string kind,bytes32 contentHash,uint64 records,uint64 bytes,uint64 created,uint64 nonce,string app)
//
// with contentHash the sha256 of the JSONL file and created in Unix seconds. Verify
// recomputes the hash and recovers the signer; Nonces refuses a nonce used twice.
package submission

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"

	"github.com/gata-contrib/gata/storage"
	"github.com/gata-contrib/gata/storage/wallet"
)

// Schema is the manifest's schema field.
const Schema = "gata.submission/v1"

// Greenfield EVM chain ids of the public networks (the EIP-712 domain's chainId).
const (
	ChainIDMainnet uint64 = 1017
	ChainIDTestnet uint64 = 5600
)

// Kinds of submission the app makes.
const (
	KindChat = "chat"
	KindDVA  = "dva"
)

// MaxManifestBytes bounds a manifest file (a real one is about 500 bytes).
const MaxManifestBytes = 64 << 10

// maxSafe is JavaScript's Number.MAX_SAFE_INTEGER: manifest numbers stay at or below
// it so that JavaScript tools read them exactly.
const maxSafe = 1<<53 - 1

// Manifest describes and signs one JSONL file.
type Manifest struct {
	Schema    string `json:"schema"`
	Kind      string `json:"kind"`
	Records   uint64 `json:"records"`
	Bytes     uint64 `json:"bytes"`
	SHA256    string `json:"sha256"`  // lower-case hex of the JSONL file's sha256
	Created   uint64 `json:"created"` // Unix seconds
	App       string `json:"app"`     // the app and version that made it, e.g. "gata/0.1.0"
	Submitter string `json:"submitter"`
	Nonce     uint64 `json:"nonce"`
	ChainID   uint64 `json:"chain_id"`
	Signature string `json:"signature"` // 0x + r ‖ s ‖ v, v = 27 or 28
}

// Errors of Verify and ParseManifest that callers branch on.
var (
	ErrBadManifest  = errors.New("bad manifest")
	ErrHashMismatch = errors.New("content hash mismatch")
	ErrSizeMismatch = errors.New("content size mismatch")
	ErrBadSignature = errors.New("bad signature")
	ErrWrongSigner  = errors.New("wrong signer")
	ErrReplay       = errors.New("replayed nonce")
)

var (
	kindRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)
	hashRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
	sigRE  = regexp.MustCompile(`^0x[0-9a-f]{130}$`)
)

// New fills a manifest for content; Sign completes it.
func New(kind, app string, c Content, created time.Time, nonce, chainID uint64) Manifest {
	return Manifest{Schema: Schema, Kind: kind, Records: c.Records, Bytes: c.Bytes, SHA256: hex.EncodeToString(c.SHA256[:]),
		Created: uint64(created.Unix()), App: app, Nonce: nonce, ChainID: chainID}
}

// Signer signs EIP-712 digests; *wallet.Key is one.
type Signer interface {
	Address() common.Address
	SignHash(digest [32]byte) ([]byte, error)
}

// Sign sets Submitter to the signer's address and Signature to its signature over the
// manifest's typed data.
func (m *Manifest) Sign(s Signer) error {
	m.Submitter = s.Address().Hex()
	m.Signature = ""
	if err := m.check(false); err != nil {
		return fmt.Errorf("sign manifest: %w", err)
	}
	d, err := m.Digest()
	if err != nil {
		return fmt.Errorf("sign manifest: %w", err)
	}
	sig, err := s.SignHash(d)
	if err != nil {
		return fmt.Errorf("sign manifest: %w", err)
	}
	m.Signature = "0x" + hex.EncodeToString(sig)
	return nil
}

// Marshal writes the manifest as indented JSON with sorted keys and a final newline.
func (m Manifest) Marshal() ([]byte, error) {
	if err := m.check(true); err != nil {
		return nil, err
	}
	canon, err := Canonical(m)
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, canon, "", "  "); err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// manifestFields has a pointer per field, so that a missing field is told from a zero.
type manifestFields struct {
	Schema    *string `json:"schema"`
	Kind      *string `json:"kind"`
	Records   *uint64 `json:"records"`
	Bytes     *uint64 `json:"bytes"`
	SHA256    *string `json:"sha256"`
	Created   *uint64 `json:"created"`
	App       *string `json:"app"`
	Submitter *string `json:"submitter"`
	Nonce     *uint64 `json:"nonce"`
	ChainID   *uint64 `json:"chain_id"`
	Signature *string `json:"signature"`
}

// ParseManifest reads a manifest strictly: one JSON object with every field, no
// others, and valid values (see Manifest). Errors wrap ErrBadManifest.
func ParseManifest(b []byte) (Manifest, error) {
	bad := func(format string, args ...any) (Manifest, error) {
		return Manifest{}, fmt.Errorf("%w: %s", ErrBadManifest, fmt.Sprintf(format, args...))
	}
	if len(b) > MaxManifestBytes {
		return bad("%d bytes, more than %d", len(b), MaxManifestBytes)
	}
	if !utf8.Valid(b) {
		return bad("not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f manifestFields
	if err := dec.Decode(&f); err != nil {
		return bad("%v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("data after the JSON object")
	}
	fields := []struct {
		name string
		set  bool
	}{
		{"schema", f.Schema != nil}, {"kind", f.Kind != nil}, {"records", f.Records != nil}, {"bytes", f.Bytes != nil},
		{"sha256", f.SHA256 != nil}, {"created", f.Created != nil}, {"app", f.App != nil}, {"submitter", f.Submitter != nil},
		{"nonce", f.Nonce != nil}, {"chain_id", f.ChainID != nil}, {"signature", f.Signature != nil},
	}
	for _, fl := range fields {
		if !fl.set {
			return bad("field %q is missing", fl.name)
		}
	}
	m := Manifest{Schema: *f.Schema, Kind: *f.Kind, Records: *f.Records, Bytes: *f.Bytes, SHA256: *f.SHA256, Created: *f.Created,
		App: *f.App, Submitter: *f.Submitter, Nonce: *f.Nonce, ChainID: *f.ChainID, Signature: *f.Signature}
	if err := m.check(true); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// check validates the fields; the signature too when signed.
func (m Manifest) check(signed bool) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadManifest, fmt.Sprintf(format, args...))
	}
	switch {
	case m.Schema != Schema:
		return bad("schema %q, want %q", m.Schema, Schema)
	case !kindRE.MatchString(m.Kind):
		return bad("kind %q: want a lower-case name of at most 32 characters", m.Kind)
	case !hashRE.MatchString(m.SHA256):
		return bad("sha256 %q: want 64 lower-case hex digits", m.SHA256)
	case m.App == "" || len(m.App) > 128 || !utf8.ValidString(m.App):
		return bad("app %q: want 1 to 128 bytes of UTF-8", m.App)
	case m.Bytes < m.Records:
		return bad("%d records cannot fit in %d bytes", m.Records, m.Bytes)
	case m.ChainID == 0:
		return bad("chain_id is 0")
	}
	for _, n := range []struct {
		name string
		v    uint64
	}{{"records", m.Records}, {"bytes", m.Bytes}, {"created", m.Created}, {"nonce", m.Nonce}, {"chain_id", m.ChainID}} {
		if n.v > maxSafe {
			return bad("%s %d is above 2^53-1", n.name, n.v)
		}
	}
	a, err := wallet.ParseAddress(m.Submitter)
	if err != nil {
		return bad("submitter: %v", err)
	}
	if a.Hex() != m.Submitter {
		return bad("submitter %q is not EIP-55 checksummed (want %s)", m.Submitter, a.Hex())
	}
	if signed && !sigRE.MatchString(m.Signature) {
		return bad("signature: want 0x and 130 lower-case hex digits (r, s, v)")
	}
	return nil
}

// JSONLName and ManifestName are the file names of a submission: <sha256>.jsonl and
// <sha256>.manifest.json.
func (m Manifest) JSONLName() string    { return m.SHA256 + ".jsonl" }
func (m Manifest) ManifestName() string { return m.SHA256 + ".manifest.json" }

// ObjectName is the Greenfield object name of the JSONL file:
// <kind>/<yyyy>/<mm>/<sha256>.jsonl, the month of Created in UTC; the manifest sits
// beside it as <sha256>.manifest.json. storage.ObjectNames makes both names (storage is
// below this package: the wallet this package signs with imports it).
func (m Manifest) ObjectName() string {
	object, _ := storage.ObjectNames(m.Kind, m.SHA256, time.Unix(int64(m.Created), 0))
	return object
}

// Verify checks a submission: the JSONL file's sha256, size and record count against
// the manifest, that the file is canonical, and that the signature recovers to the
// submitter. It returns the signer. Errors wrap ErrBadManifest, ErrHashMismatch,
// ErrSizeMismatch, ErrNotCanonical, ErrBadSignature or ErrWrongSigner.
func Verify(m Manifest, jsonl io.Reader) (common.Address, error) {
	if err := m.check(true); err != nil {
		return common.Address{}, err
	}
	c, notCanonical, err := scan(jsonl)
	if err != nil {
		return common.Address{}, err
	}
	if got := hex.EncodeToString(c.SHA256[:]); got != m.SHA256 {
		return common.Address{}, fmt.Errorf("%w: the manifest says sha256 %s, the file has %s", ErrHashMismatch, m.SHA256, got)
	}
	if c.Bytes != m.Bytes || c.Records != m.Records {
		return common.Address{}, fmt.Errorf("%w: the manifest says %d records in %d bytes, the file has %d in %d",
			ErrSizeMismatch, m.Records, m.Bytes, c.Records, c.Bytes)
	}
	if notCanonical != nil {
		return common.Address{}, notCanonical
	}
	return m.Signer()
}

// Signer recovers the address that signed the manifest and checks it is the submitter.
func (m Manifest) Signer() (common.Address, error) {
	if err := m.check(true); err != nil {
		return common.Address{}, err
	}
	d, err := m.Digest()
	if err != nil {
		return common.Address{}, err
	}
	sig, _ := hex.DecodeString(m.Signature[2:])
	a, err := wallet.Recover(d, sig)
	if err != nil {
		return common.Address{}, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if a.Hex() != m.Submitter {
		return a, fmt.Errorf("%w: signed by %s, the manifest names %s", ErrWrongSigner, a.Hex(), m.Submitter)
	}
	return a, nil
}
