package greenfield

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/bnb-chain/greenfield-go-sdk/client"
	"github.com/bnb-chain/greenfield-go-sdk/pkg/utils"
	"github.com/bnb-chain/greenfield-go-sdk/types"
	gnfdtypes "github.com/bnb-chain/greenfield/types"
	permtypes "github.com/bnb-chain/greenfield/x/permission/types"
	storagetypes "github.com/bnb-chain/greenfield/x/storage/types"
	sdk "github.com/cosmos/cosmos-sdk/types"
)

// txTimeout bounds the wait for one transaction to be committed.
const txTimeout = 60 * time.Second

// SDK is Chain on greenfield-go-sdk: one account (the wallet's key) on one network.
type SDK struct {
	c       client.IClient
	account *types.Account
	network Network
}

var _ Chain = (*SDK)(nil)

// Dial opens the account of the hex private key on network n. The SDK contacts the
// chain at once (for its parameters), so this fails when the network cannot be reached.
func Dial(ctx context.Context, n Network, privateKeyHex string) (*SDK, error) {
	acct, err := types.NewAccountFromPrivateKey("gata", strings.TrimPrefix(privateKeyHex, "0x"))
	if err != nil {
		return nil, fmt.Errorf("open Greenfield account: %w", err)
	}
	type result struct {
		c   client.IClient
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := client.New(n.ChainID, n.RPC, client.Option{DefaultAccount: acct})
		done <- result{c, err}
	}()
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("connect to Greenfield %s at %s: %w", n.ChainID, n.RPC, ctx.Err())
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("connect to Greenfield %s at %s: %w", n.ChainID, n.RPC, r.err)
		}
		return &SDK{c: r.c, account: acct, network: n}, nil
	}
}

// Address is the account's checksummed 0x address.
func (s *SDK) Address() string { return s.account.GetAddress().String() }

// Network is the network the account is on.
func (s *SDK) Network() Network { return s.network }

// Client is the SDK client itself, for what the uploader does not need (tests read
// objects back and check permissions with it).
func (s *SDK) Client() client.IClient { return s.c }

func notFound(err error, what string) bool {
	return err != nil && strings.Contains(strings.ToLower(err.Error()), "no such "+what)
}

// HeadBucket returns ErrNotFound when the bucket does not exist.
func (s *SDK) HeadBucket(ctx context.Context, bucket string) error {
	_, err := s.c.HeadBucket(ctx, bucket)
	if notFound(err, "bucket") {
		return fmt.Errorf("bucket %s: %w", bucket, ErrNotFound)
	}
	return err
}

// CreateBucket creates a private bucket whose primary storage provider is the first one
// in service, and waits for the transaction.
func (s *SDK) CreateBucket(ctx context.Context, bucket string) error {
	sps, err := s.c.ListStorageProviders(ctx, true)
	if err != nil {
		return fmt.Errorf("list storage providers: %w", err)
	}
	if len(sps) == 0 {
		return fmt.Errorf("no storage provider is in service")
	}
	ctx, cancel := context.WithTimeout(ctx, txTimeout)
	defer cancel()
	_, err = s.c.CreateBucket(ctx, bucket, sps[0].OperatorAddress, types.CreateBucketOptions{Visibility: storagetypes.VISIBILITY_TYPE_PRIVATE})
	return err
}

// HeadObject returns ErrNotFound when the object does not exist.
func (s *SDK) HeadObject(ctx context.Context, bucket, object string) (ObjectInfo, error) {
	d, err := s.c.HeadObject(ctx, bucket, object)
	if notFound(err, "object") {
		return ObjectInfo{}, fmt.Errorf("object %s: %w", object, ErrNotFound)
	}
	if err != nil {
		return ObjectInfo{}, err
	}
	oi := d.ObjectInfo
	info := ObjectInfo{Size: oi.PayloadSize, Checksums: oi.Checksums, Tags: map[string]string{}}
	switch oi.ObjectStatus {
	case storagetypes.OBJECT_STATUS_CREATED:
		info.Status = StatusCreated
	case storagetypes.OBJECT_STATUS_SEALED:
		info.Status = StatusSealed
	default:
		info.Status = StatusOther
	}
	if oi.Tags != nil {
		for _, t := range oi.Tags.Tags {
			info.Tags[t.Key] = t.Value
		}
	}
	return info, nil
}

// HashRoots computes the checksums of the content of r with the chain's redundancy
// parameters.
func (s *SDK) HashRoots(r io.Reader) ([][]byte, error) {
	roots, _, _, err := s.c.ComputeHashRoots(r, false)
	return roots, err
}

// CreateObject creates a private object and waits for the transaction.
func (s *SDK) CreateObject(ctx context.Context, bucket, object string, r io.Reader, contentType string) error {
	ctx, cancel := context.WithTimeout(ctx, txTimeout)
	defer cancel()
	_, err := s.c.CreateObject(ctx, bucket, object, r, types.CreateObjectOptions{
		Visibility: storagetypes.VISIBILITY_TYPE_PRIVATE, ContentType: contentType,
	})
	return err
}

// CancelCreateObject removes a created object that was never sealed.
func (s *SDK) CancelCreateObject(ctx context.Context, bucket, object string) error {
	hash, err := s.c.CancelCreateObject(ctx, bucket, object, types.CancelCreateOption{})
	if err != nil {
		return err
	}
	return s.wait(ctx, hash)
}

// PutObject sends the payload. Above the SDK's part size (16 MiB) it goes in parts, and
// the SDK asks the provider where an earlier upload stopped and goes on from there.
func (s *SDK) PutObject(ctx context.Context, bucket, object string, size int64, r io.Reader, contentType string) error {
	return s.c.PutObject(ctx, bucket, object, size, r, types.PutObjectOptions{ContentType: contentType})
}

// SetTags replaces the object's tags and waits for the transaction.
func (s *SDK) SetTags(ctx context.Context, bucket, object string, tags map[string]string) error {
	rt := storagetypes.ResourceTags{}
	for k, v := range tags {
		rt.Tags = append(rt.Tags, storagetypes.ResourceTags_Tag{Key: k, Value: v})
	}
	slices.SortFunc(rt.Tags, func(a, b storagetypes.ResourceTags_Tag) int { return cmp.Compare(a.Key, b.Key) })
	hash, err := s.c.SetTag(ctx, gnfdtypes.NewObjectGRN(bucket, object).String(), rt, types.SetTagsOptions{})
	if err != nil {
		return err
	}
	return s.wait(ctx, hash)
}

// GrantRead puts an object policy that lets address get the object, and waits for the
// transaction.
func (s *SDK) GrantRead(ctx context.Context, bucket, object, address string) error {
	acc, err := sdk.AccAddressFromHexUnsafe(address)
	if err != nil {
		return fmt.Errorf("address %q: %w", address, err)
	}
	principal, err := utils.NewPrincipalWithAccount(acc)
	if err != nil {
		return err
	}
	st := &permtypes.Statement{Effect: permtypes.EFFECT_ALLOW, Actions: []permtypes.ActionType{permtypes.ACTION_GET_OBJECT}}
	hash, err := s.c.PutObjectPolicy(ctx, bucket, object, principal, []*permtypes.Statement{st}, types.PutPolicyOption{})
	if err != nil {
		return err
	}
	return s.wait(ctx, hash)
}

// CanRead says whether address may get the object.
func (s *SDK) CanRead(ctx context.Context, bucket, object, address string) (bool, error) {
	eff, err := s.c.IsObjectPermissionAllowed(ctx, address, bucket, object, permtypes.ACTION_GET_OBJECT)
	if err != nil {
		return false, err
	}
	return eff == permtypes.EFFECT_ALLOW, nil
}

// GetObject reads an object's payload.
func (s *SDK) GetObject(ctx context.Context, bucket, object string) ([]byte, error) {
	rc, _, err := s.c.GetObject(ctx, bucket, object, types.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func (s *SDK) wait(ctx context.Context, hash string) error {
	ctx, cancel := context.WithTimeout(ctx, txTimeout)
	defer cancel()
	res, err := s.c.WaitForTx(ctx, hash)
	if err != nil {
		return fmt.Errorf("wait for transaction %s: %w", hash, err)
	}
	if res.TxResult.Code != 0 {
		return fmt.Errorf("transaction %s failed: code %d (%s) %s", hash, res.TxResult.Code, res.TxResult.Codespace, res.TxResult.Log)
	}
	return nil
}

// Balance is the account's balance in wei of BNB (10^18 wei = 1 BNB).
func (s *SDK) Balance(ctx context.Context) (*big.Int, error) {
	c, err := s.c.GetAccountBalance(ctx, s.Address())
	if err != nil {
		return nil, fmt.Errorf("read balance of %s: %w", s.Address(), err)
	}
	return c.Amount.BigInt(), nil
}

// Quota is a bucket's read quota for this month, in bytes.
type Quota struct {
	Charged      uint64 `json:"charged"`       // bought read quota
	FreeMonthly  uint64 `json:"free_monthly"`  // the providers' free quota each month
	FreeConsumed uint64 `json:"free_consumed"` // of the free quota, used this month
	Consumed     uint64 `json:"consumed"`      // of the bought quota, used this month
}

// Quota reads the bucket's read quota; ErrNotFound when the bucket does not exist.
func (s *SDK) Quota(ctx context.Context, bucket string) (Quota, error) {
	if err := s.HeadBucket(ctx, bucket); err != nil {
		return Quota{}, err
	}
	q, err := s.c.GetBucketReadQuota(ctx, bucket)
	if err != nil {
		return Quota{}, fmt.Errorf("read quota of %s: %w", bucket, err)
	}
	return Quota{Charged: q.ReadQuotaSize, FreeMonthly: q.SPFreeReadQuotaSize + q.MonthlyFreeQuota,
		FreeConsumed: q.FreeConsumedSize + q.MonthlyFreeConsumedSize, Consumed: q.ReadConsumedSize}, nil
}
