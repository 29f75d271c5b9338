// NftFlows: element operations on the fast path's nftables flow maps over one netlink socket, in
// batches (one transaction per batch), with libnftnl building and parsing the messages. The maps are
// `type ipv4_addr . ipv4_addr . inet_service : mark` (cluster address, client address, client port); a
// table of family ip6 has maps keyed on two hashes and the port (12 bytes too: fastpath compile.ts).
//
// An upsert is a DESTROYSETELEM then a NEWSETELEM of the key in one transaction: replacing an element
// whose data differs is refused by NEWSETELEM alone (EBUSY), and DESTROY (Linux 6.3) does not fail when
// the element is already gone (expired, or never there).
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/object.h>
#include <libnftnl/set.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <napi.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../../tun/native/netns.h"

namespace onehost {

// The kernel's message number (Linux 6.3); older headers do not name it.
constexpr uint16_t kMsgDestroySetElem = 30;
constexpr size_t kKeyLen = 12;
// IPv6 keys: two 16-byte addresses and the port in a 4-byte register
constexpr size_t kKeyLen6 = 36;
constexpr uint8_t kOpUpsert = 1;
constexpr uint8_t kOpRemove = 2;
constexpr size_t kBatchBytes = 1 << 20;

static void ThrowErrno(Napi::Env env, const std::string& what, int err) {
  const char* name = strerrorname_np(err);
  Napi::Error e = Napi::Error::New(env, what + " (" + (name ? name : "errno") + ": " + strerror(err) + ")");
  e.Set("code", Napi::String::New(env, "ENFTFLOWS"));
  e.Set("errno", Napi::Number::New(env, err));
  e.ThrowAsJavaScriptException();
}

static void Key(uint8_t* out, uint32_t vip, uint32_t client, uint32_t port) {
  uint32_t v = htonl(vip), c = htonl(client);
  uint16_t p = htons(static_cast<uint16_t>(port));
  memcpy(out, &v, 4);
  memcpy(out + 4, &c, 4);
  memcpy(out + 8, &p, 2);
  out[10] = 0;
  out[11] = 0;
}

struct Element {
  uint8_t key[kKeyLen6];
  uint32_t keyLen = kKeyLen;
  uint32_t mark = 0;
  uint64_t timeout = 0;
  uint64_t expiration = 0;
  uint64_t packets = 0;
  uint64_t bytes = 0;
};

class NftFlows : public Napi::ObjectWrap<NftFlows> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NftFlows",
                       {InstanceMethod("apply", &NftFlows::Apply), InstanceMethod("get", &NftFlows::Get),
                        InstanceMethod("get6", &NftFlows::Get6), InstanceMethod("dump", &NftFlows::Dump), InstanceMethod("counters", &NftFlows::Counters),
                        InstanceMethod("close", &NftFlows::Close)});
  }

  // new NftFlows(table, netns?, family?): a netlink socket (in netns, when named) for table `ip <table>`
  // (`ip6 <table>` with family 6).
  explicit NftFlows(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NftFlows>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) {
      Napi::TypeError::New(env, "NftFlows(table, netns?)").ThrowAsJavaScriptException();
      return;
    }
    table_ = info[0].As<Napi::String>();
    netns_ = info.Length() > 1 && info[1].IsString() ? std::string(info[1].As<Napi::String>()) : "";
    family_ = info.Length() > 2 && info[2].IsNumber() && info[2].As<Napi::Number>().Uint32Value() == 6 ? NFPROTO_IPV6
                                                                                                       : NFPROTO_IPV4;
    buf_.resize(kBatchBytes + MNL_SOCKET_BUFFER_SIZE);
    rx_.resize(MNL_SOCKET_BUFFER_SIZE * 16);
    int err = OpenSocket();
    if (err != 0) ThrowErrno(env, "cannot open a netfilter netlink socket in namespace '" + netns_ + "'", err);
  }

  ~NftFlows() override { CloseSocket(); }

 private:
  struct mnl_socket* nl_ = nullptr;
  uint32_t portid_ = 0;
  uint32_t seq_ = 1;
  std::string table_;
  std::string netns_;
  uint16_t family_ = NFPROTO_IPV4;
  std::vector<char> buf_;
  std::vector<char> rx_;

  // OpenSocket opens the netlink socket in the namespace; returns 0 or an errno.
  int OpenSocket() {
    NetnsScope scope(netns_);
    if (!scope.ok()) return scope.error();
    nl_ = mnl_socket_open(NETLINK_NETFILTER);
    if (nl_ == nullptr || mnl_socket_bind(nl_, 0, MNL_SOCKET_AUTOPID) < 0) {
      int err = errno;
      if (nl_ != nullptr) mnl_socket_close(nl_);
      nl_ = nullptr;
      return err;
    }
    // Dumps of large maps arrive in many datagrams; a bigger receive buffer keeps them from overrunning.
    int rcv = 8 << 20;
    setsockopt(mnl_socket_get_fd(nl_), SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv);
    portid_ = mnl_socket_get_portid(nl_);
    return 0;
  }

  void CloseSocket() {
    if (nl_ != nullptr) mnl_socket_close(nl_);
    nl_ = nullptr;
  }

  bool Open(Napi::Env env) {
    if (nl_ != nullptr) return true;
    Napi::Error::New(env, "NftFlows is closed").ThrowAsJavaScriptException();
    return false;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    CloseSocket();
    return info.Env().Undefined();
  }

  // Resync drops whatever a failed exchange left unread, so the next request reads only its own answers.
  void Resync() {
    while (recv(mnl_socket_get_fd(nl_), rx_.data(), rx_.size(), MSG_DONTWAIT) > 0) {
    }
  }

  // AddElem appends one element message (NEWSETELEM or DESTROYSETELEM) for `set` to the batch.
  void AddElem(struct mnl_nlmsg_batch* b, uint16_t type, const std::string& set, const uint8_t* key, bool withData,
               uint32_t mark, uint32_t timeoutMs) {
    struct nftnl_set* s = nftnl_set_alloc();
    nftnl_set_set_str(s, NFTNL_SET_TABLE, table_.c_str());
    nftnl_set_set_str(s, NFTNL_SET_NAME, set.c_str());
    struct nftnl_set_elem* e = nftnl_set_elem_alloc();
    nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, kKeyLen);
    if (withData) {
      nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, &mark, sizeof mark);
      if (timeoutMs > 0) nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_TIMEOUT, timeoutMs);
    }
    nftnl_set_elem_add(s, e);
    uint16_t flags = type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE | NLM_F_ACK : NLM_F_ACK;
    struct nlmsghdr* nlh = nftnl_nlmsg_build_hdr(static_cast<char*>(mnl_nlmsg_batch_current(b)), type, family_,
                                                 flags, seq_++);
    nftnl_set_elems_nlmsg_build_payload(nlh, s);
    nftnl_set_free(s);
    mnl_nlmsg_batch_next(b);
  }

  // Transact sends one batch (begin … end) and reads the acknowledgements; returns 0 or the first errno.
  int Transact(const Napi::Int32Array& setIdx,
               const Napi::Uint8Array& kinds, const Napi::Uint32Array& keys, const Napi::Uint32Array& marks,
               const Napi::Uint32Array& timeouts, const std::vector<std::string>& sets, size_t from, size_t to) {
    Resync();
    struct mnl_nlmsg_batch* b = mnl_nlmsg_batch_start(buf_.data(), kBatchBytes);
    uint32_t first = seq_;
    nftnl_batch_begin(static_cast<char*>(mnl_nlmsg_batch_current(b)), seq_++);
    mnl_nlmsg_batch_next(b);
    for (size_t i = from; i < to; i++) {
      const std::string& set = sets[static_cast<size_t>(setIdx[i])];
      uint8_t key[kKeyLen];
      Key(key, keys[3 * i], keys[3 * i + 1], keys[3 * i + 2]);
      AddElem(b, kMsgDestroySetElem, set, key, false, 0, 0);
      if (kinds[i] == kOpUpsert) AddElem(b, NFT_MSG_NEWSETELEM, set, key, true, marks[i], timeouts[i]);
    }
    uint32_t last = seq_;
    nftnl_batch_end(static_cast<char*>(mnl_nlmsg_batch_current(b)), seq_++);
    mnl_nlmsg_batch_next(b);
    ssize_t sent = mnl_socket_sendto(nl_, mnl_nlmsg_batch_head(b), mnl_nlmsg_batch_size(b));
    mnl_nlmsg_batch_stop(b);
    if (sent < 0) return errno;
    // One ack per element message (NLM_F_ACK): the kernel processes the whole batch, queues an ack or an
    // error for every message and delivers them at the end; any error aborts the transaction.
    int result = 0;
    size_t expected = 0;
    for (size_t i = from; i < to; i++) expected += kinds[i] == kOpUpsert ? 2 : 1;
    size_t acked = 0;
    while (acked < expected) {
      ssize_t n = mnl_socket_recvfrom(nl_, rx_.data(), rx_.size());
      if (n < 0) return errno;
      const struct nlmsghdr* nlh = reinterpret_cast<const struct nlmsghdr*>(rx_.data());
      int len = static_cast<int>(n);
      while (mnl_nlmsg_ok(nlh, len)) {
        if (nlh->nlmsg_type == NLMSG_ERROR && nlh->nlmsg_seq >= first && nlh->nlmsg_seq <= last) {
          const struct nlmsgerr* err = static_cast<const struct nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
          acked++;
          if (err->error != 0 && result == 0) result = -err->error;
        }
        nlh = mnl_nlmsg_next(nlh, &len);
      }
    }
    return result;
  }

  // apply(sets, count, setIdx, kinds, keys, marks, timeouts) → { applied, failed, errno }
  // keys holds (vip, client, port) per op, host order. The whole batch is one transaction; when the
  // kernel refuses it (a full map, a missing map), each op is tried on its own so the others still land.
  Napi::Value Apply(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Open(env)) return env.Undefined();
    if (info.Length() < 7 || !info[0].IsArray() || !info[1].IsNumber() || !info[2].IsTypedArray() ||
        !info[3].IsTypedArray() || !info[4].IsTypedArray() || !info[5].IsTypedArray() || !info[6].IsTypedArray()) {
      Napi::TypeError::New(env, "apply(sets, count, setIdx, kinds, keys, marks, timeouts)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Array setArr = info[0].As<Napi::Array>();
    std::vector<std::string> sets;
    for (uint32_t i = 0; i < setArr.Length(); i++) sets.push_back(setArr.Get(i).As<Napi::String>());
    size_t count = info[1].As<Napi::Number>().Uint32Value();
    auto setIdx = info[2].As<Napi::Int32Array>();
    auto kinds = info[3].As<Napi::Uint8Array>();
    auto keys = info[4].As<Napi::Uint32Array>();
    auto marks = info[5].As<Napi::Uint32Array>();
    auto timeouts = info[6].As<Napi::Uint32Array>();
    if (setIdx.ElementLength() < count || kinds.ElementLength() < count || keys.ElementLength() < 3 * count ||
        marks.ElementLength() < count || timeouts.ElementLength() < count) {
      Napi::RangeError::New(env, "apply: arrays shorter than count").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    for (size_t i = 0; i < count; i++) {
      if (setIdx[i] < 0 || static_cast<size_t>(setIdx[i]) >= sets.size() ||
          (kinds[i] != kOpUpsert && kinds[i] != kOpRemove)) {
        Napi::RangeError::New(env, "apply: bad set index or op").ThrowAsJavaScriptException();
        return env.Undefined();
      }
    }
    // Two element messages per op at most, ~120 bytes each: chunk well inside the batch buffer.
    constexpr size_t kChunk = 2048;
    size_t applied = 0, failed = 0;
    int firstErr = 0;
    for (size_t from = 0; from < count; from += kChunk) {
      size_t to = from + kChunk < count ? from + kChunk : count;
      int err = Transact(setIdx, kinds, keys, marks, timeouts, sets, from, to);
      if (err == 0) {
        applied += to - from;
        continue;
      }
      for (size_t i = from; i < to; i++) {
        int e1 = Transact(setIdx, kinds, keys, marks, timeouts, sets, i, i + 1);
        if (e1 == 0) {
          applied++;
        } else {
          failed++;
          if (firstErr == 0) firstErr = e1;
        }
      }
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set("applied", Napi::Number::New(env, static_cast<double>(applied)));
    r.Set("failed", Napi::Number::New(env, static_cast<double>(failed)));
    r.Set("errno", Napi::Number::New(env, firstErr));
    if (firstErr != 0) {
      const char* name = strerrorname_np(firstErr);
      r.Set("error", Napi::String::New(env, std::string(name ? name : "errno") + ": " + strerror(firstErr)));
    }
    return r;
  }

  struct Collector {
    std::vector<Element>* out;
    size_t limit;  // 0: no limit
  };

  static int ParseElem(struct nftnl_set_elem* e, void* data) {
    auto* c = static_cast<Collector*>(data);
    if (c->limit > 0 && c->out->size() >= c->limit) return 0;
    std::vector<Element>* out = c->out;
    Element el;
    uint32_t len = 0;
    const void* key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
    if (key == nullptr || (len != kKeyLen && len != kKeyLen6)) return 0;
    memcpy(el.key, key, len);
    el.keyLen = len;
    const void* d = nftnl_set_elem_get(e, NFTNL_SET_ELEM_DATA, &len);
    if (d != nullptr && len == 4) memcpy(&el.mark, d, 4);
    el.timeout = nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_TIMEOUT);
    el.expiration = nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_EXPIRATION);
    nftnl_set_elem_expr_foreach(
        e,
        [](struct nftnl_expr* x, void* p) -> int {
          auto* el2 = static_cast<Element*>(p);
          const char* name = nftnl_expr_get_str(x, NFTNL_EXPR_NAME);
          if (name != nullptr && strcmp(name, "counter") == 0) {
            el2->packets = nftnl_expr_get_u64(x, NFTNL_EXPR_CTR_PACKETS);
            el2->bytes = nftnl_expr_get_u64(x, NFTNL_EXPR_CTR_BYTES);
          }
          return 0;
        },
        &el);
    out->push_back(el);
    return 0;
  }

  static int OnElems(const struct nlmsghdr* nlh, void* data) {
    struct nftnl_set* s = nftnl_set_alloc();
    if (nftnl_set_elems_nlmsg_parse(nlh, s) >= 0) {
      struct nftnl_set_elems_iter* it = nftnl_set_elems_iter_create(s);
      for (struct nftnl_set_elem* e = nftnl_set_elems_iter_next(it); e != nullptr; e = nftnl_set_elems_iter_next(it))
        ParseElem(e, data);
      nftnl_set_elems_iter_destroy(it);
    }
    nftnl_set_free(s);
    return MNL_CB_OK;
  }

  // Query sends a GETSETELEM (a dump, or one key) and collects the elements; returns 0 or an errno.
  int Query(const std::string& set, const uint8_t* key, size_t keyLen, std::vector<Element>* out, size_t limit) {
    Resync();
    struct nftnl_set* s = nftnl_set_alloc();
    nftnl_set_set_str(s, NFTNL_SET_TABLE, table_.c_str());
    nftnl_set_set_str(s, NFTNL_SET_NAME, set.c_str());
    uint32_t seq = seq_++;
    uint16_t flags = key == nullptr ? NLM_F_DUMP : NLM_F_ACK;
    if (key != nullptr) {
      struct nftnl_set_elem* e = nftnl_set_elem_alloc();
      nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, keyLen);
      nftnl_set_elem_add(s, e);
    }
    struct nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf_.data(), NFT_MSG_GETSETELEM, family_, flags, seq);
    nftnl_set_elems_nlmsg_build_payload(nlh, s);
    nftnl_set_free(s);
    if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0) return errno;
    Collector c{out, limit};
    // a single get ends with its ack (MNL_CB_STOP)
    for (;;) {
      ssize_t n = mnl_socket_recvfrom(nl_, rx_.data(), rx_.size());
      if (n < 0) return errno;
      int r = mnl_cb_run(rx_.data(), static_cast<size_t>(n), seq, portid_, OnElems, &c);
      if (r < 0) return errno;
      if (r == MNL_CB_STOP) break;
    }
    return 0;
  }

  static Napi::Object ToJs(Napi::Env env, const Element& el) {
    Napi::Object o = Napi::Object::New(env);
    uint32_t v = 0, c = 0;
    uint16_t p;
    if (el.keyLen == kKeyLen6) {
      // IPv6: the addresses as text (RFC 5952), vip and client 0
      char a[INET6_ADDRSTRLEN];
      inet_ntop(AF_INET6, el.key, a, sizeof a);
      o.Set("vip6", Napi::String::New(env, a));
      inet_ntop(AF_INET6, el.key + 16, a, sizeof a);
      o.Set("client6", Napi::String::New(env, a));
      memcpy(&p, el.key + 32, 2);
    } else {
      memcpy(&v, el.key, 4);
      memcpy(&c, el.key + 4, 4);
      memcpy(&p, el.key + 8, 2);
    }
    o.Set("vip", Napi::Number::New(env, ntohl(v)));
    o.Set("client", Napi::Number::New(env, ntohl(c)));
    o.Set("port", Napi::Number::New(env, ntohs(p)));
    o.Set("mark", Napi::Number::New(env, el.mark));
    o.Set("timeoutMs", Napi::Number::New(env, static_cast<double>(el.timeout)));
    o.Set("expiresMs", Napi::Number::New(env, static_cast<double>(el.expiration)));
    o.Set("packets", Napi::Number::New(env, static_cast<double>(el.packets)));
    o.Set("bytes", Napi::Number::New(env, static_cast<double>(el.bytes)));
    return o;
  }

  // get(set, vip, client, port) → element or null
  Napi::Value Get(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Open(env)) return env.Undefined();
    if (info.Length() < 4 || !info[0].IsString()) {
      Napi::TypeError::New(env, "get(set, vip, client, port)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    uint8_t key[kKeyLen];
    Key(key, info[1].As<Napi::Number>().Uint32Value(), info[2].As<Napi::Number>().Uint32Value(),
        info[3].As<Napi::Number>().Uint32Value());
    std::vector<Element> out;
    int err = Query(info[0].As<Napi::String>(), key, kKeyLen, &out, 0);
    if (err == ENOENT) return env.Null();
    if (err != 0) {
      ThrowErrno(env, "get element of " + std::string(info[0].As<Napi::String>()), err);
      return env.Undefined();
    }
    return out.empty() ? env.Null() : static_cast<Napi::Value>(ToJs(env, out[0]));
  }

  // get6(set, key) → element or null: key is the element's key as the kernel holds it, 12 or 36 bytes
  Napi::Value Get6(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Open(env)) return env.Undefined();
    size_t len = info.Length() > 1 && info[1].IsTypedArray() ? info[1].As<Napi::Uint8Array>().ByteLength() : 0;
    if (!info[0].IsString() || (len != kKeyLen && len != kKeyLen6)) {
      Napi::TypeError::New(env, "get6(set, key: 12 or 36 bytes)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    auto k = info[1].As<Napi::Uint8Array>();
    std::vector<Element> out;
    int err = Query(info[0].As<Napi::String>(), k.Data(), len, &out, 0);
    if (err == ENOENT) return env.Null();
    if (err != 0) {
      ThrowErrno(env, "get element of " + std::string(info[0].As<Napi::String>()), err);
      return env.Undefined();
    }
    return out.empty() ? env.Null() : static_cast<Napi::Value>(ToJs(env, out[0]));
  }
  // dump(set, limit?) → Promise<elements> (all, or the first `limit`), on a worker thread
  Napi::Value Dump(const Napi::CallbackInfo& info);
  // counters() → Promise<{ name: [packets, bytes] }>: the table's named counters, on a worker thread
  Napi::Value Counters(const Napi::CallbackInfo& info);

  friend class DumpWorker;
};

// DumpWorker dumps one map on a libuv worker thread through a socket of its own (opened in the
// namespace there: setns is per thread), so a large map never stalls the event loop. The kernel walks a
// map from its start again for every part of a dump, so n elements cost about n²: past `limit` the dump
// is abandoned with its socket.
class DumpWorker : public Napi::AsyncWorker {
 public:
  DumpWorker(Napi::Env env, std::string netns, std::string table, std::string set, size_t limit, uint16_t family)
      : Napi::AsyncWorker(env),
        family_(family),
        netns_(std::move(netns)),
        table_(std::move(table)),
        set_(std::move(set)),
        limit_(limit),
        deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    NetnsScope scope(netns_);
    if (!scope.ok()) {
      err_ = scope.error();
      return;
    }
    struct mnl_socket* nl = mnl_socket_open(NETLINK_NETFILTER);
    if (nl == nullptr || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
      err_ = errno;
      if (nl != nullptr) mnl_socket_close(nl);
      return;
    }
    int rcv = 8 << 20;
    setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv);
    std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE * 16);
    struct nftnl_set* s = nftnl_set_alloc();
    nftnl_set_set_str(s, NFTNL_SET_TABLE, table_.c_str());
    nftnl_set_set_str(s, NFTNL_SET_NAME, set_.c_str());
    struct nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETSETELEM, family_, NLM_F_DUMP, 1);
    nftnl_set_elems_nlmsg_build_payload(nlh, s);
    nftnl_set_free(s);
    uint32_t portid = mnl_socket_get_portid(nl);
    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
      err_ = errno;
    } else {
      NftFlows::Collector c{&out_, limit_};
      for (;;) {
        ssize_t n = mnl_socket_recvfrom(nl, buf.data(), buf.size());
        if (n < 0) {
          err_ = errno;
          break;
        }
        int r = mnl_cb_run(buf.data(), static_cast<size_t>(n), 1, portid, NftFlows::OnElems, &c);
        if (r < 0) {
          err_ = errno;
          break;
        }
        if (r == MNL_CB_STOP || (limit_ > 0 && out_.size() >= limit_)) break;
      }
    }
    mnl_socket_close(nl);
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (err_ != 0) {
      const char* name = strerrorname_np(err_);
      Napi::Error e = Napi::Error::New(
          env, "dump of " + set_ + " (" + (name ? name : "errno") + ": " + strerror(err_) + ")");
      e.Set("code", Napi::String::New(env, "ENFTFLOWS"));
      e.Set("errno", Napi::Number::New(env, err_));
      deferred_.Reject(e.Value());
      return;
    }
    size_t n = limit_ > 0 && out_.size() > limit_ ? limit_ : out_.size();
    Napi::Array arr = Napi::Array::New(env, n);
    for (size_t i = 0; i < n; i++) arr.Set(static_cast<uint32_t>(i), NftFlows::ToJs(env, out_[i]));
    deferred_.Resolve(arr);
  }

 private:
  uint16_t family_;
  std::string netns_, table_, set_;
  size_t limit_;
  Napi::Promise::Deferred deferred_;
  std::vector<Element> out_;
  int err_ = 0;
};

Napi::Value NftFlows::Dump(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Open(env)) return env.Undefined();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "dump(set, limit?)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  size_t limit = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Uint32Value() : 0;
  auto* w = new DumpWorker(env, netns_, table_, info[0].As<Napi::String>(), limit, family_);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// CountersWorker reads a table's named counters (a GETOBJ dump of its counter objects) on a worker thread
// through a socket of its own: unlike `nft list counters`, which fetches every set's elements too.
class CountersWorker : public Napi::AsyncWorker {
 public:
  CountersWorker(Napi::Env env, std::string netns, std::string table, uint16_t family)
      : Napi::AsyncWorker(env),
        family_(family),
        netns_(std::move(netns)),
        table_(std::move(table)),
        deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  struct Counter {
    std::string name;
    uint64_t packets, bytes;
  };

  static int OnObj(const struct nlmsghdr* nlh, void* data) {
    auto* out = static_cast<std::vector<Counter>*>(data);
    struct nftnl_obj* o = nftnl_obj_alloc();
    if (nftnl_obj_nlmsg_parse(nlh, o) >= 0) {
      const char* name = nftnl_obj_get_str(o, NFTNL_OBJ_NAME);
      if (name != nullptr)
        out->push_back({name, nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_PKTS), nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_BYTES)});
    }
    nftnl_obj_free(o);
    return MNL_CB_OK;
  }

  void Execute() override {
    NetnsScope scope(netns_);
    if (!scope.ok()) {
      err_ = scope.error();
      return;
    }
    struct mnl_socket* nl = mnl_socket_open(NETLINK_NETFILTER);
    if (nl == nullptr || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
      err_ = errno;
      if (nl != nullptr) mnl_socket_close(nl);
      return;
    }
    std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE * 4);
    struct nftnl_obj* o = nftnl_obj_alloc();
    nftnl_obj_set_str(o, NFTNL_OBJ_TABLE, table_.c_str());
    nftnl_obj_set_u32(o, NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
    struct nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETOBJ, family_, NLM_F_DUMP, 1);
    nftnl_obj_nlmsg_build_payload(nlh, o);
    nftnl_obj_free(o);
    uint32_t portid = mnl_socket_get_portid(nl);
    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
      err_ = errno;
    } else {
      for (;;) {
        ssize_t n = mnl_socket_recvfrom(nl, buf.data(), buf.size());
        if (n < 0) {
          err_ = errno;
          break;
        }
        int r = mnl_cb_run(buf.data(), static_cast<size_t>(n), 1, portid, OnObj, &out_);
        if (r < 0) {
          err_ = errno;
          break;
        }
        if (r == MNL_CB_STOP) break;
      }
    }
    mnl_socket_close(nl);
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (err_ != 0) {
      const char* name = strerrorname_np(err_);
      Napi::Error e = Napi::Error::New(
          env, "counters of " + table_ + " (" + (name ? name : "errno") + ": " + strerror(err_) + ")");
      e.Set("code", Napi::String::New(env, "ENFTFLOWS"));
      e.Set("errno", Napi::Number::New(env, err_));
      deferred_.Reject(e.Value());
      return;
    }
    Napi::Object r = Napi::Object::New(env);
    for (const Counter& c : out_) {
      Napi::Array pair = Napi::Array::New(env, 2);
      pair.Set(0u, Napi::Number::New(env, static_cast<double>(c.packets)));
      pair.Set(1u, Napi::Number::New(env, static_cast<double>(c.bytes)));
      r.Set(c.name, pair);
    }
    deferred_.Resolve(r);
  }

 private:
  uint16_t family_;
  std::string netns_, table_;
  Napi::Promise::Deferred deferred_;
  std::vector<Counter> out_;
  int err_ = 0;
};

Napi::Value NftFlows::Counters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Open(env)) return env.Undefined();
  auto* w = new CountersWorker(env, netns_, table_, family_);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Function DefineNftContext(Napi::Env env);
Napi::Value BpfObjGet(const Napi::CallbackInfo& info);
Napi::Value BpfMapOp(const Napi::CallbackInfo& info);
Napi::Value BpfMapGetFdById(const Napi::CallbackInfo& info);

}  // namespace onehost

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  exports.Set("NftFlows", onehost::NftFlows::Define(env));
  exports.Set("NftContext", onehost::DefineNftContext(env));
  exports.Set("bpfObjGet", Napi::Function::New(env, onehost::BpfObjGet, "bpfObjGet"));
  exports.Set("bpfMapGetFdById", Napi::Function::New(env, onehost::BpfMapGetFdById, "bpfMapGetFdById"));
  exports.Set("bpfMapOp", Napi::Function::New(env, onehost::BpfMapOp, "bpfMapOp"));
  return exports;
}

NODE_API_MODULE(onehost_kernel, InitModule)
