// Opening a TUN queue and configuring the device with ioctls (configuration is not the hot path).
#pragma once

#include <string>

namespace onehost {

struct TunOpenRequest {
  std::string name;  // empty: the kernel picks tun%d
  bool multiQueue = false;
  // IFF_VNET_HDR with TSO4 and checksum offload: reads and writes carry a virtio_net_hdr (10 bytes).
  bool offload = false;
  std::string devicePath = "/dev/net/tun";
};

struct TunOpenResult {
  int fd = -1;        // nonblocking, close-on-exec
  int ctl = -1;       // AF_INET datagram socket in the same namespace, for SIOC* ioctls
  std::string name;   // the name the kernel gave the device
  const char* code = nullptr;  // stable error code when fd < 0
  std::string message;
  int errnum = 0;
};

// OpenTun opens one queue of a TUN device (IFF_TUN | IFF_NO_PI [| IFF_MULTI_QUEUE]) in the calling
// thread's network namespace. On failure fd is -1 and code/message/errnum say why.
TunOpenResult OpenTun(const TunOpenRequest& req);

// ValidName reports whether a Linux interface name is acceptable (dev_valid_name plus "%d" patterns).
bool ValidName(const std::string& name);

// Device configuration through the control socket; each returns 0 or an errno.
int GetMtu(int ctl, const std::string& name, int* mtu);
int SetMtu(int ctl, const std::string& name, int mtu);
int GetFlags(int ctl, const std::string& name, int* flags);
int SetUp(int ctl, const std::string& name, bool up);
int SetIpv4(int ctl, const std::string& name, uint32_t addr, uint32_t mask);  // network order
int GetIpv4(int ctl, const std::string& name, uint32_t* addr, uint32_t* mask);
int GetIfindex(int ctl, const std::string& name, int* index);

}  // namespace onehost
