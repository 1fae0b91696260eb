//go:build reliability && linux

package reliability

import (
	"fmt"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"
)

var (
	spawnOnce sync.Once
	spawn     chan func()
)

// startCmd starts cmd so that the kernel SIGKILLs it if the test binary
// dies first (a -timeout panic skips cleanups), leaving no stray server
// holding ports. Pdeathsig fires when the thread that forked exits, so
// children are forked from one goroutine locked to a thread that never exits.
func startCmd(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawn = make(chan func())
		go func() {
			runtime.LockOSThread()
			for f := range spawn {
				f()
			}
		}()
	})
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	errc := make(chan error, 1)
	spawn <- func() { errc <- cmd.Start() }
	return <-errc
}

// cpuTime is the CPU the test process used so far, user and system.
func cpuTime() string {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return "n/a"
	}
	return fmt.Sprintf("user %s sys %s", time.Duration(ru.Utime.Nano()).Round(time.Second), time.Duration(ru.Stime.Nano()).Round(time.Second))
}
