package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// NVML reads NVIDIA cards through the driver's management library, loaded at run time:
// on a machine without the driver OpenNVML fails and the worker shares the CPU.
type NVML struct {
	mu sync.Mutex
	// Own reports whether a process id is this app's (its GPU runner child): those do
	// not count as other programs. Nil: only this process.
	Own func(pid uint32) bool
}

// OpenNVML loads and initialises NVML.
func OpenNVML() (n *NVML, err error) {
	defer func() {
		// The bindings dlopen the library; a missing one must not take the app down.
		if r := recover(); r != nil {
			n, err = nil, fmt.Errorf("load NVML: %v", r)
		}
	}()
	if ret := nvml.Init(); ret != nvml.SUCCESS {
		return nil, fmt.Errorf("load NVML: %s", nvml.ErrorString(ret))
	}
	return &NVML{}, nil
}

// Close shuts NVML down.
func (n *NVML) Close() error {
	if ret := nvml.Shutdown(); ret != nvml.SUCCESS {
		return fmt.Errorf("shut NVML down: %s", nvml.ErrorString(ret))
	}
	return nil
}

// GPUs reads every card.
func (n *NVML) GPUs(ctx context.Context) ([]GPU, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	count, ret := nvml.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("count GPUs: %s", nvml.ErrorString(ret))
	}
	me := uint32(os.Getpid())
	var out []GPU
	var errs []error
	for i := range count {
		d, ret := nvml.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			errs = append(errs, fmt.Errorf("GPU %d: %s", i, nvml.ErrorString(ret)))
			continue
		}
		g := GPU{Index: i}
		g.Name, _ = d.GetName()
		g.UUID, _ = d.GetUUID()
		if m, ret := d.GetMemoryInfo(); ret == nvml.SUCCESS {
			g.MemoryTotal, g.MemoryUsed = m.Total, m.Used
		}
		if u, ret := d.GetUtilizationRates(); ret == nvml.SUCCESS {
			g.Utilization = int(u.Gpu)
		}
		if t, ret := d.GetTemperature(nvml.TEMPERATURE_GPU); ret == nvml.SUCCESS {
			g.TempC = float64(t)
		}
		if p, ret := d.GetPowerUsage(); ret == nvml.SUCCESS {
			g.PowerW = float64(p) / 1000
		}
		if p, ret := d.GetEnforcedPowerLimit(); ret == nvml.SUCCESS {
			g.PowerLimitW = float64(p) / 1000
		}
		if c, ret := d.GetClockInfo(nvml.CLOCK_SM); ret == nvml.SUCCESS {
			g.SMClockMHz = int(c)
		}
		if c, ret := d.GetClockInfo(nvml.CLOCK_MEM); ret == nvml.SUCCESS {
			g.MemClockMHz = int(c)
		}
		others := map[uint32]bool{}
		for _, list := range []func() ([]nvml.ProcessInfo, nvml.Return){d.GetComputeRunningProcesses, d.GetGraphicsRunningProcesses} {
			ps, ret := list()
			if ret != nvml.SUCCESS {
				continue
			}
			for _, p := range ps {
				if p.Pid != me && (n.Own == nil || !n.Own(p.Pid)) {
					others[p.Pid] = true
				}
			}
		}
		g.OtherProcesses = len(others)
		out = append(out, g)
	}
	return out, errors.Join(errs...)
}
