package cuda

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/gata-contrib/gata/kernels"
)

// Driver API constants used here (cuda.h).
const (
	attrMultiprocessors    = 16 // CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT
	attrComputeMajor       = 75 // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
	attrComputeMinor       = 76
	attrSharedOptin        = 97 // CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN
	funcMaxDynamicShared   = 8  // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
	jitErrorLogBuffer      = 5  // CU_JIT_ERROR_LOG_BUFFER
	jitErrorLogBufferBytes = 6  // CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES
	streamNonBlocking      = 1  // CU_STREAM_NON_BLOCKING
	eventDisableTiming     = 2  // CU_EVENT_DISABLE_TIMING
	defaultSharedBytes     = 48 << 10
	scratchBytes           = 64 << 10
	jitLogBytes            = 32 << 10
	maxKernelParams        = 64
)

// cudaDevice is one GPU through the driver API: its primary context, the kernel modules,
// a compute stream and a copy stream. Driver calls run on a locked OS thread with the
// context current; the device is used by one caller at a time.
type cudaDevice struct {
	mu  sync.Mutex
	drv *driver
	dev int32
	ctx uintptr

	compute, copy   uintptr // streams
	readyEv, freeEv [2]uintptr
	modules         []uintptr
	funcs           map[string]uintptr
	smemSet         map[uintptr]int // the dynamic shared memory each function may use

	scratch unsafe.Pointer // pinned: kernel parameters, JIT options and log
	pinned  map[unsafe.Pointer]int

	name            string
	major, minor    int
	multiprocessors int
	sharedOptin     int
	totalMem        uint64
}

// openDevice initialises the driver, retains device ordinal's primary context and loads
// the kernels' PTX (the driver JIT-compiles it for this card on first use and caches it).
func openDevice(ordinal int) (d *cudaDevice, err error) {
	drv, err := loadDriver()
	if err != nil {
		return nil, err
	}
	d = &cudaDevice{drv: drv, funcs: map[string]uintptr{}, smemSet: map[uintptr]int{}, pinned: map[unsafe.Pointer]int{}}
	var n int32
	if err := drv.err("cuDeviceGetCount", drv.cuDeviceGetCount(&n)); err != nil {
		return nil, err
	}
	if ordinal < 0 || ordinal >= int(n) {
		return nil, fmt.Errorf("no CUDA device %d (%d present)", ordinal, n)
	}
	if err := drv.err("cuDeviceGet", drv.cuDeviceGet(&d.dev, int32(ordinal))); err != nil {
		return nil, err
	}
	name := make([]byte, 256)
	if err := drv.err("cuDeviceGetName", drv.cuDeviceGetName(&name[0], int32(len(name)), d.dev)); err != nil {
		return nil, err
	}
	d.name = string(bytes.TrimRight(name, "\x00"))
	for _, a := range []struct {
		attr int32
		v    *int
	}{{attrMultiprocessors, &d.multiprocessors}, {attrComputeMajor, &d.major}, {attrComputeMinor, &d.minor}, {attrSharedOptin, &d.sharedOptin}} {
		var v int32
		if err := drv.err("cuDeviceGetAttribute", drv.cuDeviceGetAttribute(&v, a.attr, d.dev)); err != nil {
			return nil, err
		}
		*a.v = int(v)
	}
	if err := drv.err("cuDeviceTotalMem", drv.cuDeviceTotalMem(&d.totalMem, d.dev)); err != nil {
		return nil, err
	}
	if d.major < 8 {
		return nil, fmt.Errorf("%s has compute capability %d.%d; the kernels need 8.0 or newer (Ampere)", d.name, d.major, d.minor)
	}
	if err := drv.err("cuDevicePrimaryCtxRetain", drv.cuDevicePrimaryCtxRetain(&d.ctx, d.dev)); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	err = d.do(func() error {
		for _, s := range []*uintptr{&d.compute, &d.copy} {
			if err := drv.err("cuStreamCreate", drv.cuStreamCreate(s, streamNonBlocking)); err != nil {
				return err
			}
		}
		for i := range 2 {
			for _, e := range []*uintptr{&d.readyEv[i], &d.freeEv[i]} {
				if err := drv.err("cuEventCreate", drv.cuEventCreate(e, eventDisableTiming)); err != nil {
					return err
				}
			}
		}
		var p unsafe.Pointer
		if err := drv.err("cuMemHostAlloc", drv.cuMemHostAlloc(&p, scratchBytes, 0)); err != nil {
			return err
		}
		d.scratch = p
		for _, m := range kernels.Modules() {
			if err := d.loadModule(m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// do runs fn on a locked OS thread with the device's context current.
func (d *cudaDevice) do(fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := d.drv.err("cuCtxSetCurrent", d.drv.cuCtxSetCurrent(d.ctx)); err != nil {
		return err
	}
	return fn()
}

// loadModule JIT-compiles one PTX module and looks its kernels up; a JIT error comes with
// the compiler's log.
func (d *cudaDevice) loadModule(m kernels.Module) error {
	// Scratch layout: options (2 x int32), values (2 x pointer), then the log.
	opts := (*[2]int32)(d.scratch)
	vals := (*[2]uintptr)(unsafe.Add(d.scratch, 16))
	logBuf := unsafe.Add(d.scratch, 64)
	opts[0], opts[1] = jitErrorLogBuffer, jitErrorLogBufferBytes
	vals[0], vals[1] = uintptr(logBuf), jitLogBytes
	*(*byte)(logBuf) = 0
	ptx := append([]byte(m.PTX), 0)
	var mod uintptr
	r := d.drv.cuModuleLoadDataEx(&mod, &ptx[0], 2, unsafe.Pointer(opts), unsafe.Pointer(vals))
	runtime.KeepAlive(ptx)
	if err := d.drv.err("cuModuleLoadDataEx", r); err != nil {
		return fmt.Errorf("load kernels %s: %w: %s", m.Name, err, cString((*byte)(logBuf)))
	}
	d.modules = append(d.modules, mod)
	for _, k := range m.Kernels {
		var f uintptr
		if err := d.drv.err("cuModuleGetFunction", d.drv.cuModuleGetFunction(&f, mod, k)); err != nil {
			return fmt.Errorf("load kernel %s: %w", k, err)
		}
		d.funcs[k] = f
	}
	return nil
}

func (d *cudaDevice) alloc(bytes int) (dptr, error) {
	var p uint64
	err := d.do(func() error { return d.drv.err("cuMemAlloc", d.drv.cuMemAlloc(&p, uintptr(max(bytes, 1)))) })
	if err != nil {
		return 0, fmt.Errorf("allocate %d bytes on %s: %w", bytes, d.name, err)
	}
	return dptr(p), nil
}

func (d *cudaDevice) free(p dptr) {
	_ = d.do(func() error { return d.drv.err("cuMemFree", d.drv.cuMemFree(uint64(p))) })
}

// hostBuffer returns n bytes of page-locked host memory, which copies read and write at
// full speed and asynchronously.
func (d *cudaDevice) hostBuffer(n int) ([]byte, error) {
	var p unsafe.Pointer
	err := d.do(func() error { return d.drv.err("cuMemHostAlloc", d.drv.cuMemHostAlloc(&p, uintptr(max(n, 1)), 0)) })
	if err != nil {
		return nil, fmt.Errorf("allocate %d bytes of pinned memory: %w", n, err)
	}
	d.pinned[p] = n
	return unsafe.Slice((*byte)(p), n), nil
}

// freeHostBuffer releases memory from hostBuffer.
func (d *cudaDevice) freeHostBuffer(b []byte) {
	p := unsafe.Pointer(unsafe.SliceData(b))
	delete(d.pinned, p)
	_ = d.do(func() error { return d.drv.err("cuMemFreeHost", d.drv.cuMemFreeHost(p)) })
}

func (d *cudaDevice) copyIn(dst dptr, src []byte) error {
	if len(src) == 0 {
		return nil
	}
	return d.do(func() error {
		// From pageable memory the call returns once src is staged, so src may be reused.
		r := d.drv.cuMemcpyHtoDAsync(uint64(dst), unsafe.Pointer(&src[0]), uintptr(len(src)), d.compute)
		runtime.KeepAlive(src)
		if err := d.drv.err("cuMemcpyHtoDAsync", r); err != nil {
			return err
		}
		if d.isPinned(src) { // an asynchronous copy: wait for it before src may change
			return d.drv.err("cuStreamSynchronize", d.drv.cuStreamSynchronize(d.compute))
		}
		return nil
	})
}

// copyInSlot copies src to dst on the copy stream, after the compute stream released
// input slot (see releaseSlot), and makes the compute stream wait for the copy: the
// upload of the next chunk overlaps the compute of this one. src must stay unchanged
// until the compute stream has passed the copy (the next copyOut).
func (d *cudaDevice) copyInSlot(slot int, dst dptr, src []byte) error {
	if len(src) == 0 {
		return nil
	}
	return d.do(func() error {
		drv := d.drv
		if err := drv.err("cuStreamWaitEvent", drv.cuStreamWaitEvent(d.copy, d.freeEv[slot], 0)); err != nil {
			return err
		}
		r := drv.cuMemcpyHtoDAsync(uint64(dst), unsafe.Pointer(&src[0]), uintptr(len(src)), d.copy)
		runtime.KeepAlive(src)
		if err := drv.err("cuMemcpyHtoDAsync", r); err != nil {
			return err
		}
		if err := drv.err("cuEventRecord", drv.cuEventRecord(d.readyEv[slot], d.copy)); err != nil {
			return err
		}
		return drv.err("cuStreamWaitEvent", drv.cuStreamWaitEvent(d.compute, d.readyEv[slot], 0))
	})
}

// releaseSlot marks the point of the compute stream after which input slot may be
// overwritten by the next copyInSlot.
func (d *cudaDevice) releaseSlot(slot int) error {
	return d.do(func() error { return d.drv.err("cuEventRecord", d.drv.cuEventRecord(d.freeEv[slot], d.compute)) })
}

func (d *cudaDevice) isPinned(b []byte) bool {
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	for base, n := range d.pinned {
		if b := uintptr(base); p >= b && p < b+uintptr(n) {
			return true
		}
	}
	return false
}

func (d *cudaDevice) copyOut(dst []byte, src dptr) error {
	if len(dst) == 0 {
		return d.sync()
	}
	return d.do(func() error {
		r := d.drv.cuMemcpyDtoHAsync(unsafe.Pointer(&dst[0]), uint64(src), uintptr(len(dst)), d.compute)
		runtime.KeepAlive(dst)
		if err := d.drv.err("cuMemcpyDtoHAsync", r); err != nil {
			return err
		}
		return d.drv.err("cuStreamSynchronize", d.drv.cuStreamSynchronize(d.compute))
	})
}

func (d *cudaDevice) sync() error {
	return d.do(func() error { return d.drv.err("cuStreamSynchronize", d.drv.cuStreamSynchronize(d.compute)) })
}

func (d *cudaDevice) sms() int { return d.multiprocessors }

func (d *cudaDevice) launch(name string, grid, block [3]uint32, smem int, a *kargs) error {
	f, ok := d.funcs[name]
	if !ok {
		return fmt.Errorf("launch %s: no such kernel", name)
	}
	if err := checkGrid(name, grid); err != nil {
		return err
	}
	if len(a.vals) > maxKernelParams {
		return fmt.Errorf("launch %s: %d parameters", name, len(a.vals))
	}
	return d.do(func() error {
		if smem > defaultSharedBytes && d.smemSet[f] < smem {
			if smem > d.sharedOptin {
				return fmt.Errorf("launch %s: %d bytes of shared memory, %s has %d per block", name, smem, d.name, d.sharedOptin)
			}
			if err := d.drv.err("cuFuncSetAttribute", d.drv.cuFuncSetAttribute(f, funcMaxDynamicShared, int32(smem))); err != nil {
				return fmt.Errorf("launch %s: %w", name, err)
			}
			d.smemSet[f] = smem
		}
		// The parameters and the pointers to them, in pinned memory (the driver copies
		// them during the call).
		vals := unsafe.Slice((*uint64)(d.scratch), maxKernelParams)
		ptrs := unsafe.Slice((*uintptr)(unsafe.Add(d.scratch, 8*maxKernelParams)), maxKernelParams)
		for i, v := range a.vals {
			vals[i] = v
			ptrs[i] = uintptr(unsafe.Pointer(&vals[i]))
		}
		r := d.drv.cuLaunchKernel(f, grid[0], grid[1], grid[2], block[0], block[1], block[2], uint32(smem), d.compute,
			unsafe.Pointer(&ptrs[0]), nil)
		if err := d.drv.err("cuLaunchKernel", r); err != nil {
			return fmt.Errorf("launch %s: %w", name, err)
		}
		return nil
	})
}

// memInfo returns the free and total memory of the device.
func (d *cudaDevice) memInfo() (free, total uint64, err error) {
	err = d.do(func() error { return d.drv.err("cuMemGetInfo", d.drv.cuMemGetInfo(&free, &total)) })
	return free, total, err
}

// close releases the streams, events, modules, pinned memory and the context.
func (d *cudaDevice) close() error {
	drv := d.drv
	err := d.do(func() error {
		_ = drv.cuCtxSynchronize()
		for _, m := range d.modules {
			drv.cuModuleUnload(m)
		}
		for _, e := range append(d.readyEv[:], d.freeEv[:]...) {
			if e != 0 {
				drv.cuEventDestroy(e)
			}
		}
		for _, s := range []uintptr{d.compute, d.copy} {
			if s != 0 {
				drv.cuStreamDestroy(s)
			}
		}
		for p := range d.pinned {
			drv.cuMemFreeHost(p)
		}
		if d.scratch != nil {
			drv.cuMemFreeHost(d.scratch)
		}
		return nil
	})
	d.modules, d.pinned, d.scratch = nil, nil, nil
	return errors.Join(err, drv.err("cuDevicePrimaryCtxRelease", drv.cuDevicePrimaryCtxRelease(d.dev)))
}
