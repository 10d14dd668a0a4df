package cuda

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/gata-contrib/gata/dva/clip"
)

// gpuInfo is one card as NVML reports it.
type gpuInfo struct {
	Index        int
	UUID, Name   string
	Major, Minor int // CUDA compute capability
	Total, Free  uint64
}

// LoadNVML loads the driver's management library (NVML, at run time) and initialises it;
// each call that succeeds wants its nvml.Shutdown. Without the driver it fails with an
// error wrapping ErrNoDriver. Both this package's probe and the worker's telemetry
// (agent.NVML) open NVML here.
func LoadNVML() (err error) {
	defer func() {
		// The bindings dlopen the library; a missing one must not take the app down.
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: load NVML: %v", ErrNoDriver, r)
		}
	}()
	if ret := nvml.Init(); ret != nvml.SUCCESS {
		return fmt.Errorf("%w: load NVML: %s", ErrNoDriver, nvml.ErrorString(ret))
	}
	return nil
}

// EachNVMLDevice calls fn with the NVML index and handle of each card, in index order;
// NVML must be loaded (LoadNVML). A card NVML counts but cannot open is left out: the
// error joins those, or says why the cards could not be counted.
func EachNVMLDevice(fn func(index int, d nvml.Device)) error {
	n, ret := nvml.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return fmt.Errorf("count GPUs: NVML: %s", nvml.ErrorString(ret))
	}
	var errs []error
	for i := range n {
		d, ret := nvml.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			errs = append(errs, fmt.Errorf("GPU %d: NVML: %s", i, nvml.ErrorString(ret)))
			continue
		}
		fn(i, d)
	}
	return errors.Join(errs...)
}

// probeGPUs lists the cards through NVML (loaded at run time). Without the driver it
// fails with ErrNoDriver.
func probeGPUs() ([]gpuInfo, error) {
	if err := LoadNVML(); err != nil {
		return nil, err
	}
	defer nvml.Shutdown()
	var gpus []gpuInfo
	err := EachNVMLDevice(func(i int, d nvml.Device) {
		g := gpuInfo{Index: i}
		g.Name, _ = d.GetName()
		g.UUID, _ = d.GetUUID()
		g.Major, g.Minor, _ = d.GetCudaComputeCapability()
		if m, ret := d.GetMemoryInfo(); ret == nvml.SUCCESS {
			g.Total, g.Free = m.Total, m.Free
		}
		gpus = append(gpus, g)
	})
	if len(gpus) == 0 && err != nil {
		return nil, err
	}
	return gpus, nil
}

// memoryNeed estimates the device memory the model needs: its matrices in half, the
// staging of one matrix in float, and the activations of one image chunk and of a batch
// of texts.
func memoryNeed(cfg *clip.Config) uint64 {
	var params, largest int
	for _, s := range cfg.Shapes() {
		n := 1
		for _, d := range s.Shape {
			n *= d
		}
		params += n
		largest = max(largest, n)
	}
	v, t := cfg.Vision, cfg.Text
	perRow := func(width, mlp int) int { return 4*width + 2*width + 6*width + 2*width + 2*mlp }
	act := imageChunk*v.Tokens()*perRow(v.Width, v.MLPWidth()) + imageChunk*3*v.ImageSize*v.ImageSize*2*2 +
		256*t.ContextLength*perRow(t.Width, t.MLPWidth())
	return uint64(2*params + 4*largest + act + 256<<20) // and room for the context and the kernels
}

// pickGPU chooses the card to run on: want (an NVML index) when it is 0 or more, else the
// usable card with the most free memory. The error says why none can be used.
func pickGPU(gpus []gpuInfo, want int, need uint64) (gpuInfo, error) {
	if len(gpus) == 0 {
		return gpuInfo{}, errors.New("no NVIDIA GPU found")
	}
	var best *gpuInfo
	var why []string
	for i := range gpus {
		g := &gpus[i]
		if want >= 0 && g.Index != want {
			continue
		}
		switch {
		case g.Major < 8:
			why = append(why, fmt.Sprintf("GPU %d (%s) has compute capability %d.%d; the kernels need 8.0 or newer", g.Index, g.Name, g.Major, g.Minor))
		case g.Free < need:
			why = append(why, fmt.Sprintf("GPU %d (%s) has %d MB free; the model needs about %d MB", g.Index, g.Name, g.Free>>20, need>>20))
		case best == nil || g.Free > best.Free:
			best = g
		}
	}
	if best != nil {
		return *best, nil
	}
	if want >= 0 && len(why) == 0 {
		return gpuInfo{}, fmt.Errorf("no GPU %d (found %d)", want, len(gpus))
	}
	return gpuInfo{}, errors.New(strings.Join(why, "; "))
}

// gpuSetting reads $GATA_GPU: "off" (or "cpu", "none") keeps the work on the CPU, a number
// picks that card (NVML's index), empty picks the best card.
func gpuSetting(v string) (off bool, want int, err error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "":
		return false, -1, nil
	case "off", "cpu", "none":
		return true, -1, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return false, -1, fmt.Errorf("GATA_GPU=%q: want off or a GPU index", v)
	}
	return false, n, nil
}
