//go:build unix

package policy

import (
	"syscall"
	"time"
)

// processCPU is the CPU time the process has used, all threads included:
// on a busy machine it measures a decision's cost where wall time cannot.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
