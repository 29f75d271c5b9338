#include "sender.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netns.h"

namespace onehost {

Napi::Function Sender::Define(Napi::Env env) {
  return DefineClass(env, "Sender",
                     {
                         InstanceMethod("setDestinations", &Sender::SetDestinations),
                         InstanceMethod("sendUdp", &Sender::SendUdp),
                         InstanceMethod("sendIp", &Sender::SendIp),
                         InstanceMethod("onWritable", &Sender::OnWritable),
                         InstanceMethod("flowPort", &Sender::FlowPort),
                         InstanceMethod("stats", &Sender::Stats),
                         InstanceMethod("close", &Sender::Close),
                     });
}

// new Sender({ netns, source, ttl, portMin, portMax, sendBuffer, mark }) opens the raw socket; throws a
// coded Error when it cannot (TUN_PERMISSION without CAP_NET_RAW; for a mark before Linux 5.17, without
// CAP_NET_ADMIN).
Sender::Sender(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Sender>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    ThrowCode(env, "TUN_BAD_ARGUMENT", "Sender needs an options object");
    return;
  }
  Napi::Object o = info[0].As<Napi::Object>();
  std::string netns = o.Get("netns").IsString() ? o.Get("netns").As<Napi::String>().Utf8Value() : "";
  if (o.Get("source").IsString()) {
    std::string s = o.Get("source").As<Napi::String>().Utf8Value();
    in_addr a{};
    if (inet_pton(AF_INET, s.c_str(), &a) != 1) {
      ThrowCode(env, "TUN_BAD_ARGUMENT", "bad source address \"" + s + "\"");
      return;
    }
    core.source = a.s_addr;
  }
  if (o.Get("ttl").IsNumber()) {
    int ttl = o.Get("ttl").As<Napi::Number>().Int32Value();
    if (ttl < 1 || ttl > 255) {
      ThrowCode(env, "TUN_BAD_ARGUMENT", "ttl must be 1..255");
      return;
    }
    core.ttl = static_cast<uint8_t>(ttl);
  }
  if (o.Get("portMin").IsNumber()) core.portMin = static_cast<uint16_t>(o.Get("portMin").As<Napi::Number>().Uint32Value());
  if (o.Get("portMax").IsNumber()) core.portMax = static_cast<uint16_t>(o.Get("portMax").As<Napi::Number>().Uint32Value());
  if (core.portMin == 0 || core.portMin > core.portMax) {
    ThrowCode(env, "TUN_BAD_ARGUMENT", "need 1 <= portMin <= portMax <= 65535");
    return;
  }
  // SO_MARK (socket(7)) tags every packet this socket sends, so that nftables (`meta mark`) and policy
  // routing (`ip rule fwmark`) can tell them apart. Absent: no mark.
  Napi::Value markValue = o.Get("mark");
  bool hasMark = !markValue.IsUndefined();
  uint32_t mark = 0;
  if (hasMark) {
    double m = markValue.IsNumber() ? markValue.As<Napi::Number>().DoubleValue() : -1;
    if (!(m >= 0 && m <= 4294967295.0) || m != static_cast<double>(static_cast<uint32_t>(m))) {
      ThrowCode(env, "TUN_BAD_ARGUMENT", "mark must be an integer 0..0xffffffff");
      return;
    }
    mark = static_cast<uint32_t>(m);
  }
  int fd;
  {
    NetnsScope scope(netns);
    if (!scope.ok()) {
      ThrowCode(env, "TUN_NETNS", "cannot enter network namespace \"" + netns + "\"", scope.error());
      return;
    }
    // IPPROTO_RAW implies IP_HDRINCL and receives nothing (raw(7)), so no receive queue can fill up.
    fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW);
  }
  if (fd < 0) {
    int e = errno;
    ThrowCode(env, e == EPERM || e == EACCES ? "TUN_PERMISSION" : "TUN_OPEN_FAILED",
              e == EPERM || e == EACCES ? "cannot open a raw IPv4 socket (needs CAP_NET_RAW)"
                                        : "cannot open a raw IPv4 socket",
              e);
    return;
  }
  if (hasMark && setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) != 0) {
    int e = errno;
    close(fd);
    ThrowCode(env, e == EPERM || e == EACCES ? "TUN_PERMISSION" : "TUN_OPEN_FAILED",
              e == EPERM || e == EACCES ? "cannot set SO_MARK (needs CAP_NET_ADMIN, or CAP_NET_RAW since Linux 5.17)" : "cannot set SO_MARK", e);
    return;
  }
  if (o.Get("sendBuffer").IsNumber()) {
    int size = o.Get("sendBuffer").As<Napi::Number>().Int32Value();
    // SO_SNDBUFFORCE passes the net.core.wmem_max cap (we hold CAP_NET_ADMIN); fall back otherwise.
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) != 0) {
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    }
  }
  core.fd = fd;
  poll_ = PollHandle::Create(env, fd, this);
  if (poll_ == nullptr) {
    CloseNow();
    return;
  }
  ctx_ = std::make_unique<Napi::AsyncContext>(env, "onehost.Sender");
}

Sender::~Sender() { CloseNow(); }

void Sender::CloseNow() {
  if (poll_ != nullptr) {
    poll_->Shutdown();
    poll_ = nullptr;
  }
  if (core.fd >= 0) {
    close(core.fd);
    core.fd = -1;
  }
}

bool Sender::CheckOpen(Napi::Env env) {
  if (core.fd >= 0) return true;
  ThrowCode(env, "TUN_CLOSED", "sender was closed");
  return false;
}

// setDestinations(addresses: string[], ports: number[], prefixes: (Uint8Array|null)[]) replaces the
// destination table. Validates everything before changing anything.
Napi::Value Sender::SetDestinations(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  if (busy) {
    ThrowCode(env, "TUN_BUSY", "a native loop is sending; change destinations after it ends");
    return env.Undefined();
  }
  if (info.Length() < 3 || !info[0].IsArray() || !info[1].IsArray() || !info[2].IsArray()) {
    ThrowCode(env, "TUN_BAD_ARGUMENT", "setDestinations(addresses, ports, prefixes)");
    return env.Undefined();
  }
  Napi::Array addrs = info[0].As<Napi::Array>();
  Napi::Array ports = info[1].As<Napi::Array>();
  Napi::Array prefixes = info[2].As<Napi::Array>();
  uint32_t n = addrs.Length();
  if (ports.Length() != n || prefixes.Length() != n || n > 1u << 20) {
    ThrowCode(env, "TUN_BAD_ARGUMENT", "setDestinations: arrays must have the same length (at most 2^20)");
    return env.Undefined();
  }
  std::vector<Destination> table(n);
  for (uint32_t i = 0; i < n; i++) {
    Destination& d = table[i];
    Napi::Value a = addrs.Get(i);
    std::string text = a.IsString() ? a.As<Napi::String>().Utf8Value() : "";
    d.addr.sin_family = AF_INET;
    if (inet_pton(AF_INET, text.c_str(), &d.addr.sin_addr) != 1) {
      ThrowCode(env, "TUN_BAD_ARGUMENT", "destination " + std::to_string(i) + ": bad IPv4 address \"" + text + "\"");
      return env.Undefined();
    }
    Napi::Value p = ports.Get(i);
    double port = p.IsNumber() ? p.As<Napi::Number>().DoubleValue() : -1;
    if (!(port >= 1 && port <= 65535) || port != static_cast<int>(port)) {
      ThrowCode(env, "TUN_BAD_ARGUMENT", "destination " + std::to_string(i) + ": port must be 1..65535");
      return env.Undefined();
    }
    d.port = static_cast<uint16_t>(port);
    Napi::Value pre = prefixes.Get(i);
    if (!pre.IsNull() && !pre.IsUndefined()) {
      uint8_t* data;
      size_t len;
      if (!BufferArg(env, pre, "prefix", &data, &len)) return env.Undefined();
      if (len > kMaxPrefix) {
        ThrowCode(env, "TUN_BAD_ARGUMENT", "destination " + std::to_string(i) + ": prefix longer than 64 bytes");
        return env.Undefined();
      }
      memcpy(d.prefix, data, len);
      d.prefixLen = static_cast<uint8_t>(len);
    }
  }
  core.table.swap(table);
  return env.Undefined();
}

// sendUdp(arena, meta, start, end, dst, sport|null) -> index of the first packet not sent (== end when
// all were); less than end only when the socket buffer is full (wait with onWritable).
Napi::Value Sender::SendUdp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  uint8_t* arena;
  size_t arenaLen;
  int32_t *meta, *dst, *sport = nullptr;
  size_t metaLen, dstLen, sportLen = 0;
  if (info.Length() < 6 || !BufferArg(env, info[0], "arena", &arena, &arenaLen) ||
      !TypedInt32(env, info[1], "meta", &meta, &metaLen) || !TypedInt32(env, info[4], "dst", &dst, &dstLen)) {
    if (!env.IsExceptionPending()) ThrowCode(env, "TUN_BAD_ARGUMENT", "sendUdp(arena, meta, start, end, dst, sport)");
    return env.Undefined();
  }
  if (!info[5].IsNull() && !info[5].IsUndefined() && !TypedInt32(env, info[5], "sport", &sport, &sportLen)) {
    return env.Undefined();
  }
  uint32_t start = info[2].As<Napi::Number>().Uint32Value();
  uint32_t end = info[3].As<Napi::Number>().Uint32Value();
  SendResult r = core.SendUdp(arena, arenaLen, meta, metaLen, start, end, dst, dstLen, sport, sportLen);
  if (r.fatal != 0) {
    ThrowCode(env, "TUN_SEND", "raw socket unusable", r.fatal);
    return env.Undefined();
  }
  return Napi::Number::New(env, r.next);
}

// sendIp(arena, meta, start, end) -> index of the first packet not sent; packets are complete IPv4.
Napi::Value Sender::SendIp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  uint8_t* arena;
  size_t arenaLen;
  int32_t* meta;
  size_t metaLen;
  if (info.Length() < 4 || !BufferArg(env, info[0], "arena", &arena, &arenaLen) ||
      !TypedInt32(env, info[1], "meta", &meta, &metaLen)) {
    if (!env.IsExceptionPending()) ThrowCode(env, "TUN_BAD_ARGUMENT", "sendIp(arena, meta, start, end)");
    return env.Undefined();
  }
  uint32_t start = info[2].As<Napi::Number>().Uint32Value();
  uint32_t end = info[3].As<Napi::Number>().Uint32Value();
  SendResult r = core.SendIp(arena, arenaLen, meta, metaLen, start, end);
  if (r.fatal != 0) {
    ThrowCode(env, "TUN_SEND", "raw socket unusable", r.fatal);
    return env.Undefined();
  }
  return Napi::Number::New(env, r.next);
}

// onWritable(callback) calls callback once, when the socket buffer has room again.
Napi::Value Sender::OnWritable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  if (info.Length() < 1 || !info[0].IsFunction()) {
    ThrowCode(env, "TUN_BAD_ARGUMENT", "onWritable needs a function");
    return env.Undefined();
  }
  writableCb_ = Napi::Persistent(info[0].As<Napi::Function>());
  poll_->Set(UV_WRITABLE);
  if (!pinned_) {
    Ref();
    pinned_ = true;
  }
  return env.Undefined();
}

void Sender::OnPollEvent(int /*status*/, int /*events*/) {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  if (poll_ != nullptr) poll_->Set(0);
  if (pinned_) {
    Unref();
    pinned_ = false;
  }
  if (writableCb_.IsEmpty()) return;
  Napi::Function cb = writableCb_.Value();
  writableCb_.Reset();
  CallJs(env, *ctx_, Value(), cb, 0);
}

// flowPort(packet) -> the outer source port sendUdp would choose for this inner packet.
Napi::Value Sender::FlowPort(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* p;
  size_t len;
  if (info.Length() < 1 || !BufferArg(env, info[0], "packet", &p, &len)) return env.Undefined();
  return Napi::Number::New(env, core.FlowPort(p, static_cast<uint32_t>(len)));
}

Napi::Value Sender::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  const SendCounters& c = core.counters;
  o.Set("packets", static_cast<double>(c.packets));
  o.Set("bytes", static_cast<double>(c.bytes));
  o.Set("calls", static_cast<double>(c.calls));
  o.Set("wouldBlock", static_cast<double>(c.wouldBlock));
  o.Set("badDestination", static_cast<double>(c.badDestination));
  o.Set("badPacket", static_cast<double>(c.badPacket));
  o.Set("errors", static_cast<double>(c.errors));
  o.Set("lastErrno", c.lastErrno);
  return o;
}

// close() releases the socket. Safe to call twice.
Napi::Value Sender::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (busy) {
    ThrowCode(env, "TUN_BUSY", "a native loop is sending; wait for it to finish");
    return env.Undefined();
  }
  CloseNow();
  if (pinned_) {
    Unref();
    pinned_ = false;
  }
  writableCb_.Reset();
  return env.Undefined();
}

}  // namespace onehost
