//go:build linux && cgo

package emu

import (
	"errors"
	"slices"
	"testing"

	"github.com/gata-contrib/gata/dva/cuda/internal/emu/sources"
)

// TestSourcesCurrent fails when a kernel changed after sources.go was generated: the
// build cache would otherwise keep running the old kernels.
func TestSourcesCurrent(t *testing.T) {
	sum, err := sources.Hash("../../../../kernels")
	if err != nil {
		t.Fatal(err)
	}
	if sum != kernelSources {
		t.Fatal("kernels/*.cu changed since the emulator was built: run go generate ./dva/cuda/internal/emu")
	}
}

func TestLaunchChecksArguments(t *testing.T) {
	if !slices.Contains(Kernels(), "l2_normalize") {
		t.Fatalf("Kernels() = %v, want l2_normalize among them", Kernels())
	}
	grid, block := [3]uint32{1, 1, 1}, [3]uint32{32, 1, 1}
	if err := Launch("no_such_kernel", grid, block, 0, nil, nil); err == nil {
		t.Error("Launch(no_such_kernel) succeeded")
	}
	// l2_normalize(const float*, float*, int, int): one argument short, then one of the wrong size.
	if err := Launch("l2_normalize", grid, block, 0, []uint64{0, 0, 0}, []int{8, 8, 4}); err == nil {
		t.Error("Launch with 3 of 4 arguments succeeded")
	}
	if err := Launch("l2_normalize", grid, block, 0, []uint64{0, 0, 0, 0}, []int{8, 8, 8, 4}); err == nil {
		t.Error("Launch with an 8-byte int succeeded")
	}
	// Zero rows: a valid launch that touches no memory.
	if err := Launch("l2_normalize", grid, block, 0, []uint64{0, 0, 0, 4}, []int{8, 8, 4, 4}); err != nil {
		t.Errorf("Launch(l2_normalize, 0 rows): %v", err)
	}
}

func TestLaunchReportsDeadlock(t *testing.T) {
	err := Launch("emu_selftest_deadlock", [3]uint32{2, 1, 1}, [3]uint32{64, 1, 1}, 0, []uint64{0}, []int{4})
	if !errors.Is(err, ErrDeadlock) {
		t.Errorf("Launch(emu_selftest_deadlock) = %v, want ErrDeadlock", err)
	}
}
