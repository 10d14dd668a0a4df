package cuda

import (
	"fmt"
	"sync"

	"github.com/gata-contrib/gata/dva/cuda/internal/emu"
)

// emuDevice runs the kernels on the CPU emulator: the forward pass and the kernels are
// tested here without a GPU (see internal/emu for what that does and does not show).
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
