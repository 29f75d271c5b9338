#include "tun-queue.h"

#include <arpa/inet.h>
#include <linux/if.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

#include "netns.h"
#include "tun-open.h"

namespace onehost {

namespace {
constexpr size_t kVnetHdr = 10;

// Ipv6Upper finds an IPv6 packet's upper-layer header behind the extension headers (RFC 8200 §4:
// hop-by-hop, routing, destination options; at most 8 of them): its offset, and its protocol in
// `proto`. 0 when the chain does not fit the packet.
uint16_t Ipv6Upper(const uint8_t* p, size_t len, uint8_t* proto) {
  size_t at = 40;
  uint8_t next = p[6];
  for (int i = 0; i < 8 && (next == 0 || next == 43 || next == 60); i++) {
    if (at + 8 > len) return 0;
    const size_t size = (static_cast<size_t>(p[at + 1]) + 1) * 8;
    next = p[at];
    at += size;
  }
  if (at > len) return 0;
  *proto = next;
  return static_cast<uint16_t>(at);
}

// FillVnetHdr writes the virtio_net_hdr for an IPv4 or IPv6 packet: `flags` as read (bit 0 NEEDS_CSUM)
// with the GSO type in bits 8-15, `gsoSize` the segment size (0: not a super-packet). csum_start/offset
// and hdr_len are derived from the headers, so a rewritten packet keeps them right.
void FillVnetHdr(uint8_t* h, const uint8_t* p, size_t len, int32_t flags, int32_t gsoSize) {
  memset(h, 0, kVnetHdr);
  if (len < 20) return;
  uint16_t ihl = static_cast<uint16_t>((p[0] & 0x0f) * 4);
  uint8_t proto = p[9];
  if ((p[0] >> 4) == 6) {
    if (len < 40) return;
    ihl = Ipv6Upper(p, len, &proto);
    if (ihl == 0) return;
  }
  const uint16_t l4hl = proto == 6 && len >= ihl + 13u ? static_cast<uint16_t>((p[ihl + 12] >> 4) * 4) : 8;
  const uint16_t csumOff = proto == 6 ? 16 : proto == 17 ? 6 : 0;
  const uint16_t hdrLen = static_cast<uint16_t>(ihl + l4hl);
  const uint16_t gso = static_cast<uint16_t>(gsoSize);
  h[1] = gso != 0 ? static_cast<uint8_t>((flags >> 8) & 0xff) : 0;  // gso_type
  h[2] = hdrLen & 0xff;
  h[3] = hdrLen >> 8;
  h[4] = gso & 0xff;
  h[5] = gso >> 8;
  if ((flags & 1) != 0 && csumOff != 0) {
    h[0] = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM: the checksum field holds the pseudo header's sum
    h[6] = ihl & 0xff;
    h[7] = ihl >> 8;
    h[8] = csumOff & 0xff;
    h[9] = csumOff >> 8;
  }
}
}  // namespace

namespace {

std::string OptString(Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
}

bool OptBool(Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() && v.As<Napi::Boolean>().Value();
}

}  // namespace

Napi::Function TunQueue::Define(Napi::Env env) {
  return DefineClass(env, "TunQueue",
                     {
                         InstanceMethod("name", &TunQueue::GetName),
                         InstanceMethod("ifindex", &TunQueue::Ifindex),
                         InstanceMethod("startReading", &TunQueue::StartReading),
                         InstanceMethod("setReading", &TunQueue::SetReading),
                         InstanceMethod("write", &TunQueue::Write),
                         InstanceMethod("writeBatch", &TunQueue::WriteBatch),
                         InstanceMethod("onWritable", &TunQueue::OnWritable),
                         InstanceMethod("getMtu", &TunQueue::GetMtu),
                         InstanceMethod("setMtu", &TunQueue::SetMtu),
                         InstanceMethod("getIpv4", &TunQueue::GetIpv4),
                         InstanceMethod("setIpv4", &TunQueue::SetIpv4),
                         InstanceMethod("isUp", &TunQueue::IsUp),
                         InstanceMethod("setUp", &TunQueue::SetUp),
                         InstanceMethod("stats", &TunQueue::Stats),
                         InstanceMethod("close", &TunQueue::Close),
                     });
}

// new TunQueue({ name, multiQueue, netns, devicePath }) opens one queue; throws a coded Error on failure.
TunQueue::TunQueue(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TunQueue>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    ThrowCode(env, "TUN_BAD_ARGUMENT", "TunQueue needs an options object");
    return;
  }
  Napi::Object o = info[0].As<Napi::Object>();
  TunOpenRequest req;
  req.name = OptString(o, "name");
  req.multiQueue = OptBool(o, "multiQueue");
  req.offload = OptBool(o, "offload");
  std::string path = OptString(o, "devicePath");
  if (!path.empty()) req.devicePath = path;
  std::string netns = OptString(o, "netns");
  TunOpenResult res;
  {
    NetnsScope scope(netns);
    if (!scope.ok()) {
      ThrowCode(env, "TUN_NETNS", "cannot enter network namespace \"" + netns + "\"", scope.error());
      return;
    }
    res = OpenTun(req);
  }
  if (res.fd < 0) {
    ThrowCode(env, res.code, res.message, res.errnum);
    return;
  }
  fd_ = res.fd;
  ctl_ = res.ctl;
  offload_ = req.offload;
  name_ = res.name;
  poll_ = PollHandle::Create(env, fd_, this);
  if (poll_ == nullptr) {
    CloseNow();
    return;
  }
  ctx_ = std::make_unique<Napi::AsyncContext>(env, "onehost.TunQueue");
}

TunQueue::~TunQueue() { CloseNow(); }

void TunQueue::CloseNow() {
  if (poll_ != nullptr) {
    poll_->Shutdown();
    poll_ = nullptr;
  }
  reading_ = false;
  wantWritable_ = false;
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
  if (ctl_ >= 0) {
    close(ctl_);
    ctl_ = -1;
  }
}

bool TunQueue::CheckOpen(Napi::Env env) {
  if (fd_ >= 0) return true;
  ThrowCode(env, "TUN_CLOSED", "TUN queue \"" + name_ + "\" was released");
  return false;
}

void TunQueue::UpdatePoll() {
  if (poll_ == nullptr) return;
  int events = (reading_ ? UV_READABLE : 0) | (wantWritable_ ? UV_WRITABLE : 0);
  poll_->Set(events);
  // While the queue reads or waits for writability it must not be garbage collected, even when the
  // program keeps no reference to it (its callbacks would silently stop).
  if (events != 0 && !pinned_) {
    Ref();
    pinned_ = true;
  } else if (events == 0 && pinned_) {
    Unref();
    pinned_ = false;
  }
}

Napi::Value TunQueue::GetName(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), name_); }

Napi::Value TunQueue::Ifindex(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  int index = 0;
  int e = onehost::GetIfindex(ctl_, name_, &index);
  if (e != 0) {
    ThrowCode(env, "TUN_CONFIG", "cannot read the ifindex of \"" + name_ + "\"", e);
    return env.Undefined();
  }
  return Napi::Number::New(env, index);
}

// startReading(arena, meta, maxBatch, frameSize, callback) starts batched reads; the arena and meta are
// kept (referenced) until close or the next startReading.
Napi::Value TunQueue::StartReading(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  if (busy) {
    ThrowCode(env, "TUN_BUSY", "a native loop is using this queue");
    return env.Undefined();
  }
  uint8_t* arena;
  size_t arenaLen;
  int32_t* meta;
  size_t metaLen;
  if (info.Length() < 5 || !BufferArg(env, info[0], "arena", &arena, &arenaLen) ||
      !TypedInt32(env, info[1], "meta", &meta, &metaLen)) {
    if (!env.IsExceptionPending()) ThrowCode(env, "TUN_BAD_ARGUMENT", "startReading needs 5 arguments");
    return env.Undefined();
  }
  if (!info[2].IsNumber() || !info[3].IsNumber() || !info[4].IsFunction()) {
    ThrowCode(env, "TUN_BAD_ARGUMENT", "startReading(arena, meta, maxBatch, frameSize, callback)");
    return env.Undefined();
  }
  int64_t maxBatch = info[2].As<Napi::Number>().Int64Value();
  int64_t frameSize = info[3].As<Napi::Number>().Int64Value();
  if (maxBatch < 1 || maxBatch > 4096 || frameSize < 68 || frameSize > 1 << 20 ||
      metaLen < static_cast<size_t>(maxBatch) * kMetaStride || arenaLen < static_cast<size_t>(frameSize) ||
      arenaLen > 0x7fffffff) {
    ThrowCode(env, "TUN_BAD_ARGUMENT",
              "startReading: need 1 <= maxBatch <= 4096, 68 <= frameSize, meta.length >= 4 * maxBatch and "
              "arena.length >= frameSize");
    return env.Undefined();
  }
  arena_ = arena;
  arenaLen_ = arenaLen;
  meta_ = meta;
  metaLen_ = metaLen;
  maxBatch_ = static_cast<uint32_t>(maxBatch);
  frameSize_ = static_cast<uint32_t>(frameSize);
  arenaRef_ = Napi::Persistent(info[0].As<Napi::Object>());
  metaRef_ = Napi::Persistent(info[1].As<Napi::Object>());
  batchCb_ = Napi::Persistent(info[4].As<Napi::Function>());
  reading_ = true;
  UpdatePoll();
  return env.Undefined();
}

// setReading(on) pauses or resumes reads; while paused the arena is not written.
Napi::Value TunQueue::SetReading(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  bool on = info.Length() > 0 && info[0].ToBoolean().Value();
  if (on && batchCb_.IsEmpty()) {
    ThrowCode(env, "TUN_BAD_ARGUMENT", "setReading(true) before startReading");
    return env.Undefined();
  }
  reading_ = on;
  UpdatePoll();
  return env.Undefined();
}

int32_t TunQueue::ReadBatch() {
  uint32_t n = 0;
  size_t off = 0;
  while (n < maxBatch_ && arenaLen_ - off >= frameSize_) {
    ssize_t r = read(fd_, arena_ + off, frameSize_);
    if (r < 0) {
      int e = errno;
      if (e == EINTR) continue;
      if (e == EAGAIN || e == EWOULDBLOCK) break;
      rx.errors++;
      // EBADFD: the device was deleted under us. Nothing more will arrive on this queue.
      if (n == 0) return -e;
      break;
    }
    if (static_cast<size_t>(r) > frameSize_) {
      rx.truncated++;
      continue;
    }
    int32_t* m = meta_ + n * kMetaStride;
    if (offload_) {
      if (r < static_cast<ssize_t>(kVnetHdr)) {
        rx.truncated++;
        continue;
      }
      // virtio_net_hdr: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset (little endian).
      const uint8_t* h = arena_ + off;
      m[0] = static_cast<int32_t>(off + kVnetHdr);
      m[1] = static_cast<int32_t>(r - kVnetHdr);
      m[2] = h[0] | (h[1] << 8);
      m[3] = h[4] | (h[5] << 8);
    } else {
      m[0] = static_cast<int32_t>(off);
      m[1] = static_cast<int32_t>(r);
      m[2] = 0;
      m[3] = 0;
    }
    rx.bytes += static_cast<uint64_t>(r);
    n++;
    off += (static_cast<size_t>(r) + 15) & ~static_cast<size_t>(15);
  }
  rx.packets += n;
  return static_cast<int32_t>(n);
}

void TunQueue::OnPollEvent(int status, int events) {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  rx.wakeups++;
  if (status < 0) {
    rx.errors++;
    if (reading_ && !batchCb_.IsEmpty()) {
      reading_ = false;
      UpdatePoll();
      CallJs(env, *ctx_, Value(), batchCb_.Value(), status == UV_EBADF ? -EBADF : -EIO);
    }
    return;
  }
  if ((events & UV_WRITABLE) && wantWritable_) {
    wantWritable_ = false;
    UpdatePoll();
    if (!writableCb_.IsEmpty()) {
      Napi::Function cb = writableCb_.Value();
      writableCb_.Reset();
      CallJs(env, *ctx_, Value(), cb, 0);
    }
  }
  // Several batches per wakeup when the queue stays full, then back to the loop for fairness.
  for (int round = 0; round < 4 && reading_ && fd_ >= 0 && !busy && (events & UV_READABLE); round++) {
    int32_t n = ReadBatch();
    if (n == 0) break;
    if (n < 0) {
      reading_ = false;
      UpdatePoll();
      CallJs(env, *ctx_, Value(), batchCb_.Value(), n);
      break;
    }
    rx.batches++;
    CallJs(env, *ctx_, Value(), batchCb_.Value(), n);
    if (static_cast<uint32_t>(n) < maxBatch_) break;
  }
}

// write(packet) -> true if the kernel took it, false if it would block (wait with onWritable). Throws a
// TUN_WRITE error when the kernel refuses the packet (e.g. not IPv4/IPv6).
Napi::Value TunQueue::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  uint8_t* p;
  size_t len;
  if (info.Length() < 1 || !BufferArg(env, info[0], "packet", &p, &len)) return env.Undefined();
  for (;;) {
    ssize_t r;
    if (offload_) {
      uint8_t hdr[kVnetHdr] = {0};  // a complete packet: no GSO, checksums already right
      iovec iov[2] = {{hdr, kVnetHdr}, {p, len}};
      r = writev(fd_, iov, 2);
    } else {
      r = write(fd_, p, len);
    }
    if (r >= 0) {
      tx.packets++;
      tx.bytes += len;
      return Napi::Boolean::New(env, true);
    }
    int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN || e == EWOULDBLOCK) {
      tx.wouldBlock++;
      return Napi::Boolean::New(env, false);
    }
    tx.errors++;
    tx.lastErrno = e;
    ThrowCode(env, "TUN_WRITE", "TUN \"" + name_ + "\" refused a " + std::to_string(len) + "-byte packet", e);
    return env.Undefined();
  }
}

// writeBatch(arena, meta, start, end) -> index of the first packet not written (== end when done).
// Packets the kernel refuses are counted and skipped; EAGAIN stops the batch.
Napi::Value TunQueue::WriteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  uint8_t* arena;
  size_t arenaLen;
  int32_t* meta;
  size_t metaLen;
  if (info.Length() < 4 || !BufferArg(env, info[0], "arena", &arena, &arenaLen) ||
      !TypedInt32(env, info[1], "meta", &meta, &metaLen)) {
    if (!env.IsExceptionPending()) ThrowCode(env, "TUN_BAD_ARGUMENT", "writeBatch(arena, meta, start, end)");
    return env.Undefined();
  }
  uint32_t start = info[2].As<Napi::Number>().Uint32Value();
  uint32_t end = info[3].As<Napi::Number>().Uint32Value();
  uint32_t i = start;
  for (; i < end; i++) {
    if (static_cast<size_t>(i) * kMetaStride + 1 >= metaLen) {
      tx.badPacket++;
      continue;
    }
    int32_t off = meta[i * kMetaStride];
    int32_t len = meta[i * kMetaStride + 1];
    if (off < 0 || len <= 0 || static_cast<size_t>(off) + len > arenaLen) {
      tx.badPacket++;
      continue;
    }
    ssize_t r;
    if (offload_) {
      uint8_t hdr[kVnetHdr];
      FillVnetHdr(hdr, arena + off, static_cast<size_t>(len), meta[i * kMetaStride + 2],
                  meta[i * kMetaStride + 3]);
      iovec iov[2] = {{hdr, kVnetHdr}, {arena + off, static_cast<size_t>(len)}};
      do {
        r = writev(fd_, iov, 2);
      } while (r < 0 && errno == EINTR);
    } else {
      do {
        r = write(fd_, arena + off, static_cast<size_t>(len));
      } while (r < 0 && errno == EINTR);
    }
    if (r >= 0) {
      tx.packets++;
      tx.bytes += static_cast<uint64_t>(len);
      continue;
    }
    int e = errno;
    if (e == EAGAIN || e == EWOULDBLOCK) {
      tx.wouldBlock++;
      break;
    }
    tx.errors++;
    tx.lastErrno = e;
  }
  return Napi::Number::New(env, i);
}

// onWritable(callback) calls callback once, when the fd can take more writes.
Napi::Value TunQueue::OnWritable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  if (info.Length() < 1 || !info[0].IsFunction()) {
    ThrowCode(env, "TUN_BAD_ARGUMENT", "onWritable needs a function");
    return env.Undefined();
  }
  writableCb_ = Napi::Persistent(info[0].As<Napi::Function>());
  wantWritable_ = true;
  UpdatePoll();
  return env.Undefined();
}

Napi::Value TunQueue::GetMtu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  int mtu = 0;
  int e = onehost::GetMtu(ctl_, name_, &mtu);
  if (e != 0) {
    ThrowCode(env, "TUN_CONFIG", "cannot read the MTU of \"" + name_ + "\"", e);
    return env.Undefined();
  }
  return Napi::Number::New(env, mtu);
}

Napi::Value TunQueue::SetMtu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  double v = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
  // The TUN driver accepts 68 (RFC 791 minimum) to 65535 (IPv4 total length field).
  if (!(v >= 68 && v <= 65535) || v != static_cast<int>(v)) {
    ThrowCode(env, "TUN_MTU_RANGE", "MTU must be an integer from 68 to 65535");
    return env.Undefined();
  }
  int e = onehost::SetMtu(ctl_, name_, static_cast<int>(v));
  if (e == EINVAL) {
    ThrowCode(env, "TUN_MTU_RANGE", "kernel refused MTU " + std::to_string(static_cast<int>(v)) + " for \"" +
                                        name_ + "\"", e);
  } else if (e != 0) {
    ThrowCode(env, e == EPERM ? "TUN_PERMISSION" : "TUN_CONFIG", "cannot set the MTU of \"" + name_ + "\"", e);
  }
  return env.Undefined();
}

// getIpv4() -> [address, prefixLength] or null when the device has no IPv4 address.
Napi::Value TunQueue::GetIpv4(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  uint32_t addr = 0, mask = 0;
  int e = onehost::GetIpv4(ctl_, name_, &addr, &mask);
  if (e == EADDRNOTAVAIL) return env.Null();
  if (e != 0) {
    ThrowCode(env, "TUN_CONFIG", "cannot read the IPv4 address of \"" + name_ + "\"", e);
    return env.Undefined();
  }
  char text[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &addr, text, sizeof(text));
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::String::New(env, text));
  out.Set(1u, Napi::Number::New(env, __builtin_popcount(mask)));
  return out;
}

// setIpv4(address, prefixLength) replaces the device's primary IPv4 address.
Napi::Value TunQueue::SetIpv4(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) {
    ThrowCode(env, "TUN_BAD_ARGUMENT", "setIpv4(address, prefixLength)");
    return env.Undefined();
  }
  std::string text = info[0].As<Napi::String>().Utf8Value();
  int prefix = info[1].As<Napi::Number>().Int32Value();
  in_addr addr{};
  if (inet_pton(AF_INET, text.c_str(), &addr) != 1 || prefix < 0 || prefix > 32) {
    ThrowCode(env, "TUN_BAD_ARGUMENT", "bad IPv4 address \"" + text + "/" + std::to_string(prefix) + "\"");
    return env.Undefined();
  }
  uint32_t mask = prefix == 0 ? 0 : htonl(0xffffffffu << (32 - prefix));
  int e = onehost::SetIpv4(ctl_, name_, addr.s_addr, mask);
  if (e != 0) {
    ThrowCode(env, e == EPERM ? "TUN_PERMISSION" : "TUN_CONFIG",
              "cannot set address " + text + "/" + std::to_string(prefix) + " on \"" + name_ + "\"", e);
  }
  return env.Undefined();
}

Napi::Value TunQueue::IsUp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  int flags = 0;
  int e = onehost::GetFlags(ctl_, name_, &flags);
  if (e != 0) {
    ThrowCode(env, "TUN_CONFIG", "cannot read the flags of \"" + name_ + "\"", e);
    return env.Undefined();
  }
  return Napi::Boolean::New(env, (flags & IFF_UP) != 0);
}

Napi::Value TunQueue::SetUp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  bool up = info.Length() > 0 && info[0].ToBoolean().Value();
  int e = onehost::SetUp(ctl_, name_, up);
  if (e != 0) {
    ThrowCode(env, e == EPERM ? "TUN_PERMISSION" : "TUN_CONFIG",
              std::string("cannot bring \"") + name_ + "\" " + (up ? "up" : "down"), e);
  }
  return env.Undefined();
}

Napi::Value TunQueue::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("rxPackets", static_cast<double>(rx.packets));
  o.Set("rxBytes", static_cast<double>(rx.bytes));
  o.Set("rxBatches", static_cast<double>(rx.batches));
  o.Set("rxTruncated", static_cast<double>(rx.truncated));
  o.Set("rxErrors", static_cast<double>(rx.errors));
  o.Set("rxWakeups", static_cast<double>(rx.wakeups));
  o.Set("txPackets", static_cast<double>(tx.packets));
  o.Set("txBytes", static_cast<double>(tx.bytes));
  o.Set("txWouldBlock", static_cast<double>(tx.wouldBlock));
  o.Set("txBadPacket", static_cast<double>(tx.badPacket));
  o.Set("txErrors", static_cast<double>(tx.errors));
  o.Set("txLastErrno", tx.lastErrno);
  return o;
}

// close() releases the queue; the device disappears with its last queue. Safe to call twice.
Napi::Value TunQueue::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (busy) {
    ThrowCode(env, "TUN_BUSY", "a native loop is using this queue; wait for it to finish");
    return env.Undefined();
  }
  CloseNow();
  if (pinned_) {
    Unref();
    pinned_ = false;
  }
  batchCb_.Reset();
  writableCb_.Reset();
  arenaRef_.Reset();
  metaRef_.Reset();
  return env.Undefined();
}

}  // namespace onehost
