//go:build !unix

package tensor

// cpuSeconds is 0 where the process CPU time is not available.
func cpuSeconds() float64 { return 0 }
