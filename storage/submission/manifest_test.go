package submission

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/gata-contrib/gata/storage/wallet"
	"github.com/gata-contrib/gata/storage/wallet/etherstest"
)

var update = flag.Bool("update", false, "rewrite testdata/ethers_vectors.json with what ethers computes")

// vectorKey1 is the key of Hardhat's first account; vectorKey2 the key of the
// "abandon … about" mnemonic at m/44'/60'/0'/0/0.
const vectorKey1 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

func vectorKey2() string {
	k, err := wallet.FromMnemonic("abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about")
	if err != nil {
		panic(err)
	}
	return k.ExportHex()
}

func mustKey(t testing.TB, hexKey string) *wallet.Key {
	t.Helper()
	k, err := wallet.FromHex(hexKey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newKey(t testing.TB) *wallet.Key {
	t.Helper()
	var b [32]byte
	for {
		rand.Read(b[:])
		if k, err := wallet.FromHex(hex.EncodeToString(b[:])); err == nil {
			return k
		}
	}
}

// pack writes records as a submission and returns the JSONL and its signed manifest.
func pack(t testing.TB, k *wallet.Key, nonce uint64, recs ...any) ([]byte, Manifest) {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, r := range recs {
		if err := w.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	m := New(KindChat, "gata/test", w.Content(), time.Unix(1767225600, 0), nonce, ChainIDTestnet)
	if err := m.Sign(k); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), m
}

// vector is one manifest with what ethers computes for it: the EIP-712 digest, the
// domain separator, and the signature of the key (deterministic, RFC 6979).
type vector struct {
	Key       string   `json:"key"`
	Manifest  Manifest `json:"manifest"` // without submitter and signature
	Domain    string   `json:"domain_separator"`
	Digest    string   `json:"digest"`
	Signature string   `json:"signature"`
	Address   string   `json:"address"`
}

func vectorInputs() []vector {
	sha := func(s string) string { return hex.EncodeToString(crypto.Keccak256([]byte(s))) }
	return []vector{
		{Key: vectorKey1, Manifest: Manifest{Schema: Schema, Kind: KindChat, Records: 3, Bytes: 1234, SHA256: sha("a"), Created: 1767225600, App: "gata/0.1.0", Nonce: 1, ChainID: ChainIDTestnet}},
		{Key: vectorKey1, Manifest: Manifest{Schema: Schema, Kind: KindDVA, Records: 1, Bytes: 1, SHA256: sha("b"), Created: 0, App: "gata/0.1.0-dev", Nonce: 0, ChainID: ChainIDMainnet}},
		{Key: vectorKey2(), Manifest: Manifest{Schema: Schema, Kind: "dva", Records: maxSafe, Bytes: maxSafe, SHA256: sha("c"), Created: maxSafe, App: "gata/ünïcode — 你好", Nonce: maxSafe, ChainID: 9000}},
		{Key: vectorKey2(), Manifest: Manifest{Schema: Schema, Kind: "chat-v2_x", Records: 0, Bytes: 0, SHA256: hex.EncodeToString(make([]byte, 32)), Created: 1700000000, App: "x", Nonce: 42, ChainID: 1}},
	}
}

// ethersScript computes, for each input, what ethers says about the typed data.
const ethersScript = `
const types = { Submission: [
  { name: "kind", type: "string" }, { name: "contentHash", type: "bytes32" }, { name: "records", type: "uint64" },
  { name: "bytes", type: "uint64" }, { name: "created", type: "uint64" }, { name: "nonce", type: "uint64" },
  { name: "app", type: "string" } ] };
const res = [];
for (const v of input) {
  const m = v.manifest;
  const domain = { name: "Gata Submission", version: "1", chainId: m.chain_id };
  const message = { kind: m.kind, contentHash: "0x" + m.sha256, records: m.records, bytes: m.bytes,
    created: m.created, nonce: m.nonce, app: m.app };
  const r = { domain_separator: ethers.TypedDataEncoder.hashDomain(domain), digest: ethers.TypedDataEncoder.hash(domain, types, message) };
  if (v.key) {
    const w = new ethers.Wallet(v.key);
    r.address = w.address;
    r.signature = await w.signTypedData(domain, types, message);
  }
  if (v.manifest.signature) {
    r.recovered = ethers.verifyTypedData(domain, types, message, v.manifest.signature);
  }
  res.push(r);
}
out(res);
`

type ethersAnswer struct {
	Domain    string `json:"domain_separator"`
	Digest    string `json:"digest"`
	Address   string `json:"address"`
	Signature string `json:"signature"`
	Recovered string `json:"recovered"`
}

// TestEthersVectors checks the digest, the domain separator and the signatures against
// vectors ethers computed (testdata/ethers_vectors.json; -update recomputes them).
func TestEthersVectors(t *testing.T) {
	path := filepath.Join("testdata", "ethers_vectors.json")
	if *update {
		in := vectorInputs()
		var got []ethersAnswer
		etherstest.Run(t, ethersScript, in, &got)
		for i := range in {
			in[i].Domain, in[i].Digest, in[i].Signature, in[i].Address = got[i].Domain, got[i].Digest, got[i].Signature, got[i].Address
		}
		b, err := json.MarshalIndent(in, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read vectors (go test -update writes them with node and ethers): %v", err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) != len(vectorInputs()) {
		t.Fatalf("%s has %d vectors, want %d (run go test -update)", path, len(vs), len(vectorInputs()))
	}
	for i, v := range vs {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if v.Manifest != vectorInputs()[i].Manifest {
				t.Fatalf("vector %d's manifest differs from its input (run go test -update)", i)
			}
			m := v.Manifest
			if got := DomainSeparator(m.ChainID); "0x"+hex.EncodeToString(got[:]) != v.Domain {
				t.Errorf("DomainSeparator(%d) = %x, ethers %s", m.ChainID, got, v.Domain)
			}
			d, err := m.Digest()
			if err != nil {
				t.Fatal(err)
			}
			if "0x"+hex.EncodeToString(d[:]) != v.Digest {
				t.Errorf("Digest = %x, ethers %s", d, v.Digest)
			}
			k := mustKey(t, v.Key)
			if err := m.Sign(k); err != nil {
				t.Fatal(err)
			}
			if m.Signature != v.Signature || m.Submitter != v.Address {
				t.Errorf("Sign = %s by %s, ethers %s by %s", m.Signature, m.Submitter, v.Signature, v.Address)
			}
			theirs := v.Manifest
			theirs.Submitter, theirs.Signature = v.Address, v.Signature
			if a, err := theirs.Signer(); err != nil || a.Hex() != v.Address {
				t.Errorf("Signer of ethers' signature = %s, %v; want %s", a.Hex(), err, v.Address)
			}
		})
	}
}

// TestAgainstEthers signs fresh submissions here and has ethers verify them, and
// the other way round.
func TestAgainstEthers(t *testing.T) {
	var in []vector
	var keys []*wallet.Key
	for i := range 4 {
		k := newKey(t)
		_, m := pack(t, k, uint64(i*1000+7), map[string]any{"i": i, "s": strings.Repeat("é", i)})
		m.App = fmt.Sprintf("gata/%d.%d — test", i, i)
		if err := m.Sign(k); err != nil {
			t.Fatal(err)
		}
		in = append(in, vector{Manifest: m})
		keys = append(keys, k)
	}
	var got []ethersAnswer
	etherstest.Run(t, ethersScript, in, &got)
	for i, v := range in {
		m := v.Manifest
		d, _ := m.Digest()
		if got[i].Digest != "0x"+hex.EncodeToString(d[:]) {
			t.Errorf("manifest %d: Digest %x, ethers %s", i, d, got[i].Digest)
		}
		if got[i].Recovered != keys[i].Address().Hex() {
			t.Errorf("manifest %d: ethers verifyTypedData recovered %s, want %s", i, got[i].Recovered, keys[i].Address().Hex())
		}
	}
}

// The typed data as JSON holds the same values the digest covers.
func TestTypedData(t *testing.T) {
	_, m := pack(t, newKey(t), 5, map[string]int{"a": 1})
	td := m.TypedData()
	msg := td["message"].(map[string]any)
	if msg["contentHash"] != "0x"+m.SHA256 || msg["nonce"] != m.Nonce || td["primaryType"] != "Submission" {
		t.Errorf("TypedData = %v", td)
	}
	if _, err := json.Marshal(td); err != nil {
		t.Error(err)
	}
}

func TestVerify(t *testing.T) {
	k, other := newKey(t), newKey(t)
	file, m := pack(t, k, 7, map[string]any{"battle": "b1", "winner": "model_a"}, map[string]any{"battle": "b2", "winner": "tie"})
	got, err := Verify(m, bytes.NewReader(file))
	if err != nil || got != k.Address() {
		t.Fatalf("Verify = %s, %v; want %s", got.Hex(), err, k.Address().Hex())
	}

	flip := bytes.Clone(file)
	flip[10] ^= 0x01
	// the same records rewritten by another hand: still canonical, another hash
	rewritten := bytes.Replace(file, []byte(`"model_a"`), []byte(`"model_b"`), 1)
	resigned := m
	resigned.Nonce = 8
	_ = resigned.Sign(other) // a valid signature of another wallet …
	resigned.Submitter = m.Submitter
	highS := m
	sig, _ := hex.DecodeString(m.Signature[2:])
	n := crypto.S256().Params().N
	new(big.Int).Sub(n, new(big.Int).SetBytes(sig[32:64])).FillBytes(sig[32:64])
	sig[64] ^= 1
	highS.Signature = "0x" + hex.EncodeToString(sig)
	badV := m
	badV.Signature = m.Signature[:130] + "1d" // v = 29
	zero := m
	zero.Signature = "0x" + strings.Repeat("0", 130)
	short := m
	short.Signature = m.Signature[:len(m.Signature)-2]

	change := func(f func(*Manifest)) Manifest { c := m; f(&c); return c }
	tests := []struct {
		name string
		m    Manifest
		file []byte
		want error
	}{
		{"flipped bit", m, flip, ErrHashMismatch},
		{"rewritten record", m, rewritten, ErrHashMismatch},
		{"line appended", m, append(bytes.Clone(file), "{\"battle\":\"b3\"}\n"...), ErrHashMismatch},
		{"line dropped", m, file[:bytes.IndexByte(file, '\n')+1], ErrHashMismatch},
		{"empty file", m, nil, ErrHashMismatch},
		{"hash updated, not the signature", change(func(c *Manifest) {
			c.SHA256 = sha256Hex(rewritten)
		}), rewritten, ErrWrongSigner},
		{"records changed", change(func(c *Manifest) { c.Records = 3 }), file, ErrSizeMismatch},
		{"bytes changed", change(func(c *Manifest) { c.Bytes++ }), file, ErrSizeMismatch},
		{"nonce changed", change(func(c *Manifest) { c.Nonce = 8 }), file, ErrWrongSigner},
		{"created changed", change(func(c *Manifest) { c.Created++ }), file, ErrWrongSigner},
		{"app changed", change(func(c *Manifest) { c.App = "gata/evil" }), file, ErrWrongSigner},
		{"kind changed", change(func(c *Manifest) { c.Kind = KindDVA }), file, ErrWrongSigner},
		{"chain changed", change(func(c *Manifest) { c.ChainID = ChainIDMainnet }), file, ErrWrongSigner},
		{"wrong signer named", change(func(c *Manifest) { c.Submitter = other.Address().Hex() }), file, ErrWrongSigner},
		{"signed by another wallet", resigned, file, ErrWrongSigner},
		{"high s", highS, file, ErrBadSignature},
		{"v 29", badV, file, ErrBadSignature},
		{"zero signature", zero, file, ErrBadSignature},
		{"short signature", short, file, ErrBadManifest},
		{"no signature", change(func(c *Manifest) { c.Signature = "" }), file, ErrBadManifest},
		{"lower-case submitter", change(func(c *Manifest) { c.Submitter = strings.ToLower(c.Submitter) }), file, ErrBadManifest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Verify(tt.m, bytes.NewReader(tt.file))
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify = %s, %v; want %v", a.Hex(), err, tt.want)
			}
		})
	}

	// Random signatures either recover no key (r off the curve, a high s) or another one.
	for range 20 {
		random := m
		rb := make([]byte, 64)
		rand.Read(rb)
		random.Signature = "0x" + hex.EncodeToString(rb) + "1b"
		if a, err := Verify(random, bytes.NewReader(file)); !errors.Is(err, ErrWrongSigner) && !errors.Is(err, ErrBadSignature) {
			t.Errorf("Verify with a random signature = %s, %v; want ErrWrongSigner or ErrBadSignature", a.Hex(), err)
		}
	}

	// a file whose hash matches but that is not canonical
	var buf bytes.Buffer
	buf.WriteString("{\"b\":1,\"a\":2}\n")
	c, _, _ := scan(bytes.NewReader(buf.Bytes()))
	nm := New(KindChat, "gata/test", c, time.Now(), 1, ChainIDTestnet)
	if err := nm.Sign(k); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(nm, bytes.NewReader(buf.Bytes())); !errors.Is(err, ErrNotCanonical) {
		t.Errorf("Verify of a non-canonical file = %v, want ErrNotCanonical", err)
	}
}

func sha256Hex(b []byte) string {
	c, _, _ := scan(bytes.NewReader(b))
	return hex.EncodeToString(c.SHA256[:])
}

func TestNoncesReplay(t *testing.T) {
	k, other := newKey(t), newKey(t)
	_, m1 := pack(t, k, 1, map[string]int{"a": 1})
	_, m2 := pack(t, k, 2, map[string]int{"a": 2})
	_, again := pack(t, k, 1, map[string]int{"a": 3}) // new content, old nonce
	_, theirs := pack(t, other, 1, map[string]int{"a": 1})
	onMainnet := m1
	onMainnet.ChainID = ChainIDMainnet
	var n Nonces
	for _, m := range []Manifest{m1, m2, theirs, onMainnet} {
		if err := n.Accept(m); err != nil {
			t.Errorf("Accept(nonce %d of %s on %d) = %v", m.Nonce, m.Submitter, m.ChainID, err)
		}
	}
	for _, m := range []Manifest{m1, again, m2} {
		if err := n.Accept(m); !errors.Is(err, ErrReplay) {
			t.Errorf("Accept of a used nonce %d = %v, want ErrReplay", m.Nonce, err)
		}
	}
}

func TestManifestRoundTrip(t *testing.T) {
	_, m := pack(t, newKey(t), 3, map[string]int{"a": 1})
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	var obj map[string]json.RawMessage
	json.Unmarshal(b, &obj)
	for k := range obj {
		keys = append(keys, k)
	}
	if len(keys) != 11 {
		t.Errorf("manifest has %d fields, want 11: %s", len(keys), b)
	}
	got, err := ParseManifest(b)
	if err != nil || got != m {
		t.Fatalf("ParseManifest(Marshal) = %+v, %v; want %+v", got, err, m)
	}
	if !bytes.HasSuffix(b, []byte("}\n")) || !strings.Contains(string(b), "\n  \"app\": \"gata/test\",\n") {
		t.Errorf("Marshal = %s, want indented JSON with sorted keys", b)
	}
	if m.JSONLName() != m.SHA256+".jsonl" || m.ManifestName() != m.SHA256+".manifest.json" {
		t.Errorf("names = %s, %s", m.JSONLName(), m.ManifestName())
	}
	if got, want := m.ObjectName(), "chat/2026/01/"+m.SHA256+".jsonl"; got != want {
		t.Errorf("ObjectName = %s, want %s", got, want)
	}
	unsigned := m
	unsigned.Signature = ""
	if _, err := unsigned.Marshal(); !errors.Is(err, ErrBadManifest) {
		t.Errorf("Marshal of an unsigned manifest = %v", err)
	}
}

func TestParseManifestInvalid(t *testing.T) {
	_, m := pack(t, newKey(t), 3, map[string]int{"a": 1})
	good, _ := m.Marshal()
	var base map[string]any
	json.Unmarshal(good, &base)
	with := func(key string, v any) []byte {
		c := map[string]any{}
		for k, x := range base {
			c[k] = x
		}
		if v == nil {
			delete(c, key)
		} else {
			c[key] = v
		}
		b, _ := json.Marshal(c)
		return b
	}
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "EOF"},
		{"array", []byte("[]"), "cannot unmarshal"},
		{"trailing", append(bytes.Clone(good), "{}"...), "data after"},
		{"unknown field", with("extra", 1), "unknown field"},
		{"missing nonce", with("nonce", nil), `"nonce" is missing`},
		{"missing signature", with("signature", nil), `"signature" is missing`},
		{"schema", with("schema", "gata.submission/v2"), "schema"},
		{"kind upper", with("kind", "Chat"), "kind"},
		{"kind long", with("kind", strings.Repeat("a", 33)), "kind"},
		{"sha upper", with("sha256", strings.ToUpper(m.SHA256)), "sha256"},
		{"sha short", with("sha256", m.SHA256[:62]), "sha256"},
		{"records negative", with("records", -1), "cannot unmarshal"},
		{"records float", with("records", 1.5), "cannot unmarshal"},
		{"records string", with("records", "1"), "cannot unmarshal"},
		{"nonce above 2^53", with("nonce", json.Number("9007199254740992")), "above 2^53-1"},
		{"nonce above 2^64", with("nonce", json.Number("18446744073709551616")), "cannot unmarshal"},
		{"chain 0", with("chain_id", 0), "chain_id"},
		{"app empty", with("app", ""), "app"},
		{"app long", with("app", strings.Repeat("a", 129)), "app"},
		{"submitter lower", with("submitter", strings.ToLower(m.Submitter)), "checksummed"},
		{"submitter bad checksum", with("submitter", "0x"+strings.ToUpper(m.Submitter[2:3])+strings.ToLower(m.Submitter[3:])), "submitter"},
		{"signature upper", with("signature", "0x"+strings.ToUpper(m.Signature[2:])), "signature"},
		{"signature no 0x", with("signature", m.Signature[2:]+"00"), "signature"},
		{"bytes below records", with("bytes", 0), "cannot fit"},
		{"huge", append(bytes.Repeat([]byte(" "), MaxManifestBytes), good...), "more than"},
		{"not utf-8", []byte("{\"app\":\"\xff\"}"), "UTF-8"},
		{"null field", with("kind", json.RawMessage("null")), "is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseManifest(tt.in)
			if !errors.Is(err, ErrBadManifest) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseManifest = %v, want ErrBadManifest with %q", err, tt.want)
			}
		})
	}
}

func FuzzParseManifest(f *testing.F) {
	k := mustKey(f, vectorKey1)
	_, m := pack(f, k, 3, map[string]int{"a": 1})
	good, _ := m.Marshal()
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"schema":"gata.submission/v1","kind":"chat","records":1e2}`))
	f.Add(bytes.Replace(good, []byte(`"nonce": 3`), []byte(`"nonce": 3.0`), 1))
	f.Add(bytes.Replace(good, []byte(`"kind"`), []byte(`"Kind"`), 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			if !errors.Is(err, ErrBadManifest) {
				t.Fatalf("ParseManifest error %v does not wrap ErrBadManifest", err)
			}
			return
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed manifest: %v", err)
		}
		again, err := ParseManifest(out)
		if err != nil || again != m {
			t.Fatalf("ParseManifest(Marshal(m)) = %+v, %v; want %+v", again, err, m)
		}
		if out2, _ := again.Marshal(); !bytes.Equal(out, out2) {
			t.Fatalf("Marshal is not stable: %s vs %s", out, out2)
		}
		// a parsed manifest's signer check never panics, whatever the signature holds
		m.Signer()
	})
}
