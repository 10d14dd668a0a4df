//go:build linux && cgo

package cuda

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/gata-contrib/gata/dva"
	"github.com/gata-contrib/gata/dva/dvatest"
)

// TestConformanceOnEmulator runs the backend conformance suite (the tiny reference model
// of shared/testdata/clip) through the whole GPU forward pass, weights converted to half
// and every kernel run on the emulator, at the half-precision tolerance.
// With chunks of 3 images a batch of 8 goes through the tower as 3 + 3 + 2, through both
// input slots, and the suite's smaller batches as one chunk.
func TestConformanceOnEmulator(t *testing.T) {
	for _, chunk := range []int{3} {
		t.Run(fmt.Sprintf("chunk=%d", chunk), func(t *testing.T) {
			d := newEmuDevice(1 << 20)
			dvatest.Run(t, func(t *testing.T, dir string) dva.Backend {
				e, err := newEngine(d, dir, "emulated GPU")
				if err != nil {
					t.Fatalf("newEngine(%s): %v", dir, err)
				}
				e.ws.chunk = chunk
				return e
			}, 5e-3)
			if n := d.leaked(); n != 0 {
				t.Errorf("%d device buffers not freed after Close", n)
			}
		})
	}
}

// TestRunnerWithEmulatedGPU runs the GPU engine itself (on the emulator) in the child:
// half pixels straight from the protocol into the forward pass.
func TestRunnerWithEmulatedGPU(t *testing.T) {
	dir, pix, n, ids, wantImg, wantTxt := testInputs(t)
	b, err := StartRunner(context.Background(), dir, runnerOptions(t, "emu"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !strings.Contains(b.Name(), "emulated GPU") {
		t.Errorf("Name() = %q, want the runner's device", b.Name())
	}
	got, err := b.EncodeImages(context.Background(), pix, n)
	if err != nil {
		t.Fatal(err)
	}
	compareNormalized(t, "EncodeImages", got, wantImg, b.EmbedDim(), 5e-3)
	txt, err := b.EncodeTexts(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	compareNormalized(t, "EncodeTexts", txt, wantTxt, b.EmbedDim(), 5e-3)
}
