//go:build reliability && !linux

package reliability

import "os/exec"

// startCmd starts cmd; off Linux only the test's cleanups kill children.
func startCmd(cmd *exec.Cmd) error { return cmd.Start() }

func cpuTime() string { return "n/a" }
