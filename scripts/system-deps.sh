#!/usr/bin/env bash
# system-deps.sh: install the Debian packages the tests and the lab use, when any is missing.
# Needs root (it runs apt-get). Idempotent: with everything present it changes nothing.
set -euo pipefail

packages=(
  build-essential python3   # node-gyp builds the TUN and kernel addons from source
  libnftables-dev libnftnl-dev libmnl-dev  # the kernel addon: nftables transactions in process, flow maps over netlink
  iproute2 iputils-ping iputils-arping ethtool nftables tcpdump kmod util-linux procps  # namespaces, veth, VXLAN, TUN
  nginx-light iperf3 curl   # the lab's real services and clients
  haproxy wrk hping3        # the cluster benchmark's peers and load (npm run bench), the UDP flood test
  chromium                  # the status page's end-to-end test (headless, driven by puppeteer-core)
  nfs-ganesha nfs-ganesha-vfs rpcbind  # the lab's NFS servers (NFSv3, VFS FSAL)
  nfs-common libnfs-utils   # NFS clients: rpcinfo, showmount, nfs-ls/nfs-cat/nfs-cp
  systemd                   # systemd-analyze verify of the packages' units (npm run package)
  clang libbpf-dev bpftool  # the spliced flows' tc eBPF programs (packages/ksplice builds them from C)
  etcd-server               # the shared control store's tests: a 3-member etcd (packages/lab startEtcdCluster)
  frr                       # the several-gateways tests: a router (ECMP) and the gateway hosts' bgpd + bfdd (packages/lab frr.ts)
  conntrackd conntrack      # several gateways share connections (the gateway runs conntrackd; tests read entries with conntrack)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
  exit 1
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
