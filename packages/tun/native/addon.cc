#include <napi.h>
// Placeholder module so the install step builds; the TUN addon replaces this file.
static Napi::Object Init(Napi::Env env, Napi::Object exports) { return exports; }
NODE_API_MODULE(onehost_tun, Init)
