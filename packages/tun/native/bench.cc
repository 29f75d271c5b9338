// Benchmark helpers: a bounded UDP flood generator and the C forwarding loop (TUN batch read +
// sendmmsg, no JS) that the JS path is measured against. Both run on a libuv worker thread.
#include "bench.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <vector>

#include "netns.h"
#include "sender.h"
#include "tun-queue.h"

namespace onehost {

namespace {

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

double Num(Napi::Object o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
}

class FloodWorker : public Napi::AsyncWorker {
 public:
  FloodWorker(Napi::Env env, int fd, std::vector<std::vector<uint8_t>> packets, sockaddr_in to, uint64_t count,
              uint64_t durationNs, uint64_t ratePps)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        fd_(fd),
        packets_(std::move(packets)),
        to_(to),
        count_(count),
        durationNs_(durationNs),
        ratePps_(ratePps) {}
  ~FloodWorker() override { close(fd_); }
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    constexpr uint32_t kBatch = 64;
    std::vector<mmsghdr> msgs(kBatch);
    std::vector<iovec> iov(kBatch);
    uint64_t start = NowNs();
    uint64_t deadline = start + durationNs_;
    size_t ring = packets_.size();
    size_t next = 0;
    while (sent_ < count_) {
      uint64_t now = NowNs();
      if (now >= deadline) break;
      if (ratePps_ > 0) {
        // Pacing a generator, not synchronisation: hold the schedule of ratePps packets per second.
        uint64_t due = start + sent_ * 1000000000ull / ratePps_;
        if (due > now) {
          uint64_t wait = due - now;
          timespec ts{static_cast<time_t>(wait / 1000000000ull), static_cast<long>(wait % 1000000000ull)};
          nanosleep(&ts, nullptr);
        }
      }
      uint32_t n = static_cast<uint32_t>(count_ - sent_ < kBatch ? count_ - sent_ : kBatch);
      for (uint32_t i = 0; i < n; i++) {
        std::vector<uint8_t>& p = packets_[next];
        next = next + 1 == ring ? 0 : next + 1;
        iov[i] = {p.data(), p.size()};
        msgs[i].msg_hdr = {};
        msgs[i].msg_hdr.msg_name = &to_;
        msgs[i].msg_hdr.msg_namelen = sizeof(to_);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      int r = sendmmsg(fd_, msgs.data(), n, 0);
      if (r > 0) {
        sent_ += static_cast<uint64_t>(r);
      } else if (errno != EINTR && errno != ENOBUFS && errno != EAGAIN) {
        errors_++;
        if (errors_ > 1000) break;  // persistent failure (no route): stop instead of spinning
      }
    }
    elapsedNs_ = NowNs() - start;
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("sent", static_cast<double>(sent_));
    o.Set("errors", static_cast<double>(errors_));
    o.Set("elapsedMs", static_cast<double>(elapsedNs_) / 1e6);
    deferred_.Resolve(o);
  }

 private:
  Napi::Promise::Deferred deferred_;
  int fd_;
  std::vector<std::vector<uint8_t>> packets_;
  sockaddr_in to_;
  uint64_t count_, durationNs_, ratePps_;
  uint64_t sent_ = 0, errors_ = 0, elapsedNs_ = 0;
};

class ForwardWorker : public Napi::AsyncWorker {
 public:
  ForwardWorker(Napi::Env env, TunQueue* queue, Napi::Object queueObj, Sender* sender, Napi::Object senderObj,
                uint64_t durationNs, uint32_t maxBatch)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        queue_(queue),
        sender_(sender),
        durationNs_(durationNs),
        maxBatch_(maxBatch) {
    queueRef_ = Napi::Persistent(queueObj);
    senderRef_ = Napi::Persistent(senderObj);
    queue_->busy = true;
    sender_->busy = true;
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    constexpr uint32_t kFrame = 65536;
    std::vector<uint8_t> arena(static_cast<size_t>(maxBatch_) * 2048 + kFrame);
    std::vector<int32_t> meta(static_cast<size_t>(maxBatch_) * kMetaStride);
    std::vector<int32_t> dst(maxBatch_);
    const int tfd = queue_->fd();
    SendCore& core = sender_->core;
    const uint32_t ndest = static_cast<uint32_t>(core.table.size());
    uint64_t deadline = NowNs() + durationNs_;
    while (NowNs() < deadline) {
      pollfd pfd{tfd, POLLIN, 0};
      if (poll(&pfd, 1, 10) <= 0) continue;
      uint32_t n = 0;
      size_t off = 0;
      while (n < maxBatch_ && arena.size() - off >= kFrame) {
        ssize_t r = read(tfd, arena.data() + off, kFrame);
        if (r < 0) break;
        const uint8_t* p = arena.data() + off;
        meta[n * kMetaStride] = static_cast<int32_t>(off);
        meta[n * kMetaStride + 1] = static_cast<int32_t>(r);
        // The same decision the JS path makes: destination = destination port modulo table size.
        uint32_t ihl = (p[0] & 0x0f) * 4u;
        uint32_t dport = r >= static_cast<ssize_t>(ihl + 4) ? (p[ihl + 2] << 8 | p[ihl + 3]) : 0;
        dst[n] = ndest ? static_cast<int32_t>(dport % ndest) : -1;
        n++;
        off += (static_cast<size_t>(r) + 15) & ~static_cast<size_t>(15);
      }
      if (n == 0) continue;
      batches_++;
      uint32_t next = 0;
      while (next < n) {
        SendResult res = core.SendUdp(arena.data(), arena.size(), meta.data(), meta.size(), next, n, dst.data(),
                                      dst.size(), nullptr, 0);
        if (res.fatal) return;
        next = res.next;
        if (next < n) {
          pollfd wfd{core.fd, POLLOUT, 0};
          poll(&wfd, 1, 10);
        }
      }
      packets_ += n;
    }
  }
  void OnOK() override {
    queue_->busy = false;
    sender_->busy = false;
    Napi::Env env = Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("packets", static_cast<double>(packets_));
    o.Set("batches", static_cast<double>(batches_));
    deferred_.Resolve(o);
  }

 private:
  Napi::Promise::Deferred deferred_;
  TunQueue* queue_;
  Sender* sender_;
  Napi::ObjectReference queueRef_, senderRef_;
  uint64_t durationNs_;
  uint32_t maxBatch_;
  uint64_t packets_ = 0, batches_ = 0;
};

}  // namespace

// flood({ netns, source, destination, flows, srcPortBase, dstPortBase, size, count, durationMs, ratePps })
// sends UDP packets over a raw socket in `netns`, cycling through `flows` (source, destination) port
// pairs, until count packets or durationMs have passed. Resolves { sent, errors, elapsedMs }.
Napi::Value Flood(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    ThrowCode(env, "TUN_BAD_ARGUMENT", "flood needs an options object");
    return env.Undefined();
  }
  Napi::Object o = info[0].As<Napi::Object>();
  std::string netns = o.Get("netns").IsString() ? o.Get("netns").As<Napi::String>().Utf8Value() : "";
  std::string src = o.Get("source").IsString() ? o.Get("source").As<Napi::String>().Utf8Value() : "0.0.0.0";
  std::string dst = o.Get("destination").IsString() ? o.Get("destination").As<Napi::String>().Utf8Value() : "";
  in_addr s{}, d{};
  if (inet_pton(AF_INET, src.c_str(), &s) != 1 || inet_pton(AF_INET, dst.c_str(), &d) != 1) {
    ThrowCode(env, "TUN_BAD_ARGUMENT", "flood: bad source or destination address");
    return env.Undefined();
  }
  double flows = Num(o, "flows", 64), size = Num(o, "size", 18), count = Num(o, "count", 0),
         durationMs = Num(o, "durationMs", 0), rate = Num(o, "ratePps", 0);
  double srcBase = Num(o, "srcPortBase", 20000), dstBase = Num(o, "dstPortBase", 30000);
  // Bounded by construction: both a packet count and a duration are required, capped at 10 s.
  if (!(flows >= 1 && flows <= 4096) || !(size >= 0 && size <= 1472) || !(count >= 1 && count <= 1e9) ||
      !(durationMs >= 1 && durationMs <= 10000) || !(rate >= 0) || !(srcBase >= 1 && srcBase + flows <= 65536) ||
      !(dstBase >= 1 && dstBase + flows <= 65536)) {
    ThrowCode(env, "TUN_BAD_ARGUMENT",
              "flood: need 1 <= flows <= 4096, size <= 1472, count >= 1, 1 <= durationMs <= 10000, ports in range");
    return env.Undefined();
  }
  int fd;
  {
    NetnsScope scope(netns);
    if (!scope.ok()) {
      ThrowCode(env, "TUN_NETNS", "cannot enter network namespace \"" + netns + "\"", scope.error());
      return env.Undefined();
    }
    fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
  }
  if (fd < 0) {
    ThrowCode(env, "TUN_PERMISSION", "flood: cannot open a raw socket", errno);
    return env.Undefined();
  }
  // A send that blocks (full socket buffer behind a slow qdisc) gives up after 100 ms, so the deadline
  // holds.
  timeval tv{0, 100000};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  std::vector<std::vector<uint8_t>> packets(static_cast<size_t>(flows));
  for (size_t f = 0; f < packets.size(); f++) {
    std::vector<uint8_t>& p = packets[f];
    p.assign(28 + static_cast<size_t>(size), 0);
    uint16_t sp = static_cast<uint16_t>(srcBase + f), dp = static_cast<uint16_t>(dstBase + f);
    uint16_t ulen = static_cast<uint16_t>(8 + size);
    p[0] = 0x45;
    p[8] = 64;
    p[9] = 17;
    memcpy(&p[12], &s.s_addr, 4);
    memcpy(&p[16], &d.s_addr, 4);
    p[20] = sp >> 8;
    p[21] = sp & 0xff;
    p[22] = dp >> 8;
    p[23] = dp & 0xff;
    p[24] = ulen >> 8;
    p[25] = ulen & 0xff;
    for (size_t k = 28; k < p.size(); k++) p[k] = static_cast<uint8_t>(k);
  }
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr = d;
  auto* w = new FloodWorker(env, fd, std::move(packets), to, static_cast<uint64_t>(count),
                            static_cast<uint64_t>(durationMs * 1e6), static_cast<uint64_t>(rate));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// forwardC(queue, sender, { durationMs, maxBatch }) forwards from the TUN queue to the sender's
// destination table (destination port modulo table size) on a worker thread for durationMs (≤ 10 s).
// The queue must not be reading. Resolves { packets, batches }.
Napi::Value ForwardC(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AddonData* data = env.GetInstanceData<AddonData>();
  if (info.Length() < 3 || !info[0].IsObject() || !info[1].IsObject() || !info[2].IsObject() ||
      !info[0].As<Napi::Object>().InstanceOf(data->tunQueue.Value()) ||
      !info[1].As<Napi::Object>().InstanceOf(data->sender.Value())) {
    ThrowCode(env, "TUN_BAD_ARGUMENT", "forwardC(queue, sender, options)");
    return env.Undefined();
  }
  TunQueue* q = TunQueue::Unwrap(info[0].As<Napi::Object>());
  Sender* s = Sender::Unwrap(info[1].As<Napi::Object>());
  Napi::Object o = info[2].As<Napi::Object>();
  double durationMs = Num(o, "durationMs", 1000), maxBatch = Num(o, "maxBatch", 64);
  if (q->closed() || s->core.fd < 0 || q->reading() || q->busy || s->busy) {
    ThrowCode(env, "TUN_BUSY", "forwardC: queue and sender must be open, idle and not reading");
    return env.Undefined();
  }
  if (!(durationMs >= 1 && durationMs <= 10000) || !(maxBatch >= 1 && maxBatch <= 1024)) {
    ThrowCode(env, "TUN_BAD_ARGUMENT", "forwardC: need 1 <= durationMs <= 10000 and 1 <= maxBatch <= 1024");
    return env.Undefined();
  }
  auto* w = new ForwardWorker(env, q, info[0].As<Napi::Object>(), s, info[1].As<Napi::Object>(),
                              static_cast<uint64_t>(durationMs * 1e6), static_cast<uint32_t>(maxBatch));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace onehost
