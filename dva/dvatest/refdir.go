package dvatest

import (
	"testing"

	"github.com/gata-contrib/gata/dva/internal/refdata"
)

// ClipDir returns the shared tiny reference model folder (shared/testdata/clip) for tests
// outside dva, failing the test when the shared data is missing.
func ClipDir(t testing.TB) string {
	t.Helper()
	return refdata.Clip(t)
}
