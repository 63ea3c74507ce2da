// Command pause is the sandbox ("pause") process of Strata's end-to-end test
// image. It is built statically (CGO_ENABLED=0) at test time and packed with
// busybox into a local image, so the tests never pull from a registry.
//
// As PID 1 of a pod it must reap orphaned children and exit cleanly on
// SIGINT/SIGTERM, which is all it does.
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
		// Reap every exited child; several SIGCHLDs may have coalesced.
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
