//go:build unix && !linux

package handler

import (
	"os/exec"
	"syscall"
)

// processAttributes puts the handler in a process group of its own, so
// that stopping it reaches what it starts. (Only Linux can have the kernel
// kill it when Sluice dies; elsewhere a handler outlives a killed Sluice.)
func processAttributes() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

func askToStop(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }

func kill(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
