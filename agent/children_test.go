package agent

import (
	"os"
	"os/exec"
	"runtime"
	"testing"
)

func TestChildOf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("ChildOf reads /proc, which only Linux has")
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	own := ChildOf(os.Getpid())
	if !own(uint32(cmd.Process.Pid)) {
		t.Errorf("ChildOf(me)(child %d) = false, want true", cmd.Process.Pid)
	}
	if own(uint32(os.Getpid())) {
		t.Error("ChildOf(me)(me) = true: a process is not its own child")
	}
	if own(1) {
		t.Error("ChildOf(me)(1) = true")
	}
	if own(1 << 30) {
		t.Error("ChildOf(me)(a pid that does not exist) = true")
	}
}
