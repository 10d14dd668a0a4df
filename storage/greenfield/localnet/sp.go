package localnet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// spModules are the storage provider's modules that run in each gnfd-sp process: all
// but p2p, which a network whose providers are all in genesis does not use.
var spModules = []string{"approver", "authenticator", "blocksyncer", "downloader", "taskexecutor",
	"gateway", "manager", "metadata", "receiver", "signer", "uploader"}

var spConfig = template.Must(template.New("sp").Parse(`# gnfd-sp configuration written by the local test network.
Server = [{{.Modules}}]
GRPCAddress = '{{.GRPC}}'

[SpDB]
User = '{{.DBUser}}'
Passwd = '{{.DBPassword}}'
Address = '{{.DBAddr}}'
Database = '{{.DB}}'

[BsDB]
User = '{{.DBUser}}'
Passwd = '{{.DBPassword}}'
Address = '{{.DBAddr}}'
Database = '{{.DB}}'

[PieceStore.Store]
Storage = 'file'
BucketURL = '{{.Data}}'

[Chain]
ChainID = '{{.ChainID}}'
ChainAddress = ['{{.RPC}}']

[SpAccount]
SpOperatorAddress = '{{.K.Operator}}'
OperatorPrivateKey = '{{.K.OperatorKey}}'
FundingPrivateKey = '{{.K.FundKey}}'
SealPrivateKey = '{{.K.SealKey}}'
ApprovalPrivateKey = '{{.K.ApprovalKey}}'
GcPrivateKey = '{{.K.GcKey}}'
BlsPrivateKey = '{{.K.BlsKey}}'

[Gateway]
DomainName = 'gnfd.localhost'
HTTPAddress = '{{.Gateway}}'

[Monitor]
DisableMetrics = true
DisablePProf = true
DisableProbe = false
ProbeHTTPAddress = '{{.Probe}}'

[Log]
Level = 'info'
Path = '{{.Log}}'

[BlockSyncer]
Modules = ['epoch', 'bucket', 'object', 'payment', 'group', 'permission', 'storage_provider', 'prefix_tree', 'virtual_group', 'sp_exit_events', 'object_id_map', 'general']
Workers = 10
BsDBWriteAddress = '{{.DBAddr}}'

[Manager]
EnableHealthyChecker = true
SubscribeSPExitEventIntervalMillisecond = 100
SubscribeSwapOutExitEventIntervalMillisecond = 100
SubscribeBucketMigrateEventIntervalMillisecond = 20
GVGPreferSPList = [1, 2, 3]
EnableTaskRetryScheduler = true
RejectUnsealThresholdSecond = 600
`))

// startSP writes provider i's config and starts it; it answers on its gateway before
// this returns.
func (n *Network) startSP(ctx context.Context, i int, ports spPorts, k spKeys, db mariaDB, cp chainPorts) error {
	dir := filepath.Join(n.Dir, fmt.Sprintf("sp%d", i))
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return err
	}
	quoted := make([]string, len(spModules))
	for j, m := range spModules {
		quoted[j] = "'" + m + "'"
	}
	var cfg strings.Builder
	err := spConfig.Execute(&cfg, map[string]any{
		"Modules": strings.Join(quoted, ", "), "GRPC": fmt.Sprintf("127.0.0.1:%d", ports.grpc),
		"DBUser": dbUser, "DBPassword": dbPassword, "DBAddr": db.addr, "DB": fmt.Sprintf("sp_%d", i),
		"Data": filepath.Join(dir, "data"), "ChainID": ChainID, "RPC": fmt.Sprintf("http://127.0.0.1:%d", cp.rpc),
		"Gateway": fmt.Sprintf("127.0.0.1:%d", ports.gateway), "Probe": fmt.Sprintf("127.0.0.1:%d", ports.probe), "Log": filepath.Join(dir, "gnfd-sp.log"),
		"K": map[string]string{"Operator": k.operator, "OperatorKey": k.operatorKey, "FundKey": k.fundKey,
			"SealKey": k.sealKey, "ApprovalKey": k.approvalKey, "GcKey": k.gcKey, "BlsKey": k.blsKey},
	})
	if err != nil {
		return fmt.Errorf("write config of sp%d: %w", i, err)
	}
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		return fmt.Errorf("write config of sp%d: %w", i, err)
	}
	p, err := n.spawn(fmt.Sprintf("sp%d", i), dir, filepath.Join(n.bin, "gnfd-sp"), "--config", cfgPath)
	if err != nil {
		return err
	}
	return poll(ctx, 2*time.Minute, 300*time.Millisecond, fmt.Sprintf("wait for sp%d", i), func() (bool, error) {
		if err := p.exited(); err != nil {
			return false, fatalError{err}
		}
		_, err := n.spStatus(ctx, ports)
		return err == nil, err
	})
}

// spStatus is the height up to which a provider's block syncer has read the chain.
func (n *Network) spStatus(ctx context.Context, ports spPorts) (int64, error) {
	var st struct {
		Status struct {
			BlockSyncerInfo struct {
				Height any `json:"bs_block_height"`
			} `json:"block_syncer_info"`
		} `json:"status"`
	}
	if err := getJSON(ctx, fmt.Sprintf("http://127.0.0.1:%d/status", ports.gateway), &st); err != nil {
		return 0, err
	}
	switch h := st.Status.BlockSyncerInfo.Height.(type) {
	case string:
		return strconv.ParseInt(h, 10, 64)
	case float64:
		return int64(h), nil
	}
	return 0, fmt.Errorf("no block syncer height in the status")
}

// waitSPsSynced waits until every provider's block syncer is within two blocks of the
// chain: until then a new bucket or object is not known to its metadata service and the
// first upload seals only after a long wait.
func (n *Network) waitSPsSynced(ctx context.Context, sps []spPorts) error {
	return poll(ctx, 5*time.Minute, time.Second, "wait for the storage providers to catch up with the chain", func() (bool, error) {
		h, err := n.Height(ctx)
		if err != nil {
			return false, err
		}
		for i, p := range sps {
			bh, err := n.spStatus(ctx, p)
			if err != nil {
				return false, fmt.Errorf("sp%d: %w", i, err)
			}
			if bh < h-2 {
				return false, fmt.Errorf("sp%d at height %d of %d", i, bh, h)
			}
		}
		return true, nil
	})
}
