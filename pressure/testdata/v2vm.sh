#!/bin/sh
# Runs pressure's kernel tests (TestKernel...) on a real cgroup v2 kernel
# in a throwaway qemu TCG VM, for hosts like the development machines that
# only have cgroup v1 controllers. Nothing is installed into the VM but a
# static busybox, the test binary and the brd module (a RAM block device
# carrying an ext4 file system, so that page cache is real, reclaimable
# file cache rather than tmpfs/ramfs pages).
#
# Needs: qemu-system-x86, cpio, busybox-static (apt), Go. Downloads a Debian
# cloud kernel package with apt-get download into $WORK (not the repo).
#
#   pressure/testdata/v2vm.sh [test regexp, default Kernel]
set -eu
RUN=${1:-Kernel}
WORK=${WORK:-/var/tmp/strata-pressure-vm}
KPKG=${KPKG:-linux-image-6.1.0-47-cloud-amd64}
REPO=$(cd "$(dirname "$0")/../.." && pwd)

mkdir -p "$WORK"
cd "$WORK"
if ! ls k/boot/vmlinuz-* >/dev/null 2>&1; then
	apt-get download "$KPKG"
	mkdir -p k
	dpkg-deb -x "$KPKG"_*.deb k
fi
(cd "$REPO" && CGO_ENABLED=0 go test -c -o "$WORK/pressure.test" ./pressure/)

rm -rf root
mkdir -p root/bin root/proc root/sys root/dev root/tmp root/var/tmp
cp /usr/bin/busybox root/bin/busybox
cp pressure.test root/
cp k/lib/modules/*/kernel/drivers/block/brd.ko root/
cat > root/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t cgroup2 none /sys/fs/cgroup
insmod /brd.ko rd_nr=1 rd_size=524288
mke2fs -q /dev/ram0 && mount -t ext4 /dev/ram0 /var/tmp
echo "VM: Linux $(uname -r), cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
cd /
STRATA_TEST_REQUIRE_KERNEL=1 /pressure.test -test.run "$(sed -n 's/.*strata.run=\([^ ]*\).*/\1/p' /proc/cmdline)" -test.v -test.count=1 -test.timeout 300s
echo "VM-EXIT=$?"
poweroff -f
INIT
chmod +x root/init
(cd root && find . | cpio -o -H newc 2>/dev/null | gzip -1 >../initrd.gz)

timeout 900 qemu-system-x86_64 -machine q35 -accel tcg,thread=multi -smp 2 -m 2048 \
	-nographic -no-reboot -kernel k/boot/vmlinuz-* -initrd initrd.gz \
	-append "console=ttyS0 rdinit=/init panic=-1 quiet strata.run=$RUN" | tee vm.log
grep -q '^VM-EXIT=0' vm.log
