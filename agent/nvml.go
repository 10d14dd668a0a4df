package agent

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/gata-contrib/gata/dva/cuda"
)

// NVML reads NVIDIA cards through the driver's management library, loaded at run time:
// on a machine without the driver OpenNVML fails and the worker shares the CPU.
type NVML struct {
	mu sync.Mutex
	// Own reports whether a process id is this app's (its GPU runner child): those do
	// not count as other programs. Nil: only this process.
	Own func(pid uint32) bool
}

// OpenNVML loads and initialises NVML (cuda.LoadNVML: an error wrapping cuda.ErrNoDriver
// without the driver).
func OpenNVML() (*NVML, error) {
	if err := cuda.LoadNVML(); err != nil {
		return nil, err
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
	me := uint32(os.Getpid())
	var out []GPU
	err := cuda.EachNVMLDevice(func(i int, d nvml.Device) {
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
	})
	return out, err
}
