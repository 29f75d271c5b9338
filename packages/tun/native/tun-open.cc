#include "tun-open.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace onehost {

namespace {

void FillName(ifreq* ifr, const std::string& name) {
  memset(ifr, 0, sizeof(*ifr));
  strncpy(ifr->ifr_name, name.c_str(), IFNAMSIZ - 1);
}

int Ioctl(int ctl, unsigned long req, ifreq* ifr) { return ioctl(ctl, req, ifr) == 0 ? 0 : errno; }

}  // namespace

bool ValidName(const std::string& name) {
  // Mirrors the kernel's dev_valid_name(): 1..15 bytes, not "." or "..", no '/', ':' or whitespace.
  if (name.empty() || name.size() >= IFNAMSIZ || name == "." || name == "..") return false;
  for (char c : name) {
    if (c == '/' || c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' ||
        c == '\0') {
      return false;
    }
  }
  return true;
}

TunOpenResult OpenTun(const TunOpenRequest& req) {
  TunOpenResult res;
  if (!req.name.empty() && !ValidName(req.name)) {
    res.code = "TUN_BAD_NAME";
    res.message = "bad interface name \"" + req.name +
                  "\": 1 to 15 bytes, not \".\" or \"..\", no '/', ':' or whitespace";
    res.errnum = EINVAL;
    return res;
  }
  int fd = open(req.devicePath.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    res.errnum = errno;
    if (errno == ENOENT || errno == ENODEV || errno == ENXIO) {
      res.code = "TUN_NO_DEVICE";
      res.message = "no TUN device at " + req.devicePath + ": load the tun module (modprobe tun) or create the node";
    } else if (errno == EACCES || errno == EPERM) {
      res.code = "TUN_PERMISSION";
      res.message = "no permission to open " + req.devicePath;
    } else {
      res.code = "TUN_OPEN_FAILED";
      res.message = "cannot open " + req.devicePath;
    }
    return res;
  }
  int ctl = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (ctl < 0) {
    res.errnum = errno;
    res.code = "TUN_OPEN_FAILED";
    res.message = "cannot create a control socket";
    close(fd);
    return res;
  }
  // Whether a device of that name already exists tells EINVAL cases apart below.
  int existingIndex = 0;
  bool exists = !req.name.empty() && GetIfindex(ctl, req.name, &existingIndex) == 0;
  ifreq ifr;
  FillName(&ifr, req.name);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (req.multiQueue ? IFF_MULTI_QUEUE : 0) | (req.offload ? IFF_VNET_HDR : 0);
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
    int e = errno;
    res.errnum = e;
    if (e == EPERM || e == EACCES) {
      res.code = "TUN_PERMISSION";
      res.message = "no permission to create or attach TUN device \"" + req.name + "\" (needs CAP_NET_ADMIN)";
    } else if (e == EBUSY) {
      res.code = "TUN_BUSY";
      res.message = "TUN device \"" + req.name + "\" is busy: another process holds its only queue" +
                    (req.multiQueue ? "" : " (open every queue with multiQueue to share it)");
    } else if (e == EINVAL && exists) {
      res.code = "TUN_BUSY";
      res.message = "device \"" + req.name +
                    "\" exists and is not a TUN device opened with the same flags (TUN vs TAP, multiQueue)";
    } else if (e == EINVAL) {
      res.code = "TUN_BAD_NAME";
      res.message = "kernel refused interface name \"" + req.name + "\"";
    } else if (e == ENFILE || e == EMFILE || e == ENOMEM) {
      res.code = "TUN_OPEN_FAILED";
      res.message = "cannot attach another queue to TUN device \"" + req.name + "\"";
    } else {
      res.code = "TUN_OPEN_FAILED";
      res.message = "TUNSETIFF failed for \"" + req.name + "\"";
    }
    close(ctl);
    close(fd);
    return res;
  }
  if (req.offload) {
    // The kernel may hand us TSO super-packets with partial checksums, and take them from us the same way.
    int hdr = 10;  // struct virtio_net_hdr
    unsigned int feat = TUN_F_CSUM | TUN_F_TSO4;
    if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) != 0 || ioctl(fd, TUNSETOFFLOAD, feat) != 0) {
      res.errnum = errno;
      res.code = "TUN_CONFIG";
      res.message = "cannot turn on offloads (IFF_VNET_HDR, TSO4) for \"" + req.name + "\"";
      close(ctl);
      close(fd);
      return res;
    }
  }
  res.fd = fd;
  res.ctl = ctl;
  res.name = ifr.ifr_name;
  return res;
}

int GetMtu(int ctl, const std::string& name, int* mtu) {
  ifreq ifr;
  FillName(&ifr, name);
  int e = Ioctl(ctl, SIOCGIFMTU, &ifr);
  if (e == 0) *mtu = ifr.ifr_mtu;
  return e;
}

int SetMtu(int ctl, const std::string& name, int mtu) {
  ifreq ifr;
  FillName(&ifr, name);
  ifr.ifr_mtu = mtu;
  return Ioctl(ctl, SIOCSIFMTU, &ifr);
}

int GetFlags(int ctl, const std::string& name, int* flags) {
  ifreq ifr;
  FillName(&ifr, name);
  int e = Ioctl(ctl, SIOCGIFFLAGS, &ifr);
  if (e == 0) *flags = ifr.ifr_flags;
  return e;
}

int SetUp(int ctl, const std::string& name, bool up) {
  int flags = 0;
  int e = GetFlags(ctl, name, &flags);
  if (e != 0) return e;
  ifreq ifr;
  FillName(&ifr, name);
  ifr.ifr_flags = static_cast<short>(up ? (flags | IFF_UP) : (flags & ~IFF_UP));
  return Ioctl(ctl, SIOCSIFFLAGS, &ifr);
}

int SetIpv4(int ctl, const std::string& name, uint32_t addr, uint32_t mask) {
  ifreq ifr;
  FillName(&ifr, name);
  auto* sin = reinterpret_cast<sockaddr_in*>(&ifr.ifr_addr);
  sin->sin_family = AF_INET;
  sin->sin_addr.s_addr = addr;
  int e = Ioctl(ctl, SIOCSIFADDR, &ifr);
  if (e != 0) return e;
  FillName(&ifr, name);
  sin = reinterpret_cast<sockaddr_in*>(&ifr.ifr_netmask);
  sin->sin_family = AF_INET;
  sin->sin_addr.s_addr = mask;
  return Ioctl(ctl, SIOCSIFNETMASK, &ifr);
}

int GetIpv4(int ctl, const std::string& name, uint32_t* addr, uint32_t* mask) {
  ifreq ifr;
  FillName(&ifr, name);
  int e = Ioctl(ctl, SIOCGIFADDR, &ifr);
  if (e != 0) return e;
  *addr = reinterpret_cast<sockaddr_in*>(&ifr.ifr_addr)->sin_addr.s_addr;
  FillName(&ifr, name);
  e = Ioctl(ctl, SIOCGIFNETMASK, &ifr);
  if (e != 0) return e;
  *mask = reinterpret_cast<sockaddr_in*>(&ifr.ifr_netmask)->sin_addr.s_addr;
  return 0;
}

int GetIfindex(int ctl, const std::string& name, int* index) {
  ifreq ifr;
  FillName(&ifr, name);
  int e = Ioctl(ctl, SIOCGIFINDEX, &ifr);
  if (e == 0) *index = ifr.ifr_ifindex;
  return e;
}

}  // namespace onehost
