package cuda

import (
	"fmt"
	"testing"

	"github.com/gata-contrib/gata/dva"
	"github.com/gata-contrib/gata/dva/dvatest"
)

// TestConformanceOnEmulator runs the backend conformance suite (the tiny reference model
// of shared/testdata/clip) through the whole GPU forward pass, weights converted to half
// and every kernel run on the emulator, at the half-precision tolerance.
// With chunk 3 a batch of 8 images goes through the tower as 3 + 3 + 2, through both
// input slots.
func TestConformanceOnEmulator(t *testing.T) {
	for _, chunk := range []int{imageChunk, 3} {
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
