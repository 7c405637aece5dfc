package handler

import (
	"os/exec"
	"syscall"
)

// processAttributes puts the handler in a process group of its own, so
// that stopping it reaches what it starts, and has the kernel kill it when
// Sluice dies, even by SIGKILL.
func processAttributes() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func askToStop(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }

func kill(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
