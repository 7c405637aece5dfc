//go:build !unix

package handler

import (
	"os/exec"
	"syscall"
)

// processAttributes has nothing to add where there are no process groups:
// a handler's own children are not reached by Stop there.
func processAttributes() *syscall.SysProcAttr { return nil }

// askToStop kills at once: there is no SIGTERM to ask with.
func askToStop(cmd *exec.Cmd) { _ = cmd.Process.Kill() }

func kill(cmd *exec.Cmd) { _ = cmd.Process.Kill() }
