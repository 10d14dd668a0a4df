package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gata-contrib/gata/app/core"
)

func TestVerifyCommand(t *testing.T) {
	h := newWalletCLI(t)
	h.vars["KEY"] = cliTestKey
	h.ok("wallet", "import", "--private-key-env", "KEY")
	h.storeVotedBattle("b1", 0.9)
	h.storeVotedBattle("b2", 0.8)
	var res core.SubmitResult
	if err := json.Unmarshal([]byte(h.ok("submit", "chat", "--json")), &res); err != nil {
		t.Fatal(err)
	}
	out := h.ok("verify", res.ManifestPath)
	if !strings.Contains(out, "ok: signed by "+cliTestAddress) || !strings.Contains(out, "chat submission, 2 records") {
		t.Errorf("verify = %q", out)
	}
	var v core.VerifyResult
	if err := json.Unmarshal([]byte(h.ok("verify", "--json", res.ManifestPath, res.JSONLPath)), &v); err != nil || v.Signer != cliTestAddress {
		t.Errorf("verify --json = %+v, %v", v, err)
	}

	jsonl, _ := os.ReadFile(res.JSONLPath)
	manifest, _ := os.ReadFile(res.ManifestPath)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.manifest.json", manifest)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"tampered file", []string{good, write("t.jsonl", bytes.Replace(jsonl, []byte("model_a"), []byte("model_b"), 1))}, "content hash mismatch"},
		{"wrong signer", []string{write("w.manifest.json", bytes.Replace(manifest, []byte(cliTestAddress), []byte("0x9858EfFD232B4033E47d90003D41EC34EcaEda94"), 1)), res.JSONLPath}, "wrong signer"},
		{"bad signature", []string{write("s.manifest.json", bytes.Replace(manifest, []byte(res.Manifest.Signature[:66]), []byte("0x"+strings.Repeat("f", 64)), 1)), res.JSONLPath}, "bad signature"},
		{"missing jsonl", []string{good}, "no such file"},
		{"not a manifest", []string{write("x.json", []byte("{}")), res.JSONLPath}, "bad manifest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := h.run(append([]string{"verify"}, tt.args...)...)
			if code != 1 || !strings.Contains(errOut, tt.want) || strings.Count(errOut, "\n") != 1 || strings.Contains(out, "ok") {
				t.Errorf("verify %v = %d, %q %q; want 1 and one line with %q", tt.args, code, out, errOut, tt.want)
			}
		})
	}
	code, out, _ := h.run("verify", "--json", good, write("t2.jsonl", []byte("{}\n")))
	var e map[string]string
	if code != 1 || json.Unmarshal([]byte(out), &e) != nil || !strings.Contains(e["error"], "content hash mismatch") {
		t.Errorf("verify --json of a tampered file = %d, %q", code, out)
	}
	for _, args := range [][]string{{"verify"}, {"verify", "a", "b", "c"}} {
		if code, _, errOut := h.run(args...); code != 2 || !strings.Contains(errOut, "name the MANIFEST") {
			t.Errorf("gata %q = %d, %q; want 2", args, code, errOut)
		}
	}
	if code, out, _ := h.run("verify", "-h"); code != 0 || !strings.Contains(out, "usage: gata verify MANIFEST") {
		t.Errorf("verify -h = %d, %q", code, out)
	}
}
