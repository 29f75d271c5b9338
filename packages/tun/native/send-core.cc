#include "send-core.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace onehost {

namespace {

constexpr uint32_t kHdr = 28;  // IPv4 header without options (RFC 791) + UDP header (RFC 768)

inline uint32_t Load32(const uint8_t* p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

// Final mix of MurmurHash3: cheap and spreads every input bit over the output.
inline uint32_t Mix(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6b;
  h ^= h >> 13;
  h *= 0xc2b2ae35;
  h ^= h >> 16;
  return h;
}

}  // namespace

SendCore::SendCore()
    : msgs_(kChunk), iov_(kChunk * 3), hdrs_(kChunk * kHdr), addrs_(kChunk), index_(kChunk) {}

uint16_t SendCore::FlowPort(const uint8_t* p, uint32_t len) const {
  uint32_t h = 0x9747b28c;
  if (len >= 20 && (p[0] >> 4) == 4) {
    uint32_t ihl = (p[0] & 0x0f) * 4u;
    uint8_t proto = p[9];
    h = Mix(h ^ Load32(p + 12));
    h = Mix(h ^ Load32(p + 16));
    h = Mix(h ^ proto);
    // RFC 791: MF flag or a fragment offset means the ports may be absent; hash every fragment of a
    // datagram alike (addresses and protocol only) so that they keep their order.
    bool fragment = (p[6] & 0x3f) != 0 || p[7] != 0;
    if (!fragment && (proto == 6 || proto == 17 || proto == 132) && ihl >= 20 && len >= ihl + 4) {
      h = Mix(h ^ Load32(p + ihl));
    }
  } else if (len >= 40 && (p[0] >> 4) == 6) {
    // RFC 8200 §3: both addresses and Next Header; the ports only when TCP/UDP follows the fixed header
    // at once (with extension headers, a fragment among them, the addresses keep a flow together).
    for (uint32_t o = 8; o < 40; o += 4) h = Mix(h ^ Load32(p + o));
    uint8_t next = p[6];
    h = Mix(h ^ next);
    if ((next == 6 || next == 17) && len >= 44) h = Mix(h ^ Load32(p + 40));
  } else {
    h = Mix(h ^ len);
  }
  uint32_t span = static_cast<uint32_t>(portMax) - portMin + 1;
  return static_cast<uint16_t>(portMin + (h % span));
}

SendResult SendCore::Flush(uint32_t vlen, uint32_t end) {
  uint32_t sent = 0;
  while (sent < vlen) {
    counters.calls++;
    int r = sendmmsg(fd, msgs_.data() + sent, vlen - sent, MSG_DONTWAIT);
    if (r > 0) {
      for (int k = 0; k < r; k++) {
        counters.bytes += msgs_[sent + k].msg_len;
      }
      counters.packets += static_cast<uint64_t>(r);
      sent += static_cast<uint32_t>(r);
      continue;
    }
    int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN || e == EWOULDBLOCK) {
      counters.wouldBlock++;
      return {index_[sent], 0};
    }
    if (e == EBADF || e == ENOTSOCK) return {index_[sent], e};
    // The kernel refused this one packet (no route, too big, filtered): count it and go on.
    counters.errors++;
    counters.lastErrno = e;
    sent++;
  }
  return {end, 0};
}

SendResult SendCore::SendUdp(const uint8_t* arena, size_t arenaLen, const int32_t* meta, size_t metaLen,
                             uint32_t start, uint32_t end, const int32_t* dst, size_t dstLen,
                             const int32_t* sport, size_t sportLen) {
  const uint32_t ndest = static_cast<uint32_t>(table.size());
  uint32_t i = start;
  while (i < end) {
    uint32_t vlen = 0;
    for (; i < end && vlen < kChunk; i++) {
      if (i >= dstLen || static_cast<size_t>(i) * kMetaStride + 1 >= metaLen) {
        counters.badPacket++;
        continue;
      }
      int32_t d = dst[i];
      if (d < 0) continue;
      if (static_cast<uint32_t>(d) >= ndest) {
        counters.badDestination++;
        continue;
      }
      int32_t off = meta[i * kMetaStride];
      int32_t len = meta[i * kMetaStride + 1];
      const Destination& to = table[d];
      if (off < 0 || len <= 0 || static_cast<size_t>(off) + len > arenaLen ||
          static_cast<uint32_t>(len) + kHdr + to.prefixLen > 65535) {
        counters.badPacket++;
        continue;
      }
      const uint8_t* payload = arena + off;
      uint16_t sp = 0;
      if (sport != nullptr && i < sportLen && sport[i] > 0 && sport[i] <= 65535) {
        sp = static_cast<uint16_t>(sport[i]);
      } else {
        sp = FlowPort(payload, static_cast<uint32_t>(len));
      }
      uint8_t* h = hdrs_.data() + vlen * kHdr;
      uint16_t udpLen = static_cast<uint16_t>(8 + to.prefixLen + len);
      // IPv4 header (RFC 791 section 3.1). The kernel fills total length, identification (when 0) and
      // the header checksum for IP_HDRINCL sockets, and the source address when it is 0.
      h[0] = 0x45;
      h[1] = 0;
      h[2] = 0;
      h[3] = 0;
      h[4] = 0;
      h[5] = 0;
      h[6] = 0;  // DF clear: RFC 7348 section 4.3 lets routers on the path fragment
      h[7] = 0;
      h[8] = ttl;
      h[9] = 17;
      h[10] = 0;
      h[11] = 0;
      memcpy(h + 12, &source, 4);
      memcpy(h + 16, &to.addr.sin_addr.s_addr, 4);
      // UDP header (RFC 768). Checksum 0 = none, allowed over IPv4 and what RFC 7348 section 5 asks for.
      h[20] = static_cast<uint8_t>(sp >> 8);
      h[21] = static_cast<uint8_t>(sp);
      h[22] = static_cast<uint8_t>(to.port >> 8);
      h[23] = static_cast<uint8_t>(to.port);
      h[24] = static_cast<uint8_t>(udpLen >> 8);
      h[25] = static_cast<uint8_t>(udpLen);
      h[26] = 0;
      h[27] = 0;
      iovec* v = iov_.data() + vlen * 3;
      int n = 0;
      v[n++] = {h, kHdr};
      if (to.prefixLen > 0) v[n++] = {const_cast<uint8_t*>(to.prefix), to.prefixLen};
      v[n++] = {const_cast<uint8_t*>(payload), static_cast<size_t>(len)};
      mmsghdr& m = msgs_[vlen];
      m.msg_hdr.msg_name = const_cast<sockaddr_in*>(&to.addr);
      m.msg_hdr.msg_namelen = sizeof(sockaddr_in);
      m.msg_hdr.msg_iov = v;
      m.msg_hdr.msg_iovlen = n;
      m.msg_hdr.msg_control = nullptr;
      m.msg_hdr.msg_controllen = 0;
      m.msg_hdr.msg_flags = 0;
      m.msg_len = 0;
      index_[vlen] = i;
      vlen++;
    }
    if (vlen == 0) continue;
    SendResult r = Flush(vlen, i);
    if (r.next != i || r.fatal != 0) return r;
  }
  return {end, 0};
}

SendResult SendCore::SendIp(const uint8_t* arena, size_t arenaLen, const int32_t* meta, size_t metaLen,
                            uint32_t start, uint32_t end) {
  uint32_t i = start;
  while (i < end) {
    uint32_t vlen = 0;
    for (; i < end && vlen < kChunk; i++) {
      if (static_cast<size_t>(i) * kMetaStride + 1 >= metaLen) {
        counters.badPacket++;
        continue;
      }
      int32_t off = meta[i * kMetaStride];
      int32_t len = meta[i * kMetaStride + 1];
      if (off < 0 || len < 20 || static_cast<size_t>(off) + len > arenaLen || len > 65535) {
        counters.badPacket++;
        continue;
      }
      const uint8_t* p = arena + off;
      uint32_t ihl = (p[0] & 0x0f) * 4u;
      if ((p[0] >> 4) != 4 || ihl < 20 || ihl > static_cast<uint32_t>(len)) {
        counters.badPacket++;
        continue;
      }
      sockaddr_in& a = addrs_[vlen];
      a.sin_family = AF_INET;
      a.sin_port = 0;
      memcpy(&a.sin_addr.s_addr, p + 16, 4);
      iovec* v = iov_.data() + vlen * 3;
      v[0] = {const_cast<uint8_t*>(p), static_cast<size_t>(len)};
      mmsghdr& m = msgs_[vlen];
      m.msg_hdr.msg_name = &a;
      m.msg_hdr.msg_namelen = sizeof(sockaddr_in);
      m.msg_hdr.msg_iov = v;
      m.msg_hdr.msg_iovlen = 1;
      m.msg_hdr.msg_control = nullptr;
      m.msg_hdr.msg_controllen = 0;
      m.msg_hdr.msg_flags = 0;
      m.msg_len = 0;
      index_[vlen] = i;
      vlen++;
    }
    if (vlen == 0) continue;
    SendResult r = Flush(vlen, i);
    if (r.next != i || r.fatal != 0) return r;
  }
  return {end, 0};
}

}  // namespace onehost
