package netqos

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// scope is the network namespace an object works in: its netlink handle,
// and a way to run code whose kernel calls resolve interface indexes there
// (TCX attach, BPF link queries, raw netlink sockets).
type scope struct {
	path string
	ns   netns.NsHandle // netns.None() for the caller's namespace
	nl   *netlink.Handle
}

// openScope opens the namespace at path ("" = the caller's). The netlink
// handle speaks rtnetlink only: netlink's default opens every family it
// knows, and fails where one (xfrm, netfilter) is a module not loaded.
func openScope(path string) (*scope, error) {
	s := &scope{path: path, ns: netns.None()}
	if path == "" {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return nil, fmt.Errorf("netqos: netlink: %w", err)
		}
		s.nl = h
		return s, nil
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("%w: network namespace %s: %v", ErrInvalid, path, err)
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("netqos: netlink in %s: %w", path, err)
	}
	s.ns, s.nl = ns, h
	return s, nil
}

// openInterface opens the namespace at path and finds the interface name
// in it, the first step of every object that owns an interface (Tree,
// Pacer). On an error nothing stays open.
func openInterface(path, name string) (*scope, int, error) {
	s, err := openScope(path)
	if err != nil {
		return nil, 0, err
	}
	l, err := s.link(name)
	if err != nil {
		s.close()
		return nil, 0, err
	}
	return s, l.Attrs().Index, nil
}

func (s *scope) close() {
	if s.nl != nil {
		s.nl.Close()
	}
	if s.ns.IsOpen() {
		s.ns.Close()
	}
}

func (s *scope) String() string {
	if s.path == "" {
		return "this network namespace"
	}
	return "network namespace " + s.path
}

// link finds an interface by name, with an error naming it and the
// namespace when it does not exist.
func (s *scope) link(name string) (netlink.Link, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: interface name is empty", ErrInvalid)
	}
	l, err := s.nl.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("%w: %q in %s", ErrNoInterface, name, s)
		}
		return nil, fmt.Errorf("netqos: look up interface %q in %s: %w", name, s, err)
	}
	return l, nil
}

// do runs fn on a thread inside the namespace. If the thread cannot be
// moved back it stays locked, so the runtime retires it with the goroutine
// instead of reusing a thread in the wrong namespace.
func (s *scope) do(fn func() error) error {
	if !s.ns.IsOpen() {
		return fn()
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netqos: current network namespace: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(s.ns); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netqos: enter %s: %w", s, err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		return errors.Join(ferr, fmt.Errorf("netqos: leave %s: %w", s, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// LocalAddrs lists the addresses of every interface in the network
// namespace at netnsPath ("" = the caller's): the node's own addresses,
// which a host-network pod reports as its IPs and which must never be
// classified as one pod's.
func LocalAddrs(netnsPath string) (map[netip.Addr]bool, error) {
	s, err := openScope(netnsPath)
	if err != nil {
		return nil, err
	}
	defer s.close()
	as, err := s.nl.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("netqos: addresses in %s: %w", s, err)
	}
	out := make(map[netip.Addr]bool, len(as))
	for _, a := range as {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out[ip.Unmap()] = true
		}
	}
	return out, nil
}
