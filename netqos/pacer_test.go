package netqos

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/strata-nri/strata/internal/testutil"
	"github.com/strata-nri/strata/netqos/netqostest"
)

// pacerContext is struct __sk_buff up to its tstamp, which
// BPF_PROG_TEST_RUN passes in and out (the rest is zero).
type pacerContext struct {
	_      [38]uint32
	Tstamp uint64
	_      [8]uint32
}

// The pacer's arithmetic on crafted packets (BPF_PROG_TEST_RUN, no fq
// needed): a source under its rate passes unstamped; packets sent faster
// are stamped one transmission time (len / rate) apart, for IPv4 and IPv6
// alike; a source without a limit is left alone; past the horizon the
// packet is dropped; a changed rate applies to the next packet.
func TestKernelPacerProgram(t *testing.T) {
	testutil.RequireFeature(t, bpfClassifier)
	prog, m, err := loadPacer(16)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close(); m.Close() })
	p := &Pacer{prog: prog, limits: m, horizon: time.Second, name: "test"}
	src4, src6 := netip.MustParseAddr("10.9.0.2"), netip.MustParseAddr("fd00::2")
	dst4, dst6 := netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("fd00::1")
	pkt4, pkt6 := ipv4Packet(src4, dst4), ipv6Packet(src6, dst6)
	run := func(pkt []byte) (uint64, int32) {
		t.Helper()
		var out pacerContext
		r, err := prog.Run(&ebpf.RunOptions{Data: pkt, Context: pacerContext{}, ContextOut: &out})
		if err != nil {
			t.Fatal(err)
		}
		return out.Tstamp, int32(r)
	}
	if ts, r := run(pkt4); ts != 0 || r != tcActUnspec {
		t.Fatalf("no limit: tstamp %d, verdict %d; want 0 and pass", ts, r)
	}
	// Rates low enough that a packet's transmission time (tens of ms) is
	// far longer than the gap between two test runs, even under emulation.
	const rate = 10 * Kbit
	for _, c := range []struct {
		src netip.Addr
		pkt []byte
	}{{src4, pkt4}, {src6, pkt6}} {
		if err := p.Limit(c.src, rate); err != nil {
			t.Fatal(err)
		}
		delay := uint64(len(c.pkt)) * uint64(time.Second) / rate.Bytes()
		if ts, r := run(c.pkt); ts != 0 || r != tcActUnspec {
			t.Errorf("%v: first packet: tstamp %d, verdict %d; want it unstamped", c.src, ts, r)
		}
		before := uint64(monotonic())
		t1, _ := run(c.pkt)
		t2, _ := run(c.pkt)
		if t1 < before || t1 > before+delay || t2-t1 != delay {
			t.Errorf("%v: stamps %d, %d (now %d); want within one transmission time (%d ns) of now, then %d ns apart", c.src, t1, t2, before, delay, delay)
		}
	}
	// Faster: the next packet is one (shorter) transmission time later.
	if err := p.Limit(src4, 20*Kbit); err != nil {
		t.Fatal(err)
	}
	run(pkt4) // the rate's first packet: under it
	t1, _ := run(pkt4)
	t2, _ := run(pkt4)
	if want := uint64(len(pkt4)) * uint64(time.Second) / (20 * Kbit).Bytes(); t2-t1 != want {
		t.Errorf("after the rate was raised: stamps %d ns apart, want %d", t2-t1, want)
	}
	// A tiny horizon: at 50 ms a packet, the third in a row (the second
	// already) lies beyond it.
	p.horizon = time.Millisecond
	if err := p.Limit(src6, 10*Kbit); err != nil {
		t.Fatal(err)
	}
	run(pkt6)
	run(pkt6)
	if _, r := run(pkt6); r != tcActShot {
		t.Errorf("beyond the horizon: verdict %d, want drop (%d)", r, tcActShot)
	}
	if err := p.Forget(src6); err != nil {
		t.Fatal(err)
	}
	if ts, r := run(pkt6); ts != 0 || r != tcActUnspec {
		t.Errorf("forgotten: tstamp %d, verdict %d; want it alone", ts, r)
	}
	if err := p.Limit(src6, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("rate 0: %v, want ErrInvalid", err)
	}
}

func monotonic() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// fqFeature: sch_fq, present or truly absent (no module file, not built
// in).
var fqFeature = func(err error) testutil.Feature {
	return testutil.Feature{Name: "sch_fq", Probe: func() error { return err }, Absent: netqostest.FQAbsent}
}

// EDT pacing measured: a sender paced by source address gets its rate
// (±15 %), a changed rate applies in the next window, and forgotten it is
// unpaced again. Without sch_fq, NewPacer reports ErrNoFQ and installs
// nothing.
func TestKernelPacerRate(t *testing.T) {
	p := newPair(t)
	s := newSink(t, p.rcv, p.rcvIP)
	sc := scaler(t, p.snd, s, p.sndIP, 8*Mbit)
	testutil.RequireFeature(t, bpfClassifier)
	pc, err := NewPacer(PacerConfig{Interface: p.sndIf, Netns: p.snd.Path})
	if errors.Is(err, ErrNoFQ) {
		assertNoFQ(t, p)
		testutil.RequireFeature(t, fqFeature(err))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pc.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		assertNoFQ(t, p)
	})
	src := netip.MustParseAddr(p.sndIP)
	if err := pc.Limit(src, sc(8*Mbit)); err != nil {
		t.Fatal(err)
	}
	sendFrom(t, p.snd, s.Addr)
	time.Sleep(warmup)
	within(t, "paced to 8 Mbit/s", rates(s, window, p.sndIP)[0], sc(8*Mbit), tolerance)
	if err := pc.Limit(src, sc(4*Mbit)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	within(t, "paced to 4 Mbit/s, changed live", rates(s, window, p.sndIP)[0], sc(4*Mbit), tolerance)
	if err := pc.Forget(src); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if got := rates(s, window, p.sndIP)[0]; got < sc(8*Mbit)*3/2 {
		t.Errorf("unpaced: %s, want well above the former 8 Mbit/s (×1.5)", got)
	}
}

// assertNoFQ checks that the sender's interface has no fq qdisc and no
// pacer program left.
func assertNoFQ(t *testing.T, p *pair) {
	t.Helper()
	l, err := p.snd.NL.LinkByName(p.sndIf)
	if err != nil {
		return
	}
	qs, _ := p.snd.NL.QdiscList(l)
	if hasKind(qs, "fq", "clsact") {
		t.Errorf("fq or clsact left on %s: %v", p.sndIf, qs)
	}
}
