// NftContext: libnftables in this process. One context (its netlink socket opened in a namespace, when
// named) runs nft scripts as `nft -f` would, one transaction per script, without a process per call.
// Scripts run on a worker thread (the libuv pool) so a large one never stalls the event loop; the
// JavaScript side runs one at a time per context.
#include <nftables/libnftables.h>
#include <napi.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "../../tun/native/netns.h"

namespace onehost {

class NftRun : public Napi::AsyncWorker {
 public:
  NftRun(Napi::Env env, struct nft_ctx* ctx, std::string script)
      : Napi::AsyncWorker(env), ctx_(ctx), script_(std::move(script)), deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    // From a file, not a buffer: libnftables then names the failing line in its error (file:line:col);
    // for a buffer it shows the first line instead. A memory file costs no disk.
    int fd = memfd_create("onehost-nft", MFD_CLOEXEC);
    if (fd < 0) {
      rc_ = -1;
      error_ = std::string("memfd_create: ") + strerror(errno);
      return;
    }
    size_t done = 0;
    while (done < script_.size()) {
      ssize_t n = write(fd, script_.data() + done, script_.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        rc_ = -1;
        error_ = std::string("write: ") + strerror(errno);
        close(fd);
        return;
      }
      done += static_cast<size_t>(n);
    }
    std::string path = "/proc/self/fd/" + std::to_string(fd);
    rc_ = nft_run_cmd_from_filename(ctx_, path.c_str());
    close(fd);
    const char* out = nft_ctx_get_output_buffer(ctx_);
    const char* err = nft_ctx_get_error_buffer(ctx_);
    output_ = out != nullptr ? out : "";
    error_ = err != nullptr ? err : "";
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object r = Napi::Object::New(env);
    r.Set("ok", Napi::Boolean::New(env, rc_ == 0));
    r.Set("output", Napi::String::New(env, output_));
    r.Set("error", Napi::String::New(env, error_));
    deferred_.Resolve(r);
  }

 private:
  struct nft_ctx* ctx_;
  std::string script_;
  Napi::Promise::Deferred deferred_;
  int rc_ = 0;
  std::string output_;
  std::string error_;
};

class NftContext : public Napi::ObjectWrap<NftContext> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NftContext",
                       {InstanceMethod("run", &NftContext::Run), InstanceMethod("close", &NftContext::Close)});
  }

  // new NftContext(netns?, json?): json makes listings come back as JSON (nft -j)
  explicit NftContext(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NftContext>(info) {
    Napi::Env env = info.Env();
    std::string netns = info.Length() > 0 && info[0].IsString() ? std::string(info[0].As<Napi::String>()) : "";
    bool json = info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
    NetnsScope scope(netns);
    if (!scope.ok()) {
      Napi::Error e = Napi::Error::New(env, "cannot enter network namespace " + netns);
      e.Set("code", Napi::String::New(env, "ENFTCONTEXT"));
      e.ThrowAsJavaScriptException();
      return;
    }
    ctx_ = nft_ctx_new(NFT_CTX_DEFAULT);
    if (ctx_ == nullptr) {
      Napi::Error::New(env, "cannot make an nftables context").ThrowAsJavaScriptException();
      return;
    }
    nft_ctx_buffer_output(ctx_);
    nft_ctx_buffer_error(ctx_);
    if (json) nft_ctx_output_set_flags(ctx_, NFT_CTX_OUTPUT_JSON);
  }

  ~NftContext() override {
    if (ctx_ != nullptr) nft_ctx_free(ctx_);
  }

 private:
  struct nft_ctx* ctx_ = nullptr;

  // run(script) → Promise<{ ok, output, error }>
  Napi::Value Run(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (ctx_ == nullptr) {
      Napi::Error::New(env, "NftContext is closed").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (info.Length() < 1 || !info[0].IsString()) {
      Napi::TypeError::New(env, "run(script)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    auto* w = new NftRun(env, ctx_, info[0].As<Napi::String>());
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (ctx_ != nullptr) nft_ctx_free(ctx_);
    ctx_ = nullptr;
    return info.Env().Undefined();
  }
};

Napi::Function DefineNftContext(Napi::Env env) { return NftContext::Define(env); }

}  // namespace onehost
