// Command pause is the pod sandbox process of the e2e cluster's containerd (its sandbox_image):
// it holds the pod's namespaces, reaps zombies (it is PID 1 when the pod shares its PID
// namespace) and exits 0 on SIGINT or SIGTERM. Nothing can be pulled on the e2e machine, so the
// harness builds this instead of registry.k8s.io/pause.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every exited child without blocking.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
