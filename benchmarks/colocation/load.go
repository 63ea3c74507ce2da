package main

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// LoadResult is one open-loop run against the LC service.
type LoadResult struct {
	Sent, Errors int64
	Hist         *hdrhistogram.Histogram
}

// clientDial, when set (with -net), makes the load generator's
// connections (inside the benchmark's network namespace).
var clientDial func(ctx context.Context, network, addr string) (net.Conn, error)

func newClient() *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DialContext:         clientDial,
			MaxIdleConns:        512,
			MaxIdleConnsPerHost: 512,
			IdleConnTimeout:     30 * time.Second,
		},
	}
}

func get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// capacity runs a closed loop of conc clients for d and returns requests
// per second.
func capacity(ctx context.Context, url string, conc int, d time.Duration) float64 {
	c := newClient()
	var n atomic.Int64
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) && ctx.Err() == nil {
				if get(c, url) == nil {
					n.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / d.Seconds()
}

// loadSpec is one open-loop run.
type loadSpec struct {
	url string
	// rate is the mean arrival rate (req/s) at t, measured from the start
	// of the measured window (negative during the warm-up).
	rate           func(t time.Duration) float64
	warmup, window time.Duration
	// begin, when set, is called as the measured window opens, with the
	// moment it opened (the origin of the samples' times).
	begin func(start time.Time)
	// sample, when set, gets every measured request: its intended send
	// time (from the window's start) and latency, or ok false for an error.
	sample func(at, lat time.Duration, ok bool)
}

// openLoop sends requests at Poisson times with mean rate spec.rate (a
// piecewise-constant rate is followed phase by phase) over the warm-up and
// the window, and records the window's latencies. Each latency runs from
// the request's intended send time, so when the sender or the server falls
// behind the delay counts against the service.
func openLoop(ctx context.Context, spec loadSpec, rng *rand.Rand) LoadResult {
	c := newClient()
	h := hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
	var mu sync.Mutex
	var errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now().Add(spec.warmup) // the window's start
	next := time.Now()
	var sent int64
	begun := false
	for ctx.Err() == nil {
		r := spec.rate(next.Sub(start))
		if r <= 0 {
			r = 1
		}
		next = next.Add(time.Duration(rng.ExpFloat64() / r * float64(time.Second)))
		at := next.Sub(start)
		if at >= spec.window {
			break
		}
		if w := time.Until(next); w > 0 {
			time.Sleep(w)
		}
		measured := at >= 0
		if measured && !begun {
			begun = true
			if spec.begin != nil {
				spec.begin(start)
			}
		}
		if measured {
			sent++
		}
		wg.Add(1)
		go func(intended time.Time, at time.Duration, measured bool) {
			defer wg.Done()
			err := get(c, spec.url)
			lat := time.Since(intended)
			if !measured {
				return
			}
			if spec.sample != nil {
				spec.sample(at, lat, err == nil)
			}
			if err != nil {
				errs.Add(1)
				return
			}
			mu.Lock()
			_ = h.RecordValue(lat.Microseconds())
			mu.Unlock()
		}(next, at, measured)
	}
	if !begun && spec.begin != nil {
		spec.begin(start)
	}
	wg.Wait()
	return LoadResult{Sent: sent, Errors: errs.Load(), Hist: h}
}
