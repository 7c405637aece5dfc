//go:build unix

package bench

import (
	"syscall"
	"time"
)

// cpuSelf is the user and system CPU time of this process.
func cpuSelf() time.Duration { return cpuTime(syscall.RUSAGE_SELF) }

// cpuChildren is the CPU time of this process's children that ended and
// were waited for.
func cpuChildren() time.Duration { return cpuTime(syscall.RUSAGE_CHILDREN) }

func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
