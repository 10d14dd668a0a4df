//go:build !linux

package localnet

import (
	"os"
	"os/exec"
)

var terminate = os.Interrupt

func setProcAttr(cmd *exec.Cmd) {}
