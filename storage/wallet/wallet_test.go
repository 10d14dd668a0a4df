package wallet

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/gata-contrib/gata/storage/wallet/etherstest"
)

// BIP-32's published test vector 1: seed 000102…0f and the private keys along its paths.
func TestBIP32Vector1(t *testing.T) {
	seed, _ := hex.DecodeString("000102030405060708090a0b0c0d0e0f")
	k, chain, err := masterKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(k), "e8f32e723decf4051aefac8e2c93c9c5b214313817cdb01a1494b917c8436b35"; got != want {
		t.Errorf("master key = %s, want %s", got, want)
	}
	if got, want := hex.EncodeToString(chain), "873dff81c02f525623fd1fe5167eac3a55a049de3d314bb42ee227ffed37d508"; got != want {
		t.Errorf("master chain code = %s, want %s", got, want)
	}
	tests := []struct{ path, key string }{
		{"m/0'", "edb2e14f9ee77d26dd93b4ecede8d16ed408ce149b6cd80b0715a2d911a0afea"},
		{"m/0'/1", "3c6cb8d0f6a264c91ea8b5030fadaa8e538b020f0a387421a12de9319dc93368"},
		{"m/0H/1/2H", "cbce0d719ecf7431d88e6a89fa1483e02e35092af60c042b1df2ff59fa424dca"},
		{"m/0'/1/2'/2", "0f479245fb19a38a1954c5c7c0ebab2f9bdfd96a17563ef28a6a4b1a2a764ef4"},
		{"m/0'/1/2'/2/1000000000", "471b76e389e528d6de6d816857e012c5455051cad6660850e58372a6c3e6e7c8"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			priv, err := deriveKey(seed, tt.path)
			if err != nil {
				t.Fatalf("deriveKey(%s): %v", tt.path, err)
			}
			if got := hex.EncodeToString(crypto.FromECDSA(priv)); got != tt.key {
				t.Errorf("deriveKey(%s) = %s, want %s", tt.path, got, tt.key)
			}
		})
	}
}

func TestParsePathErrors(t *testing.T) {
	for _, p := range []string{"", "m", "44'/60'", "m/", "m/x", "m/-1", "m/2147483648", "m/1''", "n/0"} {
		if _, err := parsePath(p); err == nil {
			t.Errorf("parsePath(%q) = nil error, want one", p)
		}
	}
}

// BIP-39's published (Trezor) vectors, passphrase "TREZOR".
func TestBIP39Seeds(t *testing.T) {
	tests := []struct{ mnemonic, seed string }{
		{"abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
			"c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264c1e1c92f2cf141630c7a3c4ab7c81b2f001698e7463b04"},
		{"legal winner thank year wave sausage worth useful legal winner thank yellow",
			"2e8905819b8723fe2c1d161860e5ee1830318dbf49a83bd451cfb8440c28bd6fa457fe1296106559a3c80937a1c1069be3a3a5bd381ee6260e8d9739fce1f607"},
		{strings.Repeat("abandon ", 23) + "art",
			"bda85446c68413707090a52022edd26a1c9462295029f2e60cd7c4f2bbd3097170af7a4d73245cafa9c3cca8d561a7c3de6f5d4a10be8ed2a5e608d68f92fcc8"},
	}
	for _, tt := range tests {
		t.Run(strings.Fields(tt.mnemonic)[0], func(t *testing.T) {
			seed, err := mnemonicSeed(tt.mnemonic, "TREZOR")
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(seed); got != tt.seed {
				t.Errorf("seed = %s, want %s", got, tt.seed)
			}
		})
	}
}

// Addresses at m/44'/60'/0'/0/0 of well-known test mnemonics (the second is the one
// Hardhat and Foundry fund by default).
func TestFromMnemonic(t *testing.T) {
	tests := []struct{ mnemonic, addr, key string }{
		{"abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
			"0x9858EfFD232B4033E47d90003D41EC34EcaEda94", ""},
		{"test test test test test test test test test test test junk",
			"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"},
		{"  Test test TEST\ttest test test\ntest test test test test   junk ",
			"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", ""},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			k, err := FromMnemonic(tt.mnemonic)
			if err != nil {
				t.Fatalf("FromMnemonic: %v", err)
			}
			if got := k.Address().Hex(); got != tt.addr {
				t.Errorf("address = %s, want %s", got, tt.addr)
			}
			if tt.key != "" && k.ExportHex() != tt.key {
				t.Errorf("ExportHex = %s, want %s", k.ExportHex(), tt.key)
			}
		})
	}
	for _, bad := range []string{
		"",
		strings.Repeat("abandon ", 11) + "abandon", // checksum
		strings.Repeat("abandon ", 10) + "about",   // 11 words
		strings.Repeat("abandon ", 11) + "aboutt",  // not a word
		strings.Repeat("abandon ", 23) + "abandon", // 24 words, checksum
		"test test test test test test test test test test test junk junk",
	} {
		if _, err := FromMnemonic(bad); !errors.Is(err, ErrBadMnemonic) {
			t.Errorf("FromMnemonic(%q) = %v, want ErrBadMnemonic", bad, err)
		}
	}
}

func TestNewMnemonic(t *testing.T) {
	a, err := NewMnemonic()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewMnemonic()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Fields(a)); n != MnemonicWords {
		t.Errorf("NewMnemonic has %d words, want %d", n, MnemonicWords)
	}
	if a == b {
		t.Errorf("two NewMnemonic calls gave the same words")
	}
	if !ValidMnemonic(a) {
		t.Errorf("ValidMnemonic(NewMnemonic()) = false")
	}
	ka, err := FromMnemonic(a)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := FromMnemonic(b)
	if ka.Address() == kb.Address() {
		t.Errorf("two mnemonics gave one address")
	}
}

func TestFromHex(t *testing.T) {
	const key = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
	for _, s := range []string{key, "0x" + key, " 0X" + strings.ToUpper(key) + "\n"} {
		k, err := FromHex(s)
		if err != nil {
			t.Fatalf("FromHex(%q): %v", s, err)
		}
		if got := k.Address().Hex(); got != "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266" {
			t.Errorf("FromHex(%q).Address() = %s", s, got)
		}
	}
	n := crypto.S256().Params().N
	for _, s := range []string{"", "0x", key[:62], key + "00", "zz" + key[2:], strings.Repeat("0", 64),
		hex.EncodeToString(n.Bytes()), hex.EncodeToString(new(big.Int).Add(n, big.NewInt(1)).Bytes())} {
		if _, err := FromHex(s); !errors.Is(err, ErrBadKey) {
			t.Errorf("FromHex(%q) = %v, want ErrBadKey", s, err)
		}
	}
}

func newTestKey(t *testing.T) *Key {
	t.Helper()
	priv, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return newKey(priv)
}

func TestKeystoreRoundTrip(t *testing.T) {
	k := newTestKey(t)
	b, err := k.Keystore("pass phrase", LightScryptN)
	if err != nil {
		t.Fatal(err)
	}
	keyHex := strings.TrimPrefix(k.ExportHex(), "0x")
	if bytes.Contains(b, []byte(keyHex)) {
		t.Fatalf("keystore holds the key in plain text")
	}
	got, err := FromKeystore(b, "pass phrase")
	if err != nil {
		t.Fatalf("FromKeystore: %v", err)
	}
	if got.ExportHex() != k.ExportHex() {
		t.Errorf("FromKeystore gave another key")
	}
	if _, err := FromKeystore(b, "wrong"); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("FromKeystore(wrong passphrase) = %v, want ErrWrongPassphrase", err)
	}
	if _, err := FromKeystore([]byte(`{"version":3}`), "pass phrase"); err == nil {
		t.Errorf("FromKeystore(damaged) = nil error")
	}
	if _, err := k.Keystore("", LightScryptN); err == nil {
		t.Errorf("Keystore with an empty passphrase = nil error")
	}
	a, err := keystoreAddress(b)
	if err != nil || a != k.Address() {
		t.Errorf("keystoreAddress = %s, %v; want %s", a.Hex(), err, k.Address().Hex())
	}
}

// The key must not come out of fmt, slog or JSON.
func TestKeyNeverPrinted(t *testing.T) {
	k := newTestKey(t)
	secret := strings.TrimPrefix(k.ExportHex(), "0x")
	d := k.priv.D.String()
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("key", "k", k, "any", any(k))
	slog.New(slog.NewTextHandler(&buf, nil)).Info("key", "k", k)
	j, _ := json.Marshal(map[string]any{"k": k})
	buf.Write(j)
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		fmt.Fprintf(&buf, f+"\n", k)
	}
	fmt.Fprintf(&buf, "%v %+v\n", *k, struct{ K *Key }{k})
	out := buf.String()
	if strings.Contains(strings.ToLower(out), secret) || strings.Contains(out, d) {
		t.Fatalf("the private key was printed:\n%s", out)
	}
	if !strings.Contains(out, k.Address().Hex()) {
		t.Errorf("the address was not printed:\n%s", out)
	}
}

func TestSignRecover(t *testing.T) {
	k := newTestKey(t)
	digest := sha256.Sum256([]byte("gata"))
	sig, err := k.SignHash(digest)
	if err != nil {
		t.Fatal(err)
	}
	if len(sig) != 65 || (sig[64] != 27 && sig[64] != 28) {
		t.Fatalf("SignHash = %x, want 65 bytes ending in 27 or 28", sig)
	}
	got, err := Recover(digest, sig)
	if err != nil || got != k.Address() {
		t.Fatalf("Recover = %s, %v; want %s", got.Hex(), err, k.Address().Hex())
	}
	other := sha256.Sum256([]byte("gatA"))
	if got, err := Recover(other, sig); err == nil && got == k.Address() {
		t.Errorf("Recover of another digest gave the signer")
	}
	n := crypto.S256().Params().N
	highS := bytes.Clone(sig)
	new(big.Int).Sub(n, new(big.Int).SetBytes(sig[32:64])).FillBytes(highS[32:64])
	highS[64] ^= 1 // the same signature with s' = n - s and the other v: valid on the curve, malleable
	tests := []struct {
		name string
		sig  []byte
	}{
		{"short", sig[:64]},
		{"long", append(bytes.Clone(sig), 0)},
		{"v 0", append(bytes.Clone(sig[:64]), 0)},
		{"v 29", append(bytes.Clone(sig[:64]), 29)},
		{"zero r", append(make([]byte, 32), sig[32:]...)},
		{"zero s", append(append(bytes.Clone(sig[:32]), make([]byte, 32)...), sig[64])},
		{"high s", highS},
		{"r = n", append(n.FillBytes(make([]byte, 32)), sig[32:]...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if a, err := Recover(digest, tt.sig); !errors.Is(err, ErrBadSignature) {
				t.Errorf("Recover = %s, %v; want ErrBadSignature", a.Hex(), err)
			}
		})
	}
}

func TestParseAddress(t *testing.T) {
	const good = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
	for _, s := range []string{good, strings.ToLower(good), "0x" + strings.ToUpper(good[2:])} {
		a, err := ParseAddress(s)
		if err != nil || a.Hex() != good {
			t.Errorf("ParseAddress(%q) = %s, %v; want %s", s, a.Hex(), err, good)
		}
	}
	for _, s := range []string{"", good[2:], good[:41], good + "0", "0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "0xg39fd6e51aad88f6f4ce6ab8827279cfffb92266"} {
		if _, err := ParseAddress(s); err == nil {
			t.Errorf("ParseAddress(%q) = nil error", s)
		}
	}
}

// The same derivation, keystores and signatures through ethers, an independent implementation.
func TestAgainstEthers(t *testing.T) {
	type vector struct {
		Mnemonic string `json:"mnemonic"`
		Digest   string `json:"digest"`
		Keystore string `json:"keystore"`
	}
	var in []vector
	var keys []*Key
	for i := range 3 {
		m, err := NewMnemonic()
		if err != nil {
			t.Fatal(err)
		}
		k, err := FromMnemonic(m)
		if err != nil {
			t.Fatal(err)
		}
		var d [32]byte
		rand.Read(d[:])
		ks, err := k.Keystore(fmt.Sprintf("pass %d", i), LightScryptN)
		if err != nil {
			t.Fatal(err)
		}
		in = append(in, vector{Mnemonic: m, Digest: "0x" + hex.EncodeToString(d[:]), Keystore: string(ks)})
		keys = append(keys, k)
	}
	var got []struct {
		Address    string `json:"address"`
		PrivateKey string `json:"privateKey"`
		Signature  string `json:"signature"`
		Opened     string `json:"opened"`
		Theirs     string `json:"theirs"`
	}
	etherstest.Run(t, `
const res = [];
for (const [i, v] of input.entries()) {
  const w = ethers.HDNodeWallet.fromPhrase(v.mnemonic, "", "m/44'/60'/0'/0/0");
  const opened = ethers.Wallet.fromEncryptedJsonSync(v.keystore, "pass " + i);
  const theirs = w.encryptSync("theirs " + i, { scrypt: { N: 4096 } });
  res.push({ address: w.address, privateKey: w.privateKey, signature: w.signingKey.sign(v.digest).serialized,
    opened: opened.address, theirs });
}
out(res);
`, in, &got)
	if len(got) != len(in) {
		t.Fatalf("ethers answered %d vectors, want %d", len(got), len(in))
	}
	for i, k := range keys {
		g := got[i]
		if g.Address != k.Address().Hex() || g.PrivateKey != k.ExportHex() {
			t.Errorf("vector %d: ethers derived %s, we %s", i, g.Address, k.Address().Hex())
		}
		if g.Opened != k.Address().Hex() {
			t.Errorf("vector %d: ethers opened our keystore as %s, want %s", i, g.Opened, k.Address().Hex())
		}
		var d [32]byte
		hex.Decode(d[:], []byte(in[i].Digest[2:]))
		sig, _ := k.SignHash(d)
		if g.Signature != "0x"+hex.EncodeToString(sig) {
			t.Errorf("vector %d: ethers signed %s, we %x (both RFC 6979, so they must match)", i, g.Signature, sig)
		}
		theirs, err := FromKeystore([]byte(g.Theirs), fmt.Sprintf("theirs %d", i))
		if err != nil || theirs.Address() != k.Address() {
			t.Errorf("vector %d: opening ethers' keystore = %v, %v", i, theirs, err)
		}
	}
}
