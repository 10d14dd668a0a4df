package cpu

import (
	"testing"

	"github.com/gata-contrib/gata/dva"
	"github.com/gata-contrib/gata/dva/clip"
	"github.com/gata-contrib/gata/dva/dvatest"
)

func newBackend(threads int) dvatest.NewBackend {
	return func(t *testing.T, dir string) dva.Backend {
		m, err := clip.LoadModel(dir)
		if err != nil {
			t.Fatalf("LoadModel(%s): %v", dir, err)
		}
		return New(m, threads)
	}
}

func TestConformance(t *testing.T) {
	for _, tt := range []struct {
		name    string
		threads int
	}{{"threads=1", 1}, {"threads=3", 3}} {
		t.Run(tt.name, func(t *testing.T) { dvatest.Run(t, newBackend(tt.threads), 1e-5) })
	}
}
