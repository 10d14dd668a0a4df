package cuda

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"github.com/ebitengine/purego"
)

// The CUDA driver API, loaded at run time: the binary links nothing of CUDA, so it starts
// on machines without a driver, and only the calls below are bound.

// cuResult is a CUresult.
type cuResult int32

const cudaSuccess cuResult = 0

// driver holds the bound functions of libcuda.
type driver struct {
	lib string

	cuInit                    func(flags uint32) cuResult
	cuDriverGetVersion        func(v *int32) cuResult
	cuDeviceGetCount          func(n *int32) cuResult
	cuDeviceGet               func(dev *int32, ordinal int32) cuResult
	cuDeviceGetName           func(name *byte, n int32, dev int32) cuResult
	cuDeviceGetAttribute      func(v *int32, attr int32, dev int32) cuResult
	cuDeviceTotalMem          func(bytes *uint64, dev int32) cuResult
	cuDevicePrimaryCtxRetain  func(ctx *uintptr, dev int32) cuResult
	cuDevicePrimaryCtxRelease func(dev int32) cuResult
	cuCtxSetCurrent           func(ctx uintptr) cuResult
	cuCtxSynchronize          func() cuResult
	cuMemGetInfo              func(free, total *uint64) cuResult
	cuModuleLoadDataEx        func(mod *uintptr, image *byte, n uint32, opts unsafe.Pointer, vals unsafe.Pointer) cuResult
	cuModuleUnload            func(mod uintptr) cuResult
	cuModuleGetFunction       func(fn *uintptr, mod uintptr, name string) cuResult
	cuFuncSetAttribute        func(fn uintptr, attr int32, v int32) cuResult
	cuMemAlloc                func(p *uint64, bytes uintptr) cuResult
	cuMemFree                 func(p uint64) cuResult
	cuMemHostAlloc            func(p *unsafe.Pointer, bytes uintptr, flags uint32) cuResult
	cuMemFreeHost             func(p unsafe.Pointer) cuResult
	cuMemcpyHtoDAsync         func(dst uint64, src unsafe.Pointer, bytes uintptr, stream uintptr) cuResult
	cuMemcpyDtoHAsync         func(dst unsafe.Pointer, src uint64, bytes uintptr, stream uintptr) cuResult
	cuStreamCreate            func(s *uintptr, flags uint32) cuResult
	cuStreamDestroy           func(s uintptr) cuResult
	cuStreamSynchronize       func(s uintptr) cuResult
	cuStreamWaitEvent         func(s, ev uintptr, flags uint32) cuResult
	cuEventCreate             func(ev *uintptr, flags uint32) cuResult
	cuEventRecord             func(ev, s uintptr) cuResult
	cuEventSynchronize        func(ev uintptr) cuResult
	cuEventElapsedTime        func(ms *float32, start, end uintptr) cuResult
	cuEventDestroy            func(ev uintptr) cuResult
	cuLaunchKernel            func(fn uintptr, gx, gy, gz, bx, by, bz, smem uint32, s uintptr, params, extra unsafe.Pointer) cuResult
	cuGetErrorName            func(r cuResult, s **byte) cuResult
	cuGetErrorString          func(r cuResult, s **byte) cuResult
}

// symbols maps each function to its exported name (the _v2 entry points where the
// ABI changed).
func (d *driver) symbols() map[string]any {
	return map[string]any{
		"cuInit": &d.cuInit, "cuDriverGetVersion": &d.cuDriverGetVersion,
		"cuDeviceGetCount": &d.cuDeviceGetCount, "cuDeviceGet": &d.cuDeviceGet,
		"cuDeviceGetName": &d.cuDeviceGetName, "cuDeviceGetAttribute": &d.cuDeviceGetAttribute,
		"cuDeviceTotalMem_v2": &d.cuDeviceTotalMem, "cuDevicePrimaryCtxRetain": &d.cuDevicePrimaryCtxRetain,
		"cuDevicePrimaryCtxRelease_v2": &d.cuDevicePrimaryCtxRelease, "cuCtxSetCurrent": &d.cuCtxSetCurrent,
		"cuCtxSynchronize": &d.cuCtxSynchronize, "cuMemGetInfo_v2": &d.cuMemGetInfo,
		"cuModuleLoadDataEx": &d.cuModuleLoadDataEx, "cuModuleUnload": &d.cuModuleUnload,
		"cuModuleGetFunction": &d.cuModuleGetFunction, "cuFuncSetAttribute": &d.cuFuncSetAttribute,
		"cuMemAlloc_v2": &d.cuMemAlloc, "cuMemFree_v2": &d.cuMemFree,
		"cuMemHostAlloc": &d.cuMemHostAlloc, "cuMemFreeHost": &d.cuMemFreeHost,
		"cuMemcpyHtoDAsync_v2": &d.cuMemcpyHtoDAsync, "cuMemcpyDtoHAsync_v2": &d.cuMemcpyDtoHAsync,
		"cuStreamCreate": &d.cuStreamCreate, "cuStreamDestroy_v2": &d.cuStreamDestroy,
		"cuStreamSynchronize": &d.cuStreamSynchronize, "cuStreamWaitEvent": &d.cuStreamWaitEvent,
		"cuEventCreate": &d.cuEventCreate, "cuEventRecord": &d.cuEventRecord,
		"cuEventSynchronize": &d.cuEventSynchronize, "cuEventElapsedTime": &d.cuEventElapsedTime,
		"cuEventDestroy_v2": &d.cuEventDestroy, "cuLaunchKernel": &d.cuLaunchKernel,
		"cuGetErrorName": &d.cuGetErrorName, "cuGetErrorString": &d.cuGetErrorString,
	}
}

// ErrNoDriver is wrapped by every error that means the CUDA driver cannot be used here:
// its library is missing, a symbol is missing, or cuInit fails.
var ErrNoDriver = errors.New("no NVIDIA driver")

// driverLibrary is the file name of the driver library on this system; a variable so a
// test can point it at a library that does not exist.
var driverLibrary = defaultDriverLibrary()

func defaultDriverLibrary() string {
	if runtime.GOOS == "windows" {
		return "nvcuda.dll"
	}
	return "libcuda.so.1"
}

// loadDriver opens the driver library, binds the functions and calls cuInit. Every
// failure wraps ErrNoDriver.
func loadDriver() (d *driver, err error) {
	defer func() {
		// A binding that does not fit must not take the process down.
		if r := recover(); r != nil {
			d, err = nil, fmt.Errorf("%w: bind %s: %v", ErrNoDriver, driverLibrary, r)
		}
	}()
	lib := driverLibrary
	if v := os.Getenv("GATA_CUDA_LIBRARY"); v != "" {
		lib = v
	}
	h, err := openLibrary(lib)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDriver, err)
	}
	d = &driver{lib: lib}
	for name, fp := range d.symbols() {
		sym, err := symbol(h, name)
		if err != nil {
			return nil, fmt.Errorf("%w: %s has no %s (a driver older than CUDA 11?): %v", ErrNoDriver, lib, name, err)
		}
		purego.RegisterFunc(fp, sym)
	}
	if r := d.cuInit(0); r != cudaSuccess {
		return nil, fmt.Errorf("%w: %w", ErrNoDriver, d.err("cuInit", r))
	}
	return d, nil
}

// Error is a failed driver call.
type Error struct {
	Call string
	Code int
	Name string // CUDA_ERROR_…
	Msg  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s (%d): %s", e.Call, e.Name, e.Code, e.Msg)
}

// Sticky reports whether the error leaves the CUDA context unusable, so that only a new
// process can use the GPU again.
func (e *Error) Sticky() bool {
	switch e.Code {
	case 700, // CUDA_ERROR_ILLEGAL_ADDRESS
		702, // CUDA_ERROR_LAUNCH_TIMEOUT
		714, // CUDA_ERROR_HARDWARE_STACK_ERROR
		715, // CUDA_ERROR_ILLEGAL_INSTRUCTION
		716, // CUDA_ERROR_MISALIGNED_ADDRESS
		717, // CUDA_ERROR_INVALID_ADDRESS_SPACE
		718, // CUDA_ERROR_INVALID_PC
		719, // CUDA_ERROR_LAUNCH_FAILED
		999: // CUDA_ERROR_UNKNOWN
		return true
	}
	return false
}

// err describes result r of call, or returns nil for success.
func (d *driver) err(call string, r cuResult) error {
	if r == cudaSuccess {
		return nil
	}
	e := &Error{Call: call, Code: int(r), Name: "CUDA_ERROR_UNKNOWN", Msg: "unknown error"}
	var s *byte
	if d.cuGetErrorName(r, &s) == cudaSuccess && s != nil {
		e.Name = cString(s)
	}
	s = nil
	if d.cuGetErrorString(r, &s) == cudaSuccess && s != nil {
		e.Msg = cString(s)
	}
	return e
}

// cString copies the NUL-terminated string at p (memory of the driver).
func cString(p *byte) string {
	var b []byte
	for i := 0; i < 4096; i++ {
		c := *(*byte)(unsafe.Add(unsafe.Pointer(p), i))
		if c == 0 {
			break
		}
		b = append(b, c)
	}
	return string(b)
}
