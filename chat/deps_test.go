package chat_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps chat free of the UI, the app and HTTP-server code.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/gata-contrib/gata/chat").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/gata-contrib/gata/app") || strings.HasPrefix(dep, "fyne.io/") ||
			dep == "net/http/httptest" || dep == "github.com/gata-contrib/gata/storage" {
			t.Errorf("chat imports %s", dep)
		}
	}
}
