// Benchmark helpers exported by the addon (see bench.cc).
#pragma once

#include <napi.h>

namespace onehost {

// AddonData holds per-environment constructors (the addon loads in workers too).
struct AddonData {
  Napi::FunctionReference tunQueue;
  Napi::FunctionReference sender;
};

Napi::Value Flood(const Napi::CallbackInfo& info);
Napi::Value ForwardC(const Napi::CallbackInfo& info);

}  // namespace onehost
