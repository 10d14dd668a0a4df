// Package refdata finds the shared reference data (test images, tiny models, expected outputs)
// that lives in the shared/ folder beside the repository checkout.
package refdata

import (
	"os"
	"path/filepath"
	"testing"
)

// Env names an environment variable that overrides where shared/ is.
const Env = "GATA_SHARED_DIR"

// SharedDir returns the path of the shared/ folder: $GATA_SHARED_DIR, or the first
// "shared" folder found beside the working directory or one of its parents.
// It returns "" when there is none.
func SharedDir() string {
	if d := os.Getenv(Env); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		cand := filepath.Join(filepath.Dir(dir), "shared")
		if st, err := os.Stat(filepath.Join(cand, "testdata")); err == nil && st.IsDir() {
			return cand
		}
		if filepath.Dir(dir) == dir {
			return ""
		}
	}
}

// Clip returns shared/testdata/clip, failing the test when it cannot be found:
// the reference data is part of every checkout, so its absence is an error, not a skip.
func Clip(t testing.TB) string {
	t.Helper()
	d := SharedDir()
	if d == "" {
		t.Fatalf("shared/ reference data not found beside the checkout (set %s)", Env)
	}
	return filepath.Join(d, "testdata", "clip")
}

// Ref returns shared/ref (the PyTorch reference scripts).
func Ref(t testing.TB) string {
	t.Helper()
	d := SharedDir()
	if d == "" {
		t.Fatalf("shared/ reference data not found beside the checkout (set %s)", Env)
	}
	return filepath.Join(d, "ref")
}
