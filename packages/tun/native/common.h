// Shared helpers for the onehost TUN addon: error objects with stable codes, the poll handle that
// survives environment teardown, and counters.
#pragma once

#include <napi.h>
#include <uv.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "layout.h"

namespace onehost {

// ThrowCode throws a JS Error with a stable `code` and, when errnum is set, `errno` and `errnoName`.
inline void ThrowCode(Napi::Env env, const char* code, const std::string& message, int errnum = 0) {
  std::string text = message;
  if (errnum != 0) {
    const char* name = strerrorname_np(errnum);
    text += std::string(" (") + (name ? name : "errno") + ": " + strerror(errnum) + ")";
  }
  Napi::Error e = Napi::Error::New(env, text);
  e.Set("code", Napi::String::New(env, code));
  if (errnum != 0) {
    e.Set("errno", Napi::Number::New(env, errnum));
    const char* name = strerrorname_np(errnum);
    if (name) e.Set("errnoName", Napi::String::New(env, name));
  }
  e.ThrowAsJavaScriptException();
}

// PollHandle is a libuv poll handle with its own lifetime: the owner may be finalized before libuv has
// finished closing the handle, and a worker thread's environment may be torn down while the handle is
// open (the async cleanup hook makes Node wait until uv_close has completed).
class PollOwner {
 public:
  virtual ~PollOwner() = default;
  virtual void OnPollEvent(int status, int events) = 0;
  virtual void OnEnvCleanup() = 0;
};

struct PollHandle {
  uv_poll_t poll;
  napi_async_cleanup_hook_handle hook = nullptr;
  PollOwner* owner = nullptr;
  bool closing = false;
  int events = 0;

  // Create initialises a poll handle for fd on env's loop. Returns nullptr and throws on failure.
  static PollHandle* Create(Napi::Env env, int fd, PollOwner* owner) {
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      ThrowCode(env, "TUN_INTERNAL", "no event loop");
      return nullptr;
    }
    auto* ph = new PollHandle();
    ph->owner = owner;
    int r = uv_poll_init(loop, &ph->poll, fd);
    if (r != 0) {
      delete ph;
      ThrowCode(env, "TUN_INTERNAL", std::string("uv_poll_init: ") + uv_strerror(r));
      return nullptr;
    }
    ph->poll.data = ph;
    napi_add_async_cleanup_hook(env, OnCleanup, ph, &ph->hook);
    return ph;
  }

  // Set changes the watched events (UV_READABLE | UV_WRITABLE); 0 stops watching.
  void Set(int want) {
    if (closing || want == events) return;
    events = want;
    if (want == 0) {
      uv_poll_stop(&poll);
    } else {
      uv_poll_start(&poll, want, OnEvent);
    }
  }

  // Shutdown stops watching and closes the handle; memory is freed once libuv is done with it.
  void Shutdown() {
    if (closing) return;
    closing = true;
    owner = nullptr;
    uv_poll_stop(&poll);
    uv_close(reinterpret_cast<uv_handle_t*>(&poll), OnClosed);
  }

 private:
  static void OnEvent(uv_poll_t* h, int status, int events) {
    auto* ph = static_cast<PollHandle*>(h->data);
    if (ph->owner != nullptr) ph->owner->OnPollEvent(status, events);
  }
  static void OnClosed(uv_handle_t* h) {
    auto* ph = static_cast<PollHandle*>(h->data);
    if (ph->hook != nullptr) napi_remove_async_cleanup_hook(ph->hook);
    delete ph;
  }
  static void OnCleanup(napi_async_cleanup_hook_handle, void* arg) {
    auto* ph = static_cast<PollHandle*>(arg);
    if (ph->owner != nullptr) {
      ph->owner->OnEnvCleanup();  // closes the owner, which calls Shutdown()
    }
    ph->Shutdown();
  }
};

// CallJs calls fn(arg) through napi_make_callback so that microtasks run afterwards; an exception the
// callback throws is reported as uncaught (like any other event callback). Allocates nothing on the heap.
inline void CallJs(napi_env env, napi_async_context ctx, napi_value recv, napi_value fn, int32_t arg) {
  napi_value argv[1];
  napi_create_int32(env, arg, &argv[0]);
  napi_value result;
  napi_status s = napi_make_callback(env, ctx, recv, fn, 1, argv, &result);
  if (s == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
}

// TypedInt32 reads an Int32Array argument; returns false (and throws) if it is something else.
inline bool TypedInt32(Napi::Env env, Napi::Value v, const char* what, int32_t** data, size_t* len) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    ThrowCode(env, "TUN_BAD_ARGUMENT", std::string(what) + " must be an Int32Array");
    return false;
  }
  auto a = v.As<Napi::Int32Array>();
  *data = a.Data();
  *len = a.ElementLength();
  return true;
}

// BufferArg reads a Buffer/Uint8Array argument; returns false (and throws) if it is something else.
inline bool BufferArg(Napi::Env env, Napi::Value v, const char* what, uint8_t** data, size_t* len) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowCode(env, "TUN_BAD_ARGUMENT", std::string(what) + " must be a Buffer or Uint8Array");
    return false;
  }
  auto a = v.As<Napi::Uint8Array>();
  *data = a.Data();
  *len = a.ByteLength();
  return true;
}

}  // namespace onehost
