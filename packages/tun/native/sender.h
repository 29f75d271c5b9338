// Sender: the addon's raw IPv4 socket as a JS object — batched UDP encapsulation to a destination
// table (sendmmsg) and batched sending of complete IPv4 packets.
#pragma once

#include <napi.h>

#include <memory>

#include "common.h"
#include "send-core.h"

namespace onehost {

class Sender : public Napi::ObjectWrap<Sender>, public PollOwner {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Sender(const Napi::CallbackInfo& info);
  ~Sender() override;

  void OnPollEvent(int status, int events) override;
  void OnEnvCleanup() override { CloseNow(); }

  SendCore core;
  bool busy = false;  // a native loop (benchmark) is sending

 private:
  Napi::Value SetDestinations(const Napi::CallbackInfo& info);
  Napi::Value SendUdp(const Napi::CallbackInfo& info);
  Napi::Value SendIp(const Napi::CallbackInfo& info);
  Napi::Value OnWritable(const Napi::CallbackInfo& info);
  Napi::Value FlowPort(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  bool CheckOpen(Napi::Env env);
  void CloseNow();

  PollHandle* poll_ = nullptr;
  bool pinned_ = false;  // strong self-reference while waiting for writability
  Napi::FunctionReference writableCb_;
  std::unique_ptr<Napi::AsyncContext> ctx_;
};

}  // namespace onehost
