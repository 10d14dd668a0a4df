package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gata-contrib/gata/app/core"
)

func TestSubmitNetwork(t *testing.T) {
	h := newWalletCLI(t)
	for _, tt := range []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"mainnet by default", nil, 0, "mainnet: chain greenfield_1017-1 (EIP-712 chain id 1017), RPC https://greenfield-chain.bnbchain.org:443"},
		{"testnet", []string{"testnet"}, 0, "testnet: chain greenfield_5600-1 (EIP-712 chain id 5600)"},
		{"custom", []string{"custom", "--chain-id", "greenfield_9000-121", "--rpc", "http://127.0.0.1:1"}, 0,
			"custom: chain greenfield_9000-121 (EIP-712 chain id 9000), RPC http://127.0.0.1:1"},
		{"kept", nil, 0, "custom: chain greenfield_9000-121"},
		{"flags only with custom", []string{"testnet", "--rpc", "http://x"}, 2, "go with custom"},
		{"bad chain id", []string{"custom", "--chain-id", "9000", "--rpc", "http://127.0.0.1:1"}, 2, "not of the form"},
		{"unknown network", []string{"devnet"}, 2, "devnet"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := h.run(append([]string{"submit", "network"}, tt.args...)...)
			if code != tt.code || !strings.Contains(out+errOut, tt.out) {
				t.Errorf("gata submit network %v = %d, %q %q; want %d and %q", tt.args, code, out, errOut, tt.code, tt.out)
			}
		})
	}
}

func TestSubmitStatusShareRetry(t *testing.T) {
	h := newWalletCLI(t)
	// A network nobody listens on: the account part of status says it is unavailable.
	h.ok("submit", "network", "custom", "--chain-id", "greenfield_9000-121", "--rpc", "http://127.0.0.1:1")
	if out := h.ok("submit", "status"); !strings.Contains(out, "no submissions yet") || !strings.Contains(out, "network  custom") {
		t.Errorf("status with nothing = %q", out)
	}
	h.vars["KEY"] = cliTestKey
	h.ok("wallet", "import", "--private-key-env", "KEY")
	h.storeVotedBattle("b1", 0.9)
	var res core.SubmitResult
	if err := json.Unmarshal([]byte(h.ok("submit", "chat", "--json")), &res); err != nil {
		t.Fatal(err)
	}
	if res.Manifest.ChainID != 9000 {
		t.Errorf("submission signed for chain %d, want the custom network's 9000", res.Manifest.ChainID)
	}
	out := h.ok("submit", "status")
	for _, want := range []string{"account  unavailable", "queued", res.Manifest.ObjectName(), "0 B/"} {
		if !strings.Contains(out, want) {
			t.Errorf("status = %q, want it to show %q", out, want)
		}
	}
	var st struct {
		Uploads []core.UploadItem `json:"uploads"`
		Error   string            `json:"account_error"`
	}
	if err := json.Unmarshal([]byte(h.ok("submit", "status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Uploads) != 1 || st.Uploads[0].SubmissionID != res.ID || st.Uploads[0].State != "queued" || st.Error == "" {
		t.Errorf("status --json = %+v", st)
	}
	for _, tt := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"share"}, 2, "usage: gata submit share ADDRESS"},
		{[]string{"share", "0x1234"}, 2, "want 0x and 40 hex digits"},
		{[]string{"share", "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"}, 1, "uploads are not available"},
		{[]string{"retry"}, 2, "usage: gata submit retry ID"},
		{[]string{"retry", "42"}, 1, "not found"},
	} {
		code, out, errOut := h.run(append([]string{"submit"}, tt.args...)...)
		if code != tt.code || !strings.Contains(out+errOut, tt.err) {
			t.Errorf("gata submit %v = %d, %q %q; want %d and %q", tt.args, code, out, errOut, tt.code, tt.err)
		}
	}
	if out := h.ok("submit", "retry", "1"); !strings.Contains(out, "submission 1 is queued") {
		t.Errorf("retry = %q", out)
	}
}

func TestBytesText(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want string
	}{{0, "0 B"}, {1023, "1023 B"}, {1536, "1.5 KiB"}, {5 << 20, "5.0 MiB"}, {3 << 30, "3.0 GiB"}} {
		if got := bytesText(tt.n); got != tt.want {
			t.Errorf("bytesText(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
