package netqos

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// ClassStats are one class's counters since it was created.
type ClassStats struct {
	ID         uint16 // class minor; 1 is the root class
	Bytes      uint64 // bytes sent
	Packets    uint64 // packets sent
	Drops      uint64 // packets dropped (queue full)
	Overlimits uint64 // times the class was over its rate or ceiling
	Backlog    uint32 // bytes queued now
}

// Stats appends the counters of every class of the tree (the root class
// included, ID 1) to dst[:0] and returns it. With a dst of sufficient
// capacity it does not allocate: it reads a netlink class dump into a
// buffer the tree keeps, parsing it in place, so a controller can call it
// every period.
func (t *Tree) Stats(dst []ClassStats) ([]ClassStats, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stats == nil {
		return dst[:0], fmt.Errorf("netqos: tree on %s is closed", t.name)
	}
	out, err := t.stats.read(t.major, dst[:0])
	if err != nil {
		return out, fmt.Errorf("netqos: class statistics of %s: %w", t.name, err)
	}
	return out, nil
}

// statsReader dumps tc classes of one interface over its own netlink
// socket, created in the interface's namespace.
type statsReader struct {
	fd      int
	ifindex int
	seq     uint32
	req     [nlmsgHdrLen + tcmsgLen]byte
	buf     []byte
}

const (
	nlmsgHdrLen = 16
	tcmsgLen    = 20
	rtaHdrLen   = 4

	// linux/rtnetlink.h, linux/gen_stats.h
	tcaStats2      = 7
	tcaStatsBasic  = 1
	tcaStatsQueue  = 3
	tcaStatsPkt64  = 8
	rtmNewTClass   = 40
	rtmGetTClass   = 42
	nlmsgError     = 2
	nlmsgDone      = 3
	nlmFRequest    = 1
	nlmFDump       = 0x300
	statsBufferLen = 64 << 10
)

func newStatsReader(ifindex int) (*statsReader, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netqos: netlink socket for statistics: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netqos: bind netlink socket: %w", err)
	}
	r := &statsReader{fd: fd, ifindex: ifindex, buf: make([]byte, statsBufferLen)}
	ne := binary.NativeEndian
	ne.PutUint32(r.req[0:], uint32(len(r.req)))
	ne.PutUint16(r.req[4:], rtmGetTClass)
	ne.PutUint16(r.req[6:], nlmFRequest|nlmFDump)
	// tcmsg: family AF_UNSPEC, ifindex; handle, parent, info 0.
	ne.PutUint32(r.req[nlmsgHdrLen+4:], uint32(ifindex))
	return r, nil
}

func (r *statsReader) close() error { return unix.Close(r.fd) }

func (r *statsReader) read(major uint16, dst []ClassStats) ([]ClassStats, error) {
	ne := binary.NativeEndian
	r.seq++
	ne.PutUint32(r.req[8:], r.seq)
	if _, err := unix.Write(r.fd, r.req[:]); err != nil {
		return dst, err
	}
	for {
		n, err := unix.Read(r.fd, r.buf)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return dst, err
		}
		b := r.buf[:n]
		for len(b) >= nlmsgHdrLen {
			l := int(ne.Uint32(b[0:]))
			if l < nlmsgHdrLen || l > len(b) {
				return dst, fmt.Errorf("truncated netlink message (%d of %d bytes)", len(b), l)
			}
			typ, seq := ne.Uint16(b[4:]), ne.Uint32(b[8:])
			msg := b[nlmsgHdrLen:l]
			b = b[align4(l):]
			if seq != r.seq {
				continue // a reply to an earlier, abandoned dump
			}
			switch typ {
			case nlmsgDone:
				return dst, nil
			case nlmsgError:
				if len(msg) >= 4 {
					if errno := int32(ne.Uint32(msg)); errno != 0 {
						return dst, unix.Errno(-errno)
					}
				}
				return dst, nil
			case rtmNewTClass:
				if len(msg) < tcmsgLen {
					continue
				}
				handle := ne.Uint32(msg[8:])
				if int(int32(ne.Uint32(msg[4:]))) != r.ifindex || uint16(handle>>16) != major {
					continue
				}
				dst = append(dst, parseClassStats(uint16(handle), msg[tcmsgLen:]))
			}
		}
	}
}

func align4(n int) int { return (n + 3) &^ 3 }

// parseClassStats reads TCA_STATS2's basic and queue counters.
func parseClassStats(id uint16, attrs []byte) ClassStats {
	ne := binary.NativeEndian
	s := ClassStats{ID: id}
	forAttrs(attrs, func(typ uint16, v []byte) {
		if typ != tcaStats2 {
			return
		}
		forAttrs(v, func(typ uint16, v []byte) {
			switch typ {
			case tcaStatsBasic:
				if len(v) >= 12 {
					s.Bytes = ne.Uint64(v[0:])
					if s.Packets == 0 {
						s.Packets = uint64(ne.Uint32(v[8:]))
					}
				}
			case tcaStatsPkt64:
				if len(v) >= 8 {
					s.Packets = ne.Uint64(v)
				}
			case tcaStatsQueue:
				if len(v) >= 20 { // qlen, backlog, drops, requeues, overlimits
					s.Backlog = ne.Uint32(v[4:])
					s.Drops = uint64(ne.Uint32(v[8:]))
					s.Overlimits = uint64(ne.Uint32(v[16:]))
				}
			}
		})
	})
	return s
}

// forAttrs calls fn for each rtattr in b. fn is a closure that does not
// escape, so the walk does not allocate.
func forAttrs(b []byte, fn func(typ uint16, v []byte)) {
	ne := binary.NativeEndian
	for len(b) >= rtaHdrLen {
		l := int(ne.Uint16(b[0:]))
		if l < rtaHdrLen || l > len(b) {
			return
		}
		fn(ne.Uint16(b[2:])&0x3fff, b[rtaHdrLen:l]) // strip NLA_F_NESTED / NET_BYTEORDER
		b = b[min(align4(l), len(b)):]
	}
}
