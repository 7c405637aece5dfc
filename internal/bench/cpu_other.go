//go:build !unix

package bench

import "time"

// cpuSelf is not measured here: figures of CPU per event read 0.
func cpuSelf() time.Duration { return 0 }

// cpuChildren is not measured here.
func cpuChildren() time.Duration { return 0 }
