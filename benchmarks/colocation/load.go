package main

import (
	"context"
	"io"
	"math/rand/v2"
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

func newClient() *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
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

// openLoop sends requests at Poisson times with mean rate rps for d. Each
// latency runs from the request's intended send time, so when the sender
// or the server falls behind the delay counts against the service.
func openLoop(ctx context.Context, url string, rps float64, d time.Duration, rng *rand.Rand) LoadResult {
	c := newClient()
	h := hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
	var mu sync.Mutex
	var errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	next := start
	var sent int64
	for ctx.Err() == nil {
		next = next.Add(time.Duration(rng.ExpFloat64() / rps * float64(time.Second)))
		if next.Sub(start) >= d {
			break
		}
		if w := time.Until(next); w > 0 {
			time.Sleep(w)
		}
		sent++
		wg.Add(1)
		go func(intended time.Time) {
			defer wg.Done()
			err := get(c, url)
			lat := time.Since(intended)
			if err != nil {
				errs.Add(1)
				return
			}
			mu.Lock()
			_ = h.RecordValue(lat.Microseconds())
			mu.Unlock()
		}(next)
	}
	wg.Wait()
	return LoadResult{Sent: sent, Errors: errs.Load(), Hist: h}
}
