package buildcache_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/strata-nri/strata/internal/buildcache"
)

// Populate fills a cache entry once; the second call finds it complete.
func ExamplePopulate() {
	cache, _ := os.MkdirTemp("", "buildcache-example")
	defer os.RemoveAll(cache)
	entry := filepath.Join(cache, "tool-1.0")
	unlock, err := buildcache.Lock(filepath.Join(cache, ".lock"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer unlock()
	for i := 0; i < 2; i++ {
		filled, err := buildcache.Populate(entry, func(tmp string) (string, error) {
			return "tool-1.0.tar", os.WriteFile(filepath.Join(tmp, "tool"), []byte("#!/bin/sh\n"), 0o755)
		})
		fmt.Println(filled, err)
	}
	// Output:
	// true <nil>
	// false <nil>
}
