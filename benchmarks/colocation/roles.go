package main

import (
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// roleEnv names the environment variable a child process reads its role
// from.
const roleEnv = "STRATA_COLOCATION_ROLE"

// workEnv carries the LC service's per-request work (iterations over the
// working set).
const workEnv = "STRATA_COLOCATION_WORK"

// runRole runs the child role named in the environment and reports whether
// there was one.
func runRole() bool {
	role := os.Getenv(roleEnv)
	if role == "" {
		return false
	}
	var err error
	switch role {
	case "lc":
		err = serveLC()
	case "cpu":
		err = antagonist(cpuBurn)
	case "mem":
		err = antagonist(memThrash)
	case "disk":
		err = antagonist(diskStream)
	case "net":
		err = antagonist(netBlast)
	case "strata":
		err = runStrata()
	default:
		err = fmt.Errorf("%s=%q: unknown; allowed: lc, cpu, mem, disk, net, strata", roleEnv, role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "colocation child:", err)
		os.Exit(1)
	}
	os.Exit(0)
	return true
}

// lcWorkingSet is the LC service's working set per request handler.
const lcWorkingSet = 4 << 20

// serveLC listens on a loopback port (with -net, the benchmark veth's host side), prints it on stdout, and serves
// requests until SIGTERM.
func serveLC() error {
	iters, err := strconv.Atoi(os.Getenv(workEnv))
	if err != nil || iters <= 0 || iters > 1<<20 {
		return fmt.Errorf("%s=%q: want an integer in 1..%d", workEnv, os.Getenv(workEnv), 1<<20)
	}
	ws := make([]byte, lcWorkingSet)
	for i := range ws {
		ws[i] = byte(i * 7)
	}
	// With the fsync option every request appends a small record to a log
	// and syncs it, as a database's write-ahead log does.
	var log *os.File
	if os.Getenv(fsyncEnv) != "" {
		if log, err = os.OpenFile(filepath.Join(os.Getenv(dirEnv), "lc.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err != nil {
			return err
		}
	}
	addr := "127.0.0.1:0"
	if a := os.Getenv(lcListenEnv); a != "" {
		addr = a
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	var seed atomic.Uint64
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		// Fixed work: hash 64-byte chunks at pseudo-random places in the
		// working set, so the request touches memory as well as the ALU.
		s := seed.Add(0x9e3779b97f4a7c15)
		var sum [32]byte
		for i := 0; i < iters; i++ {
			s = s*6364136223846793005 + 1442695040888963407
			off := int(s>>33) % (lcWorkingSet - 64)
			sum = sha256.Sum256(append(sum[:0:0], ws[off:off+64]...))
			ws[off] ^= sum[0]
		}
		if log != nil {
			var rec [128]byte
			copy(rec[:], sum[:])
			_, err := log.Write(rec[:])
			if err == nil {
				err = log.Sync()
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		fmt.Fprintf(w, "%x\n", sum[:4])
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		<-c
		srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// antagonist runs work in a loop; at each SIGUSR1 it prints the
// operations done so far and the seconds it has run, and at SIGTERM prints
// them once more and exits.
func antagonist(work func(*atomic.Uint64)) error {
	var ops atomic.Uint64
	start := time.Now()
	go work(&ops)
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGUSR1)
	// Until Notify, Go drops a SIGUSR1: tell the parent it may ask now.
	fmt.Println("ready")
	for sig := range c {
		fmt.Printf("%d %f\n", ops.Load(), time.Since(start).Seconds())
		if sig == syscall.SIGTERM {
			break
		}
	}
	return nil
}

// cpuBurn spins on integer arithmetic; one operation is 1<<16 steps.
func cpuBurn(ops *atomic.Uint64) {
	x := uint64(1)
	for {
		for i := 0; i < 1<<16; i++ {
			x = x*2862933555777941757 + 3037000493
		}
		if x == 0 {
			fmt.Println(x) // keeps the loop from being optimised away
		}
		ops.Add(1)
	}
}

// memThrash streams through a 64 MiB buffer (larger than any cache here),
// reading and writing one word per cache line; one operation is one MiB.
func memThrash(ops *atomic.Uint64) {
	buf := make([]uint64, 64<<20/8)
	for {
		for mb := 0; mb < len(buf); mb += 1 << 17 {
			for i := mb; i < mb+1<<17; i += 8 {
				buf[i]++
			}
			ops.Add(1)
		}
	}
}
