// Package wallet is the contributor's key: a secp256k1 private key with an
// Ethereum-style address (the key BNB Greenfield accounts use), made from 24 BIP-39
// words along the BIP-44 path m/44'/60'/0'/0/0, or imported from words or a hex
// private key. It signs 32-byte digests (EIP-712 hashes of submissions) and exports the
// key, on request only, as hex or an Ethereum V3 keystore.
//
// A Key never shows its private key through fmt, slog or JSON: String, GoString,
// LogValue and MarshalJSON give the address only. ExportHex and Keystore are the only
// ways the key leaves the process. Store keeps it in the OS keyring, or in a V3
// keystore file in the data dir where no keyring service runs.
package wallet

import (
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strconv"
	"strings"

	"github.com/cosmos/go-bip39"
	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"
	"golang.org/x/text/unicode/norm"
)

// DerivationPath is the BIP-44 path of the wallet's key: the first account of coin
// type 60 (Ethereum), as MetaMask, Trust Wallet and Greenfield's tools derive it.
const DerivationPath = "m/44'/60'/0'/0/0"

// MnemonicWords is the length of the mnemonics NewMnemonic makes (256 bits of entropy).
const MnemonicWords = 24

// Scrypt costs of the V3 keystores Keystore writes: StandardScryptN is geth's default
// (256 MiB, about a second); LightScryptN is geth's light setting (4 MiB), for tests.
const (
	StandardScryptN = keystore.StandardScryptN
	LightScryptN    = keystore.LightScryptN
)

// ErrBadMnemonic is returned for words that are not a valid BIP-39 English mnemonic.
var ErrBadMnemonic = errors.New("not a valid BIP-39 mnemonic (12, 15, 18, 21 or 24 English words with a matching checksum)")

// ErrBadKey is returned for a private key that is not 32 bytes of hex inside the curve's order.
var ErrBadKey = errors.New("not a secp256k1 private key (64 hex digits, optionally 0x-prefixed)")

// Key is a secp256k1 private key and its address.
type Key struct {
	priv *ecdsa.PrivateKey
	addr common.Address
}

func newKey(priv *ecdsa.PrivateKey) *Key {
	return &Key{priv: priv, addr: crypto.PubkeyToAddress(priv.PublicKey)}
}

// NewMnemonic returns MnemonicWords fresh BIP-39 English words from the system's
// random source. Show them to the user once; FromMnemonic turns them into the key.
func NewMnemonic() (string, error) {
	entropy, err := bip39.NewEntropy(256)
	if err != nil {
		return "", fmt.Errorf("make mnemonic: %w", err)
	}
	m, err := bip39.NewMnemonic(entropy)
	if err != nil {
		return "", fmt.Errorf("make mnemonic: %w", err)
	}
	return m, nil
}

// NormalizeMnemonic lower-cases the words and joins them with single spaces, so that
// words pasted with extra spaces, line breaks or capitals are accepted.
func NormalizeMnemonic(m string) string {
	return strings.Join(strings.Fields(strings.ToLower(norm.NFKD.String(m))), " ")
}

// ValidMnemonic reports whether m (after NormalizeMnemonic) is a valid BIP-39 English mnemonic.
func ValidMnemonic(m string) bool { return bip39.IsMnemonicValid(NormalizeMnemonic(m)) }

// FromMnemonic derives the key at DerivationPath from a BIP-39 mnemonic without a
// passphrase, or returns ErrBadMnemonic.
func FromMnemonic(mnemonic string) (*Key, error) {
	seed, err := mnemonicSeed(mnemonic, "")
	if err != nil {
		return nil, err
	}
	priv, err := deriveKey(seed, DerivationPath)
	if err != nil {
		return nil, fmt.Errorf("derive wallet key: %w", err)
	}
	return newKey(priv), nil
}

// mnemonicSeed is BIP-39's seed: PBKDF2-HMAC-SHA512 of the NFKD words with the salt
// "mnemonic" + NFKD passphrase, 2048 rounds, after checking the words and checksum.
func mnemonicSeed(mnemonic, passphrase string) ([]byte, error) {
	m := NormalizeMnemonic(mnemonic)
	if !bip39.IsMnemonicValid(m) {
		return nil, ErrBadMnemonic
	}
	seed, err := bip39.NewSeedWithErrorChecking(m, norm.NFKD.String(passphrase))
	if err != nil {
		return nil, ErrBadMnemonic
	}
	return seed, nil
}

// FromHex parses a private key of 64 hex digits, with or without "0x", or returns ErrBadKey.
func FromHex(s string) (*Key, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return nil, ErrBadKey
	}
	priv, err := crypto.ToECDSA(b)
	if err != nil {
		return nil, ErrBadKey
	}
	return newKey(priv), nil
}

// FromKeystore decrypts an Ethereum V3 keystore (as geth, MetaMask or ethers write
// it) with its passphrase.
func FromKeystore(keyJSON []byte, passphrase string) (*Key, error) {
	k, err := keystore.DecryptKey(keyJSON, passphrase)
	if errors.Is(err, keystore.ErrDecrypt) {
		return nil, ErrWrongPassphrase
	}
	if err != nil {
		return nil, fmt.Errorf("open keystore: %w", err)
	}
	return newKey(k.PrivateKey), nil
}

// Address is the key's address.
func (k *Key) Address() common.Address { return k.addr }

// String shows the address only.
func (k *Key) String() string { return "wallet " + k.addr.Hex() }

// GoString shows the address only, so %#v cannot print the key either.
func (k *Key) GoString() string { return k.String() }

// LogValue logs the address only.
func (k *Key) LogValue() slog.Value { return slog.StringValue(k.addr.Hex()) }

// MarshalJSON writes the address only.
func (k *Key) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(k.addr.Hex())), nil }

// ExportHex returns the private key as "0x" and 64 hex digits: the explicit export.
func (k *Key) ExportHex() string { return "0x" + hex.EncodeToString(crypto.FromECDSA(k.priv)) }

// Keystore encrypts the key as an Ethereum V3 keystore (scrypt with cost scryptN, p = 1,
// AES-128-CTR, Keccak-256 MAC) that geth, MetaMask and ethers open with passphrase.
func (k *Key) Keystore(passphrase string, scryptN int) ([]byte, error) {
	if passphrase == "" {
		return nil, errors.New("write keystore: the passphrase is empty")
	}
	id, err := uuid.NewRandom()
	if err != nil {
		return nil, fmt.Errorf("write keystore: %w", err)
	}
	b, err := keystore.EncryptKey(&keystore.Key{Id: id, Address: k.addr, PrivateKey: k.priv}, passphrase, scryptN, keystore.StandardScryptP)
	if err != nil {
		return nil, fmt.Errorf("write keystore: %w", err)
	}
	return b, nil
}

// SignHash signs a 32-byte digest: 65 bytes r ‖ s ‖ v with a low s and v = 27 or 28,
// the form Ethereum tools (eth_signTypedData, ethers) produce and accept.
func (k *Key) SignHash(digest [32]byte) ([]byte, error) {
	sig, err := crypto.Sign(digest[:], k.priv)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	sig[64] += 27
	return sig, nil
}

// ErrBadSignature is returned by Recover for a signature that is not 65 bytes r ‖ s ‖ v
// with r and s in range, a low s and v = 27 or 28, or that matches no public key.
var ErrBadSignature = errors.New("malformed signature")

// Recover returns the address whose key made sig over digest.
func Recover(digest [32]byte, sig []byte) (common.Address, error) {
	if len(sig) != 65 {
		return common.Address{}, fmt.Errorf("%w: %d bytes, want 65", ErrBadSignature, len(sig))
	}
	v := sig[64]
	if v != 27 && v != 28 {
		return common.Address{}, fmt.Errorf("%w: v = %d, want 27 or 28", ErrBadSignature, v)
	}
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:64])
	if !crypto.ValidateSignatureValues(v-27, r, s, true) {
		return common.Address{}, fmt.Errorf("%w: r or s out of range (or a high s)", ErrBadSignature)
	}
	raw := make([]byte, 65)
	copy(raw, sig)
	raw[64] = v - 27
	pub, err := crypto.SigToPub(digest[:], raw)
	if err != nil {
		return common.Address{}, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return crypto.PubkeyToAddress(*pub), nil
}

// ParseAddress parses a 0x-prefixed 40-digit hex address. An address with mixed case
// must carry a valid EIP-55 checksum; all lower or all upper case is accepted as is.
func ParseAddress(s string) (common.Address, error) {
	if len(s) != 42 || !strings.HasPrefix(s, "0x") || !common.IsHexAddress(s) {
		return common.Address{}, fmt.Errorf("address %q: want 0x and 40 hex digits", s)
	}
	a := common.HexToAddress(s)
	digits := s[2:]
	if digits != strings.ToLower(digits) && digits != strings.ToUpper(digits) && a.Hex() != s {
		return common.Address{}, fmt.Errorf("address %q: wrong EIP-55 checksum (want %s)", s, a.Hex())
	}
	return a, nil
}

// hardened is the first hardened child index of BIP-32 (written i' in paths).
const hardened = 1 << 31

// parsePath reads a BIP-32 path "m/a/b'/…" into child indexes.
func parsePath(path string) ([]uint32, error) {
	parts := strings.Split(path, "/")
	if len(parts) < 2 || parts[0] != "m" {
		return nil, fmt.Errorf("derivation path %q: want m/…", path)
	}
	out := make([]uint32, 0, len(parts)-1)
	for _, p := range parts[1:] {
		h := strings.HasSuffix(p, "'") || strings.HasSuffix(p, "H")
		if h {
			p = p[:len(p)-1]
		}
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil || n >= hardened {
			return nil, fmt.Errorf("derivation path %q: bad index %q", path, p)
		}
		if h {
			n += hardened
		}
		out = append(out, uint32(n))
	}
	return out, nil
}

// deriveKey walks BIP-32's private derivation (CKDpriv) from the master key of seed
// along path.
func deriveKey(seed []byte, path string) (*ecdsa.PrivateKey, error) {
	idx, err := parsePath(path)
	if err != nil {
		return nil, err
	}
	k, chain, err := masterKey(seed)
	if err != nil {
		return nil, err
	}
	for _, i := range idx {
		if k, chain, err = childKey(k, chain, i); err != nil {
			return nil, err
		}
	}
	return crypto.ToECDSA(k)
}

// masterKey is BIP-32's master key and chain code: HMAC-SHA512 keyed "Bitcoin seed".
func masterKey(seed []byte) (key, chain []byte, err error) {
	mac := hmac.New(sha512.New, []byte("Bitcoin seed"))
	mac.Write(seed)
	sum := mac.Sum(nil)
	il := new(big.Int).SetBytes(sum[:32])
	if il.Sign() == 0 || il.Cmp(crypto.S256().Params().N) >= 0 {
		return nil, nil, errors.New("derive master key: invalid seed")
	}
	return sum[:32], sum[32:], nil
}

// childKey is CKDpriv((k, c), i): HMAC-SHA512 keyed by the chain code over
// 0x00 ‖ k ‖ i for a hardened i, or over the compressed public key ‖ i otherwise;
// the child key is (IL + k) mod n.
func childKey(k, chain []byte, i uint32) (key, childChain []byte, err error) {
	mac := hmac.New(sha512.New, chain)
	if i >= hardened {
		mac.Write([]byte{0})
		mac.Write(k)
	} else {
		priv, err := crypto.ToECDSA(k)
		if err != nil {
			return nil, nil, fmt.Errorf("derive child %d: %w", i, err)
		}
		mac.Write(crypto.CompressPubkey(&priv.PublicKey))
	}
	var ib [4]byte
	binary.BigEndian.PutUint32(ib[:], i)
	mac.Write(ib[:])
	sum := mac.Sum(nil)
	n := crypto.S256().Params().N
	il := new(big.Int).SetBytes(sum[:32])
	if il.Cmp(n) >= 0 {
		return nil, nil, fmt.Errorf("derive child %d: invalid key, use the next index", i)
	}
	child := il.Add(il, new(big.Int).SetBytes(k))
	child.Mod(child, n)
	if child.Sign() == 0 {
		return nil, nil, fmt.Errorf("derive child %d: invalid key, use the next index", i)
	}
	return child.FillBytes(make([]byte, 32)), sum[32:], nil
}
