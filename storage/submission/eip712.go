package submission

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/ethereum/go-ethereum/crypto"
)

// The EIP-712 domain and primary type of a submission's signature.
const (
	DomainName    = "Gata Submission"
	DomainVersion = "1"
	DomainType    = "EIP712Domain(string name,string version,uint256 chainId)"
	PrimaryType   = "Submission(string kind,bytes32 contentHash,uint64 records,uint64 bytes,uint64 created,uint64 nonce,string app)"
)

var (
	domainTypeHash  = crypto.Keccak256([]byte(DomainType))
	primaryTypeHash = crypto.Keccak256([]byte(PrimaryType))
)

// word is a uint64 as a 32-byte big-endian ABI word (uint64 and uint256 encode alike).
func word(v uint64) []byte {
	w := make([]byte, 32)
	binary.BigEndian.PutUint64(w[24:], v)
	return w
}

// DomainSeparator is hashStruct(EIP712Domain{name, version, chainId}).
func DomainSeparator(chainID uint64) [32]byte {
	return [32]byte(crypto.Keccak256(domainTypeHash, crypto.Keccak256([]byte(DomainName)), crypto.Keccak256([]byte(DomainVersion)), word(chainID)))
}

// StructHash is hashStruct(Submission{…}) of the manifest: the type hash, then each
// field encoded as one word (strings by their Keccak-256, bytes32 as is).
func (m Manifest) StructHash() ([32]byte, error) {
	content, err := hex.DecodeString(m.SHA256)
	if err != nil || len(content) != 32 {
		return [32]byte{}, fmt.Errorf("%w: sha256 %q is not 32 bytes of hex", ErrBadManifest, m.SHA256)
	}
	return [32]byte(crypto.Keccak256(primaryTypeHash, crypto.Keccak256([]byte(m.Kind)), content, word(m.Records), word(m.Bytes),
		word(m.Created), word(m.Nonce), crypto.Keccak256([]byte(m.App)))), nil
}

// Digest is the EIP-712 hash that is signed: keccak256(0x19 0x01 ‖ domainSeparator ‖
// hashStruct(message)), what eth_signTypedData_v4 and ethers' TypedDataEncoder.hash give.
func (m Manifest) Digest() ([32]byte, error) {
	s, err := m.StructHash()
	if err != nil {
		return [32]byte{}, err
	}
	d := DomainSeparator(m.ChainID)
	return [32]byte(crypto.Keccak256([]byte{0x19, 0x01}, d[:], s[:])), nil
}

// TypedData is the manifest's signed content in the JSON form of eth_signTypedData_v4
// (types, primaryType, domain, message), for wallets and tools that check it.
func (m Manifest) TypedData() map[string]any {
	field := func(name, typ string) map[string]string { return map[string]string{"name": name, "type": typ} }
	return map[string]any{
		"types": map[string]any{
			"EIP712Domain": []any{field("name", "string"), field("version", "string"), field("chainId", "uint256")},
			"Submission": []any{field("kind", "string"), field("contentHash", "bytes32"), field("records", "uint64"),
				field("bytes", "uint64"), field("created", "uint64"), field("nonce", "uint64"), field("app", "string")},
		},
		"primaryType": "Submission",
		"domain":      map[string]any{"name": DomainName, "version": DomainVersion, "chainId": m.ChainID},
		"message": map[string]any{"kind": m.Kind, "contentHash": "0x" + m.SHA256, "records": m.Records, "bytes": m.Bytes,
			"created": m.Created, "nonce": m.Nonce, "app": m.App},
	}
}

// Nonces remembers the nonces seen per submitter and chain, for a collector that takes
// submissions in: each nonce of a wallet counts once. Safe for concurrent use.
type Nonces struct {
	mu   sync.Mutex
	seen map[nonceKey]bool
}

type nonceKey struct {
	submitter string
	chainID   uint64
	nonce     uint64
}

// Accept records the manifest's nonce, or returns an error wrapping ErrReplay when
// that wallet used it before on that chain. Offering the very same manifest again
// (same signature) is a replay too: it was taken in already.
func (n *Nonces) Accept(m Manifest) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.seen == nil {
		n.seen = map[nonceKey]bool{}
	}
	k := nonceKey{m.Submitter, m.ChainID, m.Nonce}
	if n.seen[k] {
		return fmt.Errorf("%w: %s used nonce %d on chain %d before", ErrReplay, m.Submitter, m.Nonce, m.ChainID)
	}
	n.seen[k] = true
	return nil
}
