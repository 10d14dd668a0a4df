package agent

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// ChildOf returns an NVML.Own that counts the direct children of process parent (the GPU
// runner of this app) as the app's own. It reads the parent id from /proc; where there is
// no /proc (macOS, Windows) no process counts, and the runner's work looks like another
// program's.
func ChildOf(parent int) func(pid uint32) bool {
	return func(pid uint32) bool {
		ppid, err := parentPID(pid)
		return err == nil && ppid == parent
	}
}

// parentPID reads the parent id of pid from /proc/PID/stat: the field after the
// command, which is in parentheses and may itself hold spaces and parentheses.
func parentPID(pid uint32) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("read /proc/%d/stat: no command field", pid)
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 2 {
		return 0, fmt.Errorf("read /proc/%d/stat: too short", pid)
	}
	return strconv.Atoi(string(f[1]))
}
