// Module entry: the onehost TUN and batched packet I/O addon.
#include <napi.h>

#include "bench.h"
#include "layout.h"
#include "sender.h"
#include "tun-queue.h"

namespace onehost {

Napi::Value TcpRepairDetach(const Napi::CallbackInfo& info);
Napi::Value SetReceiveBuffer(const Napi::CallbackInfo& info);
Napi::Value SendIcmp6(const Napi::CallbackInfo& info);

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  Napi::Function tunQueue = TunQueue::Define(env);
  Napi::Function sender = Sender::Define(env);
  data->tunQueue = Napi::Persistent(tunQueue);
  data->sender = Napi::Persistent(sender);
  env.SetInstanceData<AddonData>(data);
  exports.Set("TunQueue", tunQueue);
  exports.Set("Sender", sender);
  exports.Set("flood", Napi::Function::New(env, Flood, "flood"));
  exports.Set("tcpRepairDetach", Napi::Function::New(env, TcpRepairDetach, "tcpRepairDetach"));
  exports.Set("setReceiveBuffer", Napi::Function::New(env, SetReceiveBuffer, "setReceiveBuffer"));
  exports.Set("sendIcmp6", Napi::Function::New(env, SendIcmp6, "sendIcmp6"));
  exports.Set("forwardC", Napi::Function::New(env, ForwardC, "forwardC"));
  exports.Set("META_STRIDE", Napi::Number::New(env, kMetaStride));
  return exports;
}

}  // namespace onehost

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return onehost::Init(env, exports); }

NODE_API_MODULE(onehost_tun, InitModule)
