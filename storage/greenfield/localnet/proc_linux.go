package localnet

import (
	"os/exec"
	"syscall"
)

var terminate = syscall.SIGTERM

// setProcAttr makes the kernel kill the process when the test process dies, so a
// killed test leaves nothing running.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
