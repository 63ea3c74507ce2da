// Package schedbpf holds the scheduler probe's BPF programs, compiled from
// sched.c by bpf2go. The generated object and Go file are committed so that
// building Strata needs no clang; run `go generate` here (clang-16 and
// libbpf-dev from apt) only after changing sched.c.
package schedbpf

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go@v0.22.0 -cc clang-16 -strip llvm-strip-16 -target bpfel -type cg_stats -type on_cpu Sched sched.c -- -I/usr/include/x86_64-linux-gnu -O2 -g -Wall -Werror
