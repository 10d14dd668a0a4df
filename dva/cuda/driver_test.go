package cuda

import (
	"errors"
	"strings"
	"testing"
)

// TestDriverMissing: without the driver library, loading fails with ErrNoDriver and a
// message that says so, and nothing panics.
func TestDriverMissing(t *testing.T) {
	old := driverLibrary
	driverLibrary = "libcuda-does-not-exist.so.1"
	t.Setenv("GATA_CUDA_LIBRARY", "")
	defer func() { driverLibrary = old }()
	d, err := loadDriver()
	if d != nil || !errors.Is(err, ErrNoDriver) {
		t.Fatalf("loadDriver() = %v, %v; want ErrNoDriver", d, err)
	}
	if !strings.Contains(err.Error(), "no NVIDIA driver") || !strings.Contains(err.Error(), "libcuda-does-not-exist.so.1") {
		t.Errorf("loadDriver() error %q does not say there is no driver and which library", err)
	}
}

// TestDriverWithoutGPU runs the real driver binding of this machine: where there is no
// usable GPU (no library, or a library without the kernel driver, as here) it fails
// cleanly with ErrNoDriver.
func TestDriverWithoutGPU(t *testing.T) {
	d, err := loadDriver()
	if err == nil {
		var n int32
		d.cuDeviceGetCount(&n)
		t.Skipf("the CUDA driver initialises on this machine (%d devices): the no-driver path is tested by TestDriverMissing", n)
	}
	if !errors.Is(err, ErrNoDriver) || !strings.HasPrefix(err.Error(), "no NVIDIA driver") {
		t.Fatalf("loadDriver() error = %v, want one starting with %q", err, ErrNoDriver)
	}
	t.Logf("loadDriver() on this machine: %v", err)
}
