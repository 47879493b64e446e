package testenv

import (
	"os/exec"
	"syscall"
)

// setProcAttr makes the kernel kill influxd if the test binary dies without running
// its cleanups (a panic, a -timeout, a SIGKILL), so no orphan keeps a port and a
// temp dir.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
