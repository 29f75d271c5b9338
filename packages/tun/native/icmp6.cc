// One ICMPv6 message out of one interface from a raw socket (RFC 3542): the gateway's unsolicited
// Neighbor Advertisements for its IPv6 cluster addresses (RFC 4861 §7.2.6), which the kernel does not
// send for proxy NDP entries. The caller builds the message; the kernel picks the source address,
// computes the checksum over the pseudo-header (RFC 3542 §3.1) and adds the IPv6 header.
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common.h"
#include "netns.h"

namespace onehost {

// sendIcmp6(interface, destination, hopLimit, message[, netns]): sends `message` (an ICMPv6 message,
// checksum left 0) to `destination` (an IPv6 address, link-scoped to `interface` when it is multicast or
// link-local) out of `interface` with hop limit `hopLimit`, in network namespace `netns` when given.
// Throws TUN_BAD_ARGUMENT (arguments, no such interface), TUN_NETNS, TUN_PERMISSION (no CAP_NET_RAW) or
// TUN_SEND (the kernel refused the send).
Napi::Value SendIcmp6(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsString() || !info[1].IsString() || !info[2].IsNumber() ||
      !info[3].IsTypedArray()) {
    ThrowCode(env, "TUN_BAD_ARGUMENT", "sendIcmp6(interface, destination, hopLimit, message)");
    return env.Undefined();
  }
  std::string ifname = info[0].As<Napi::String>().Utf8Value();
  std::string dst = info[1].As<Napi::String>().Utf8Value();
  int hops = info[2].As<Napi::Number>().Int32Value();
  Napi::TypedArray ta = info[3].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_uint8_array) {
    ThrowCode(env, "TUN_BAD_ARGUMENT", "message must be a Uint8Array");
    return env.Undefined();
  }
  Napi::Uint8Array msg = ta.As<Napi::Uint8Array>();
  if (hops < 0 || hops > 255 || msg.ByteLength() < 4 || msg.ByteLength() > 1232) {
    ThrowCode(env, "TUN_BAD_ARGUMENT", "hopLimit 0..255, message 4..1232 bytes");
    return env.Undefined();
  }
  std::string netns = info.Length() > 4 && info[4].IsString() ? info[4].As<Napi::String>().Utf8Value() : "";
  NetnsScope scope(netns);
  if (!scope.ok()) {
    ThrowCode(env, "TUN_NETNS", "cannot enter network namespace \"" + netns + "\"", scope.error());
    return env.Undefined();
  }
  unsigned ifindex = ifname.size() < IF_NAMESIZE ? if_nametoindex(ifname.c_str()) : 0;
  if (ifindex == 0) {
    ThrowCode(env, "TUN_BAD_ARGUMENT", "no interface " + ifname);
    return env.Undefined();
  }
  sockaddr_in6 to{};
  to.sin6_family = AF_INET6;
  if (inet_pton(AF_INET6, dst.c_str(), &to.sin6_addr) != 1) {
    ThrowCode(env, "TUN_BAD_ARGUMENT", "not an IPv6 address: " + dst);
    return env.Undefined();
  }
  // a multicast or link-local destination names its link by the interface (RFC 4007 §6)
  to.sin6_scope_id = ifindex;
  int fd = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6);
  if (fd < 0) {
    ThrowCode(env, errno == EPERM || errno == EACCES ? "TUN_PERMISSION" : "TUN_SEND", "ICMPv6 raw socket",
              errno);
    return env.Undefined();
  }
  int loop = 0;
  int idx = static_cast<int>(ifindex);
  // only out of this interface, never looped back to this host (IPV6_MULTICAST_LOOP, RFC 3493 §5.2)
  if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof(idx)) < 0 ||
      setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof(hops)) < 0 ||
      setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof(hops)) < 0 ||
      setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &loop, sizeof(loop)) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname.c_str(), ifname.size()) < 0) {
    int e = errno;
    close(fd);
    ThrowCode(env, e == EPERM ? "TUN_PERMISSION" : "TUN_SEND", "ICMPv6 socket options", e);
    return env.Undefined();
  }
  ssize_t n = sendto(fd, msg.Data(), msg.ByteLength(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
  int e = errno;
  close(fd);
  if (n < 0) {
    ThrowCode(env, "TUN_SEND", "ICMPv6 send on " + ifname, e);
    return env.Undefined();
  }
  return env.Undefined();
}

}  // namespace onehost
