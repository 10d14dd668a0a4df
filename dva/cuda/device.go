package cuda

import (
	"fmt"
	"math"
)

// dptr is an address in device memory.
type dptr uint64

// device is what the forward pass needs from a GPU: memory, copies, and kernel launches,
// all ordered on the device's compute stream. The CUDA driver implements it (cudaDevice);
// the tests also run the forward pass on the kernel emulator of internal/emu.
type device interface {
	alloc(bytes int) (dptr, error)
	free(p dptr)
	// copyIn copies src to dst after the work so far and before any later work; src may
	// be reused once it returns.
	copyIn(dst dptr, src []byte) error
	// copyInSlot is copyIn for input slot 0 or 1, which a device may run on a second
	// stream, overlapping the work so far, once releaseSlot(slot) has been passed; src
	// must not change before the next copyOut.
	copyInSlot(slot int, dst dptr, src []byte) error
	// releaseSlot marks the point of the work after which slot's buffer may be refilled.
	releaseSlot(slot int) error
	// copyOut waits for the work so far, then copies len(dst) bytes from src.
	copyOut(dst []byte, src dptr) error
	// launch starts kernel name with args (see kargs) on a grid of blocks.
	launch(name string, grid, block [3]uint32, smem int, a *kargs) error
	// sync waits for the work so far.
	sync() error
	// sms is the number of streaming multiprocessors, for choosing tile sizes.
	sms() int
}

// kargs are a kernel's parameters as cuLaunchKernel takes them: each in the low bytes of
// a 64-bit slot, with its size.
type kargs struct {
	vals  []uint64
	sizes []int
}

func args() *kargs { return &kargs{} }

func (a *kargs) ptr(p dptr) *kargs    { return a.add(uint64(p), 8) }
func (a *kargs) i32(v int) *kargs     { return a.add(uint64(uint32(int32(v))), 4) }
func (a *kargs) i64(v int) *kargs     { return a.add(uint64(int64(v)), 8) }
func (a *kargs) f32(v float32) *kargs { return a.add(uint64(math.Float32bits(v)), 4) }
func (a *kargs) add(v uint64, size int) *kargs {
	a.vals = append(a.vals, v)
	a.sizes = append(a.sizes, size)
	return a
}

// buffer is device memory of a known size.
type buffer struct {
	p     dptr
	bytes int
}

// arena hands out device buffers and frees them together.
type arena struct {
	dev  device
	bufs []dptr
}

func (a *arena) alloc(bytes int) (dptr, error) {
	p, err := a.dev.alloc(bytes)
	if err != nil {
		return 0, err
	}
	a.bufs = append(a.bufs, p)
	return p, nil
}

// upload allocates device memory for b and copies it there.
func (a *arena) upload(b []byte) (dptr, error) {
	p, err := a.alloc(len(b))
	if err != nil {
		return 0, err
	}
	if err := a.dev.copyIn(p, b); err != nil {
		return 0, err
	}
	return p, nil
}

func (a *arena) release() {
	for _, p := range a.bufs {
		a.dev.free(p)
	}
	a.bufs = nil
}

// cdiv is ceil(a / b).
func cdiv(a, b int) int { return (a + b - 1) / b }

func checkGrid(name string, grid [3]uint32) error {
	if grid[0] == 0 || grid[1] == 0 || grid[2] == 0 || grid[1] > 65535 || grid[2] > 65535 {
		return fmt.Errorf("launch %s: grid %v out of range", name, grid)
	}
	return nil
}
