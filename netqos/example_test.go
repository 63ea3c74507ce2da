package netqos_test

import (
	"fmt"
	"log"
	"net/netip"

	"github.com/strata-nri/strata/netqos"
)

// A pod's bandwidth annotations, as the CNI bandwidth plugin reads them.
func ExamplePodLimitsFromAnnotations() {
	l, err := netqos.PodLimitsFromAnnotations(map[string]string{
		"kubernetes.io/egress-bandwidth":  "10M",
		"kubernetes.io/ingress-bandwidth": "1G",
	})
	fmt.Println(l.Egress, l.Ingress, err)

	_, err = netqos.PodLimitsFromAnnotations(map[string]string{"kubernetes.io/egress-bandwidth": "10X"})
	fmt.Println(err != nil)
	// Output:
	// 10Mbit 1Gbit <nil>
	// true
}

// Shaping a node's uplink between an online and a batch class, classifying
// a host-network container by its cgroup id and a pod by its address, and
// lowering batch's ceiling when online needs the link (needs root).
func ExampleNewTree() {
	tree, err := netqos.NewTree(netqos.TreeConfig{
		Interface: "eth0",
		Link:      10 * netqos.Gbit,
		Default:   30,
		Classes: []netqos.ClassSpec{
			{ID: 10, Rate: 4 * netqos.Gbit, Ceil: 10 * netqos.Gbit, Prio: 0}, // online
			{ID: 20, Rate: 1 * netqos.Gbit, Ceil: 4 * netqos.Gbit, Prio: 1},  // batch
			{ID: 30, Rate: 1 * netqos.Gbit, Ceil: 10 * netqos.Gbit, Prio: 1}, // everything else
		},
	})
	if err != nil {
		log.Fatal(err) // errors.Is(err, netqos.ErrNotSupported) on a kernel without tc/BPF
	}
	defer tree.Close()

	const cgroupID = 4242 // from cgroup.Cgroup.ID() of the container's cgroup
	if err := tree.ClassifyCgroup(cgroupID, 10); err != nil {
		log.Fatal(err)
	}
	if err := tree.ClassifyAddr(netip.MustParseAddr("10.244.1.7"), 20); err != nil {
		log.Fatal(err)
	}
	// Online is busy: batch may borrow up to 1 Gbit/s only.
	if err := tree.SetClass(netqos.ClassSpec{ID: 20, Rate: netqos.Gbit, Ceil: netqos.Gbit, Prio: 1}); err != nil {
		log.Fatal(err)
	}
	stats, err := tree.Stats(make([]netqos.ClassStats, 0, 4))
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range stats {
		fmt.Printf("class %d: %d bytes, %d drops\n", s.ID, s.Bytes, s.Drops)
	}
}
