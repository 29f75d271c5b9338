// Batched sending over one raw IPv4 socket (IPPROTO_RAW, so IP_HDRINCL): UDP encapsulation with a
// destination and an outer source port per packet, or complete IPv4 packets. No JS here: the C
// forwarding loop of the benchmark calls it from a worker thread.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <vector>

#include "layout.h"

namespace onehost {

constexpr uint32_t kMaxPrefix = 64;
constexpr uint32_t kChunk = 128;  // messages per sendmmsg call (UIO_MAXIOV is 1024)

struct Destination {
  sockaddr_in addr{};   // node address; sin_port unused by raw sockets
  uint16_t port = 0;    // UDP destination port, host order
  uint8_t prefixLen = 0;
  uint8_t prefix[kMaxPrefix]{};  // bytes sent between the UDP header and the packet (VXLAN + Ethernet)
};

struct SendCounters {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t calls = 0;         // sendmmsg calls
  uint64_t wouldBlock = 0;    // EAGAIN: the socket buffer is full; the caller resumes later
  uint64_t badDestination = 0;
  uint64_t badPacket = 0;     // offset/length outside the arena, too long, not IPv4 (sendIp)
  uint64_t errors = 0;        // kernel refused one packet (unreachable, EMSGSIZE, filtered, ...)
  int lastErrno = 0;
};

struct SendResult {
  uint32_t next;  // index of the first packet not handled; == end when all were
  int fatal;      // 0, or an errno that stops sending altogether (EBADF)
};

class SendCore {
 public:
  SendCore();
  int fd = -1;
  uint32_t source = 0;  // network order; 0 lets the kernel choose by route
  uint8_t ttl = 64;
  uint16_t portMin = 49152;  // RFC 7348 section 5: source port from the dynamic range by flow hash
  uint16_t portMax = 65535;
  std::vector<Destination> table;
  SendCounters counters;

  // SendUdp sends packets [start, end) of the batch, each prefixed with an IPv4+UDP header to
  // table[dst[i]] and the destination's prefix bytes. dst[i] < 0 skips the packet (the caller dropped
  // it). sport[i] (if sport != nullptr and nonzero) is the outer source port, else a flow hash of the
  // inner IPv4 header picks one in [portMin, portMax]. Stops at EAGAIN and returns where to resume.
  SendResult SendUdp(const uint8_t* arena, size_t arenaLen, const int32_t* meta, size_t metaLen,
                     uint32_t start, uint32_t end, const int32_t* dst, size_t dstLen, const int32_t* sport,
                     size_t sportLen);

  // SendIp sends complete IPv4 packets [start, end) to the destination address in their own headers.
  SendResult SendIp(const uint8_t* arena, size_t arenaLen, const int32_t* meta, size_t metaLen,
                    uint32_t start, uint32_t end);

  // FlowPort maps an inner packet to an outer source port (stable per flow, fragments included).
  uint16_t FlowPort(const uint8_t* p, uint32_t len) const;

 private:
  SendResult Flush(uint32_t vlen, uint32_t end);
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iov_;
  std::vector<uint8_t> hdrs_;
  std::vector<sockaddr_in> addrs_;
  std::vector<uint32_t> index_;
};

}  // namespace onehost
