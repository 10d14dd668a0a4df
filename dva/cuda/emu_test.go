//go:build linux && cgo

package cuda

import (
	"fmt"
	"sync"
	"testing"

	"github.com/gata-contrib/gata/dva"
	"github.com/gata-contrib/gata/dva/cuda/internal/emu"
	"github.com/gata-contrib/gata/kernels"
)

// emuDevice runs the kernels on the CPU emulator: the forward pass and the kernels are
// tested here without a GPU (see internal/emu for what that does and does not show). The
// emulator needs Linux (ucontext fibers) and cgo with a C++ compiler.
type emuDevice struct {
	nsm int // what sms reports: 1 makes every GEMM take the 128x128 tile, a large value the 64x64

	mu    sync.Mutex
	live  map[dptr]int
	calls map[string]int // launches per kernel
}

func newEmuDevice(nsm int) *emuDevice {
	return &emuDevice{nsm: nsm, live: map[dptr]int{}, calls: map[string]int{}}
}

func (e *emuDevice) alloc(bytes int) (dptr, error) {
	p, err := emu.Alloc(bytes)
	if err != nil {
		return 0, err
	}
	e.mu.Lock()
	e.live[dptr(p)] = bytes
	e.mu.Unlock()
	return dptr(p), nil
}

func (e *emuDevice) free(p dptr) {
	e.mu.Lock()
	_, ok := e.live[p]
	delete(e.live, p)
	e.mu.Unlock()
	if !ok {
		panic(fmt.Sprintf("free of %#x, which is not allocated", p))
	}
	emu.Free(uint64(p))
}

func (e *emuDevice) copyIn(dst dptr, src []byte) error {
	if err := e.check(dst, len(src)); err != nil {
		return err
	}
	emu.CopyIn(uint64(dst), src)
	return nil
}

func (e *emuDevice) copyOut(dst []byte, src dptr) error {
	if err := e.check(src, len(dst)); err != nil {
		return err
	}
	emu.CopyOut(dst, uint64(src))
	return nil
}

// check fails a copy that leaves the allocation it starts in.
func (e *emuDevice) check(p dptr, n int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for base, size := range e.live {
		if p >= base && p < base+dptr(size) {
			if int(p-base)+n > size {
				return fmt.Errorf("copy of %d bytes at offset %d overruns an allocation of %d", n, p-base, size)
			}
			return nil
		}
	}
	return fmt.Errorf("copy to or from %#x, which is not allocated", p)
}

func (e *emuDevice) launch(name string, grid, block [3]uint32, smem int, a *kargs) error {
	if err := checkGrid(name, grid); err != nil {
		return err
	}
	e.mu.Lock()
	e.calls[name]++
	e.mu.Unlock()
	return emu.Launch(name, grid, block, smem, a.vals, a.sizes)
}

func (e *emuDevice) sms() int { return e.nsm }

func (e *emuDevice) sync() error { return nil }

func (e *emuDevice) copyInSlot(slot int, dst dptr, src []byte) error {
	if slot != 0 && slot != 1 {
		return fmt.Errorf("input slot %d", slot)
	}
	return e.copyIn(dst, src)
}

func (e *emuDevice) releaseSlot(slot int) error { return nil }

// leaked is the number of allocations not freed.
func (e *emuDevice) leaked() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.live)
}

func TestKernelsOnEmulator(t *testing.T) {
	for _, nsm := range []int{1, 1 << 20} {
		t.Run(fmt.Sprintf("sms=%d", nsm), func(t *testing.T) {
			d := newEmuDevice(nsm)
			runKernelTests(t, d)
			if n := d.leaked(); n != 0 {
				t.Errorf("%d device buffers not freed", n)
			}
		})
	}
}

// TestKernelNames checks that the emulator compiled every kernel of the embedded PTX.
func TestKernelNames(t *testing.T) {
	have := map[string]bool{}
	for _, k := range emu.Kernels() {
		have[k] = true
	}
	for _, m := range kernels.Modules() {
		for _, k := range m.Kernels {
			if !have[k] {
				t.Errorf("kernel %s of %s.ptx is not in the emulator's table (internal/emu/emu.cc)", k, m.Name)
			}
		}
	}
}

func init() {
	testRunnerModes["emu"] = func(dir string) (dva.Backend, error) { return newEngine(newEmuDevice(1<<20), dir, "emulated GPU") }
}
