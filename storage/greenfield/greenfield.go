// Package greenfield uploads signed submissions to BNB Greenfield: the networks the app
// knows (mainnet, testnet, a custom one), the few chain and storage-provider calls the
// uploader needs (Chain, with an implementation on greenfield-go-sdk), and the Uploader,
// a supervised service that takes the outbox items of package storage to done: the
// wallet's private bucket, the object <kind>/<yyyy>/<mm>/<sha256>.jsonl put (resumable
// multipart for large files), sealed and tagged, its .manifest.json beside it, and read
// access shared per address through object policies.
package greenfield

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Network is a Greenfield chain the app can upload to.
type Network struct {
	Name    string `json:"name"`     // mainnet, testnet or custom
	ChainID string `json:"chain_id"` // the Cosmos chain id, greenfield_<evm>-<n>
	RPC     string `json:"rpc"`      // the CometBFT RPC endpoint
}

// The networks the app knows by name; a custom network names its own chain id and RPC.
var (
	Mainnet = Network{Name: "mainnet", ChainID: "greenfield_1017-1", RPC: "https://greenfield-chain.bnbchain.org:443"}
	Testnet = Network{Name: "testnet", ChainID: "greenfield_5600-1", RPC: "https://gnfd-testnet-fullnode-tendermint-us.bnbchain.org:443"}
)

// Custom is the name of a network given by chain id and RPC endpoint.
const Custom = "custom"

var chainIDRe = regexp.MustCompile(`^greenfield_([0-9]+)-[0-9]+$`)

// ResolveNetwork returns the network called name ("" is mainnet). For "custom", chainID
// and rpc are required; for a preset they must be empty or equal to the preset's.
func ResolveNetwork(name, chainID, rpc string) (Network, error) {
	var n Network
	switch name {
	case "", Mainnet.Name:
		n = Mainnet
	case Testnet.Name:
		n = Testnet
	case Custom:
		n = Network{Name: Custom, ChainID: chainID, RPC: rpc}
		if chainID == "" || rpc == "" {
			return Network{}, fmt.Errorf("a custom Greenfield network needs a chain id and an RPC endpoint")
		}
	default:
		return Network{}, fmt.Errorf("Greenfield network %q is not mainnet, testnet or custom", name)
	}
	if n.Name != Custom {
		if (chainID != "" && chainID != n.ChainID) || (rpc != "" && rpc != n.RPC) {
			return Network{}, fmt.Errorf("the %s network has chain id %s and RPC %s; choose custom for others", n.Name, n.ChainID, n.RPC)
		}
	}
	if _, err := n.EVMChainID(); err != nil {
		return Network{}, err
	}
	if !strings.HasPrefix(n.RPC, "http://") && !strings.HasPrefix(n.RPC, "https://") {
		return Network{}, fmt.Errorf("Greenfield RPC endpoint %q must start with http:// or https://", n.RPC)
	}
	return n, nil
}

// EVMChainID is the number in the chain id (1017 mainnet, 5600 testnet, 9000 for local
// test networks): the chain id of EIP-712 signatures on this network.
func (n Network) EVMChainID() (uint64, error) {
	m := chainIDRe.FindStringSubmatch(n.ChainID)
	if m == nil {
		return 0, fmt.Errorf("Greenfield chain id %q is not of the form greenfield_<number>-<number>", n.ChainID)
	}
	v, err := strconv.ParseUint(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("Greenfield chain id %q: %w", n.ChainID, err)
	}
	return v, nil
}

// Object states as the chain reports them.
const (
	StatusCreated = "created" // on chain, payload not yet sealed by the storage providers
	StatusSealed  = "sealed"
	StatusOther   = "other" // discontinued or being deleted
)

// ErrNotFound is returned by HeadBucket and HeadObject for what does not exist.
var ErrNotFound = errors.New("not found")

// ObjectInfo is what the uploader needs to know of an object on chain.
type ObjectInfo struct {
	Status    string // StatusCreated, StatusSealed, StatusOther
	Size      uint64
	Checksums [][]byte // the integrity hashes of the object's pieces
	Tags      map[string]string
}

// Chain is the part of Greenfield the uploader uses: the wallet's account on one network.
// SDK is the implementation on greenfield-go-sdk; tests use a fake.
type Chain interface {
	// Address is the wallet's checksummed 0x address.
	Address() string
	// HeadBucket returns ErrNotFound when the bucket does not exist.
	HeadBucket(ctx context.Context, bucket string) error
	// CreateBucket creates a private bucket and waits for the transaction.
	CreateBucket(ctx context.Context, bucket string) error
	// HeadObject returns ErrNotFound when the object does not exist.
	HeadObject(ctx context.Context, bucket, object string) (ObjectInfo, error)
	// HashRoots computes the checksums an object of this content gets on this network.
	HashRoots(r io.Reader) ([][]byte, error)
	// CreateObject creates a private object for the content of r and waits for the
	// transaction.
	CreateObject(ctx context.Context, bucket, object string, r io.Reader, contentType string) error
	// CancelCreateObject removes a created object whose payload was never sealed.
	CancelCreateObject(ctx context.Context, bucket, object string) error
	// PutObject sends the payload of a created object; large payloads go in parts and an
	// upload that was cut off resumes where the provider stopped receiving.
	PutObject(ctx context.Context, bucket, object string, size int64, r io.Reader, contentType string) error
	// SetTags replaces the object's tags.
	SetTags(ctx context.Context, bucket, object string, tags map[string]string) error
	// GrantRead lets address read the object (an object policy) and waits for the
	// transaction.
	GrantRead(ctx context.Context, bucket, object, address string) error
}

// BucketName is the wallet's bucket: "gata-" and the address in lower case hex, which
// meets Greenfield's rules (3-63 characters, lower case letters, digits and hyphens).
func BucketName(address string) string {
	return "gata-" + strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(address, "0x"), "0X"))
}
