// bpf(2) map access for maps pinned in a bpffs (the spliced flows' tables, packages/ksplice): one system
// call per operation, synchronous (a handover must find its entry in place before the next packet), no
// libbpf. Keys and values are the caller's byte arrays, which must be the map's exact sizes.
#include <linux/bpf.h>
#include <napi.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace onehost {

namespace {

long Sys(int cmd, union bpf_attr* attr) { return syscall(__NR_bpf, cmd, attr, sizeof(*attr)); }

void Throw(Napi::Env env, const std::string& what, int err) {
  Napi::Error e = Napi::Error::New(env, what + ": " + strerror(err));
  e.Set("code", Napi::String::New(env, "BPF_SYSCALL"));
  e.Set("errno", Napi::Number::New(env, err));
  e.ThrowAsJavaScriptException();
}

bool Bytes(const Napi::Value& v, uint8_t** p, size_t* n) {
  if (!v.IsTypedArray()) return false;
  Napi::Uint8Array a = v.As<Napi::Uint8Array>();
  *p = a.Data();
  *n = a.ByteLength();
  return true;
}

}  // namespace

// bpfObjGet(path) → fd of a pinned object (the caller closes it with fs.closeSync).
Napi::Value BpfObjGet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.pathname = reinterpret_cast<uint64_t>(path.c_str());
  long fd = Sys(BPF_OBJ_GET, &attr);
  if (fd < 0) {
    Throw(env, "BPF_OBJ_GET " + path, errno);
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(fd));
}

// bpfMapGetFdById(id) → fd of a loaded map (the caller closes it): how a restarted process reaches maps
// whose pins went with its predecessor's mount namespace (`ip netns exec` makes one per process).
Napi::Value BpfMapGetFdById(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.map_id = info[0].As<Napi::Number>().Uint32Value();
  long fd = Sys(BPF_MAP_GET_FD_BY_ID, &attr);
  if (fd < 0) {
    Throw(env, "BPF_MAP_GET_FD_BY_ID " + std::to_string(attr.map_id), errno);
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(fd));
}

// bpfMapOp(op, fd, key, value|null, flags) → true, or false for ENOENT (lookup, delete, next key).
// op: 0 lookup (into value), 1 update (from value, flags BPF_ANY/NOEXIST/EXIST), 2 delete,
// 3 next key (key null: the first; the next one written into value).
Napi::Value BpfMapOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int op = info[0].As<Napi::Number>().Int32Value();
  int fd = info[1].As<Napi::Number>().Int32Value();
  uint8_t* key = nullptr;
  uint8_t* value = nullptr;
  size_t kn = 0;
  size_t vn = 0;
  if (!info[2].IsNull() && !Bytes(info[2], &key, &kn)) {
    Napi::TypeError::New(env, "key must be a Uint8Array or null").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!info[3].IsNull() && !Bytes(info[3], &value, &vn)) {
    Napi::TypeError::New(env, "value must be a Uint8Array or null").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint64_t flags = info[4].IsNumber() ? static_cast<uint64_t>(info[4].As<Napi::Number>().Int64Value()) : 0;
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.map_fd = static_cast<uint32_t>(fd);
  attr.key = reinterpret_cast<uint64_t>(key);
  int cmd;
  switch (op) {
    case 0:
      cmd = BPF_MAP_LOOKUP_ELEM;
      attr.value = reinterpret_cast<uint64_t>(value);
      break;
    case 1:
      cmd = BPF_MAP_UPDATE_ELEM;
      attr.value = reinterpret_cast<uint64_t>(value);
      attr.flags = flags;
      break;
    case 2:
      cmd = BPF_MAP_DELETE_ELEM;
      break;
    case 3:
      cmd = BPF_MAP_GET_NEXT_KEY;
      attr.next_key = reinterpret_cast<uint64_t>(value);
      break;
    default:
      Napi::TypeError::New(env, "unknown op").ThrowAsJavaScriptException();
      return env.Undefined();
  }
  if ((op != 3 && key == nullptr) || (op != 2 && value == nullptr)) {
    Napi::TypeError::New(env, "missing key or value").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (Sys(cmd, &attr) == 0) return Napi::Boolean::New(env, true);
  if (errno == ENOENT) return Napi::Boolean::New(env, false);
  Throw(env, "bpf map op " + std::to_string(op), errno);
  return env.Undefined();
}

}  // namespace onehost
