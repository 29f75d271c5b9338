// TunQueue: one queue of a TUN device as a JS object — batched nonblocking reads watched by libuv, one
// JS callback per batch, batched writes, configuration.
#pragma once

#include <napi.h>

#include <memory>
#include <string>

#include "common.h"

namespace onehost {

struct RxCounters {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t batches = 0;
  uint64_t truncated = 0;  // packet longer than frameSize: dropped
  uint64_t errors = 0;
  uint64_t wakeups = 0;
};

struct TxCounters {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t wouldBlock = 0;
  uint64_t badPacket = 0;  // offset/length outside the arena
  uint64_t errors = 0;     // kernel refused the packet (EINVAL: not IPv4/IPv6, ...)
  int lastErrno = 0;
};

class TunQueue : public Napi::ObjectWrap<TunQueue>, public PollOwner {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit TunQueue(const Napi::CallbackInfo& info);
  ~TunQueue() override;

  void OnPollEvent(int status, int events) override;
  void OnEnvCleanup() override { CloseNow(); }

  int fd() const { return fd_; }
  bool reading() const { return reading_; }
  bool closed() const { return fd_ < 0; }
  bool busy = false;  // a native loop (benchmark) owns the fd
  RxCounters rx;
  TxCounters tx;

 private:
  Napi::Value GetName(const Napi::CallbackInfo& info);
  Napi::Value Ifindex(const Napi::CallbackInfo& info);
  Napi::Value StartReading(const Napi::CallbackInfo& info);
  Napi::Value SetReading(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value WriteBatch(const Napi::CallbackInfo& info);
  Napi::Value OnWritable(const Napi::CallbackInfo& info);
  Napi::Value GetMtu(const Napi::CallbackInfo& info);
  Napi::Value SetMtu(const Napi::CallbackInfo& info);
  Napi::Value GetIpv4(const Napi::CallbackInfo& info);
  Napi::Value SetIpv4(const Napi::CallbackInfo& info);
  Napi::Value IsUp(const Napi::CallbackInfo& info);
  Napi::Value SetUp(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  bool CheckOpen(Napi::Env env);
  void UpdatePoll();
  // ReadBatch reads up to maxBatch_ packets; returns the count, or -errno on a fatal read error.
  int32_t ReadBatch();
  void CloseNow();

  int fd_ = -1;
  bool offload_ = false;  // IFF_VNET_HDR: a virtio_net_hdr precedes every packet read or written
  int ctl_ = -1;
  std::string name_;
  PollHandle* poll_ = nullptr;
  bool reading_ = false;
  bool wantWritable_ = false;
  bool pinned_ = false;  // strong self-reference while polling, like an active libuv handle

  uint8_t* arena_ = nullptr;
  size_t arenaLen_ = 0;
  int32_t* meta_ = nullptr;
  size_t metaLen_ = 0;
  uint32_t maxBatch_ = 64;
  uint32_t frameSize_ = 65536;
  Napi::ObjectReference arenaRef_;
  Napi::ObjectReference metaRef_;
  Napi::FunctionReference batchCb_;
  Napi::FunctionReference writableCb_;
  std::unique_ptr<Napi::AsyncContext> ctx_;
};

}  // namespace onehost
