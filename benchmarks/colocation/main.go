package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

func main() {
	if runRole() {
		return
	}
	var o Options
	flag.DurationVar(&o.Duration, "duration", 10*time.Second, "length of one scenario's measurement")
	flag.IntVar(&o.Repeats, "repeats", 3, "times every scenario runs (interleaved)")
	flag.Float64Var(&o.Load, "load", 0.5, "LC offered load as a fraction of its capacity measured alone (0.05..0.95)")
	flag.IntVar(&o.Work, "work", 2000, "LC per-request work: hashed 64-byte chunks of its working set")
	out := flag.String("out", "", "directory for colocation.md, .json and .svg (default: print Markdown only)")
	flag.Parse()
	rep, err := Run(context.Background(), o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "colocation:", err)
		os.Exit(1)
	}
	md := rep.Markdown()
	fmt.Print(md)
	if *out != "" {
		if err := os.MkdirAll(*out, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "colocation:", err)
			os.Exit(1)
		}
		js, _ := json.MarshalIndent(rep, "", "  ")
		var svg bytes.Buffer
		if err := rep.WriteSVG(&svg); err != nil {
			fmt.Fprintln(os.Stderr, "colocation:", err)
			os.Exit(1)
		}
		for name, b := range map[string][]byte{"colocation.md": []byte(md), "colocation.json": js, "colocation.svg": svg.Bytes()} {
			if err := os.WriteFile(filepath.Join(*out, name), b, 0o644); err != nil {
				fmt.Fprintln(os.Stderr, "colocation:", err)
				os.Exit(1)
			}
		}
	}
}
