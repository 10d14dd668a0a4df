//go:build linux && cgo

package emu

//go:generate go run ./gen

/*
#cgo CXXFLAGS: -std=c++20 -O2 -DGATA_EMU -I${SRCDIR} -I${SRCDIR}/../../../../kernels -Wno-unknown-pragmas
#cgo LDFLAGS: -pthread
#include <stdlib.h>
#include <string.h>
#include "emu_c.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"
)

// Alloc returns n bytes of zeroed emulated device memory.
func Alloc(n int) (uint64, error) {
	p := C.calloc(C.size_t(max(n, 1)), 1)
	if p == nil {
		return 0, fmt.Errorf("emulated alloc of %d bytes: out of memory", n)
	}
	return uint64(uintptr(p)), nil
}

// Free releases memory from Alloc.
func Free(p uint64) { C.free(ptr(p)) }

// CopyIn copies src to device address dst.
func CopyIn(dst uint64, src []byte) {
	if len(src) > 0 {
		C.memcpy(ptr(dst), unsafe.Pointer(&src[0]), C.size_t(len(src)))
	}
}

// CopyOut copies len(dst) bytes from device address src.
func CopyOut(dst []byte, src uint64) {
	if len(dst) > 0 {
		C.memcpy(unsafe.Pointer(&dst[0]), ptr(src), C.size_t(len(dst)))
	}
}

// Memset sets n bytes at p to v.
func Memset(p uint64, v byte, n int) { C.memset(ptr(p), C.int(v), C.size_t(n)) }

// Errors of Launch.
var (
	ErrNoKernel = errors.New("no such kernel")
	ErrBadArgs  = errors.New("the arguments do not match the kernel's parameters")
	ErrDeadlock = errors.New("deadlock: threads wait at a barrier that the others of their block or warp never reach")
)

// Launch runs a kernel as cuLaunchKernel would: args[i] holds parameter i in its low
// sizes[i] bytes (little-endian), and sizes must match the kernel's signature.
func Launch(name string, grid, block [3]uint32, smem int, args []uint64, sizes []int) error {
	if len(args) != len(sizes) {
		return fmt.Errorf("launch %s: %d arguments, %d sizes", name, len(args), len(sizes))
	}
	n := len(args)
	// The parameters and the pointers to them live in C memory, as cgo requires.
	vals := (*[1 << 10]uint64)(C.calloc(C.size_t(max(n, 1)), 8))
	ptrs := (*[1 << 10]unsafe.Pointer)(C.calloc(C.size_t(max(n, 1)), C.size_t(unsafe.Sizeof(uintptr(0)))))
	szs := (*[1 << 10]C.int)(C.calloc(C.size_t(max(n, 1)), 4))
	defer C.free(unsafe.Pointer(vals))
	defer C.free(unsafe.Pointer(ptrs))
	defer C.free(unsafe.Pointer(szs))
	for i := range n {
		vals[i] = args[i]
		ptrs[i] = unsafe.Pointer(&vals[i])
		szs[i] = C.int(sizes[i])
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	rc := C.emu_launch(cname, C.uint(grid[0]), C.uint(grid[1]), C.uint(grid[2]), C.uint(block[0]), C.uint(block[1]),
		C.uint(block[2]), C.uint(smem), (*unsafe.Pointer)(unsafe.Pointer(ptrs)), (*C.int)(unsafe.Pointer(szs)), C.int(n))
	switch rc {
	case 0:
		return nil
	case C.EMU_NO_KERNEL:
		return fmt.Errorf("launch %s: %w", name, ErrNoKernel)
	case C.EMU_BAD_ARGS:
		return fmt.Errorf("launch %s: %w", name, ErrBadArgs)
	case C.EMU_DEADLOCK:
		return fmt.Errorf("launch %s: %w", name, ErrDeadlock)
	default:
		return fmt.Errorf("launch %s: bad block size %v", name, block)
	}
}

// Kernels lists the kernels the emulator knows.
func Kernels() []string {
	buf := (*C.char)(C.malloc(1 << 16))
	defer C.free(unsafe.Pointer(buf))
	n := C.emu_kernels(buf, 1<<16)
	return strings.Fields(C.GoStringN(buf, min(n, 1<<16-1)))
}

// ptr turns an emulated device address back into the C pointer it is.
func ptr(p uint64) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&p))
}
