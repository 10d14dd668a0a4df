package app

import (
	"encoding/json"
	"io"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/gata-contrib/gata"

type goPackage struct {
	ImportPath string
	Name       string
	Doc        string
	Imports    []string
	Deps       []string
}

// listPackages runs `go list -deps -json` over the whole module and returns the module's packages.
func listPackages(t *testing.T) []goPackage {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Name,Doc,Imports,Deps", "./...")
	cmd.Dir = root
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []goPackage
	dec := json.NewDecoder(out)
	for {
		var p goPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list: %v: %s", err, stderr.String())
	}
	if len(pkgs) < 5 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

func under(path, prefix string) bool {
	p := module + "/" + prefix
	return path == p || strings.HasPrefix(path, p+"/")
}

// TestImportRules enforces the import rules of DESIGN §2.
func TestImportRules(t *testing.T) {
	domain := []string{"agent", "dva", "chat", "storage"}
	for _, p := range listPackages(t) {
		own := func(list []string) []string {
			var out []string
			for _, i := range list {
				if strings.HasPrefix(i, module) {
					out = append(out, i)
				}
			}
			return out
		}
		switch {
		case p.ImportPath == module: // main
			for _, i := range own(p.Imports) {
				if i != module+"/app" {
					t.Errorf("main imports %s; it may import only app", i)
				}
			}
		case under(p.ImportPath, "app/gui") || under(p.ImportPath, "app/web"):
			for _, i := range own(p.Imports) {
				for _, d := range domain {
					if under(i, d) {
						t.Errorf("%s imports %s; the UIs reach the domain only through app/core", p.ImportPath, i)
					}
				}
				if under(p.ImportPath, "app/web") && under(i, "app/gui") || under(p.ImportPath, "app/gui") && under(i, "app/web") {
					t.Errorf("%s imports %s; the two UIs are independent", p.ImportPath, i)
				}
			}
		case slices.ContainsFunc(domain, func(d string) bool { return under(p.ImportPath, d) }):
			for _, i := range p.Deps {
				if under(i, "app") || strings.HasPrefix(i, "fyne.io/") {
					t.Errorf("%s depends on %s; domain packages must not reach the app or the GUI toolkit", p.ImportPath, i)
				}
			}
		case under(p.ImportPath, "kernels") || under(p.ImportPath, "assets"):
			for _, i := range p.Imports {
				if i != "embed" {
					t.Errorf("%s imports %s; it may import only embed", p.ImportPath, i)
				}
			}
		}
		for _, i := range p.Imports {
			if i == "github.com/ebitengine/purego" && !under(p.ImportPath, "dva/cuda") {
				t.Errorf("%s imports purego; only the CUDA backend (dva/cuda) loads driver libraries", p.ImportPath)
			}
		}
		for _, i := range p.Deps {
			if strings.HasPrefix(i, "gorgonia.org/cu") {
				t.Errorf("%s depends on %s, which exits the process without a CUDA driver", p.ImportPath, i)
			}
		}
	}
}

// TestEveryPackageHasADocComment checks that each package says what it is for.
func TestEveryPackageHasADocComment(t *testing.T) {
	for _, p := range listPackages(t) {
		want := "Package " + p.Name + " "
		if p.Name == "main" {
			want = "Command "
		}
		if !strings.HasPrefix(p.Doc, want) {
			t.Errorf("%s: doc comment %q does not start with %q", p.ImportPath, p.Doc, want)
		}
	}
}

// TestTopLevelLayout checks that the repository root holds only what DESIGN §2 lists.
func TestTopLevelLayout(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	cmd := exec.Command("git", "ls-files")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("not a git checkout (%v): the layout is checked in CI's clone", err)
	}
	allowed := []string{"main.go", "FyneApp.toml", "README.md", "Makefile", "LICENSE", ".gitignore", "go.mod", "go.sum",
		".ci", "app", "agent", "dva", "chat", "storage", "kernels", "assets"}
	seen := map[string]bool{}
	for _, f := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		top, _, _ := strings.Cut(f, "/")
		if !slices.Contains(allowed, top) && !seen[top] {
			seen[top] = true
			t.Errorf("unexpected top-level entry %q (DESIGN §2 lists the layout)", top)
		}
	}
}
