// TCP repair (Linux ≥ 3.5, CAP_NET_ADMIN): freeze an accepted TCP socket and read what another host needs
// to continue the connection (docs/splice.md). Closing a socket in repair mode sends nothing.
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "common.h"

namespace onehost {

namespace {
// From linux/tcp.h (glibc's netinet/tcp.h may lack some).
constexpr int kTcpRepair = 19;
constexpr int kTcpRepairQueue = 20;
constexpr int kTcpQueueSeq = 21;
constexpr int kTcpTimestamp = 24;
constexpr int kRecvQueue = 1;
constexpr int kSendQueue = 2;
}  // namespace

// tcpRepairDetach(fd) → { sendQueued, recvQueued, sndNxt, rcvNxt, tsNow, options, sndWscale, rcvWscale,
// sndMss, rcvMss, recvData } with the socket left in repair mode (the caller closes it), or, when bytes are still
// unacknowledged (sendQueued > 0), the same object with the socket left as it was (try again later).
Napi::Value TcpRepairDetach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    ThrowCode(env, "TUN_BAD_ARGUMENT", "fd must be a number");
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  int outq = 0;
  int inq = 0;
  if (ioctl(fd, SIOCOUTQ, &outq) < 0 || ioctl(fd, SIOCINQ, &inq) < 0) {
    ThrowCode(env, "TUN_CONFIG", std::string("ioctl SIOCOUTQ/SIOCINQ: ") + strerror(errno), errno);
    return env.Undefined();
  }
  struct tcp_info ti;
  socklen_t tl = sizeof(ti);
  memset(&ti, 0, sizeof(ti));
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) < 0) {
    ThrowCode(env, "TUN_CONFIG", std::string("TCP_INFO: ") + strerror(errno), errno);
    return env.Undefined();
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("sendQueued", outq);
  r.Set("recvQueued", inq);
  r.Set("options", static_cast<uint32_t>(ti.tcpi_options));
  r.Set("sndWscale", static_cast<uint32_t>(ti.tcpi_snd_wscale));
  r.Set("rcvWscale", static_cast<uint32_t>(ti.tcpi_rcv_wscale));
  r.Set("sndMss", ti.tcpi_snd_mss);
  r.Set("rcvMss", ti.tcpi_rcv_mss);
  r.Set("state", static_cast<uint32_t>(ti.tcpi_state));
  if (outq > 0) return r;
  int on = 1;
  if (setsockopt(fd, IPPROTO_TCP, kTcpRepair, &on, sizeof(on)) < 0) {
    ThrowCode(env, errno == EPERM ? "TUN_PERMISSION" : "TUN_CONFIG",
              std::string("TCP_REPAIR: ") + strerror(errno), errno);
    return env.Undefined();
  }
  uint32_t seq[2] = {0, 0};
  int queues[2] = {kSendQueue, kRecvQueue};
  for (int i = 0; i < 2; i++) {
    socklen_t sl = sizeof(seq[i]);
    if (setsockopt(fd, IPPROTO_TCP, kTcpRepairQueue, &queues[i], sizeof(int)) < 0 ||
        getsockopt(fd, IPPROTO_TCP, kTcpQueueSeq, &seq[i], &sl) < 0) {
      int e = errno;
      int off = 0;
      setsockopt(fd, IPPROTO_TCP, kTcpRepair, &off, sizeof(off));
      ThrowCode(env, "TUN_CONFIG", std::string("TCP_QUEUE_SEQ: ") + strerror(e), e);
      return env.Undefined();
    }
  }
  uint32_t ts = 0;
  socklen_t sl = sizeof(ts);
  if (getsockopt(fd, IPPROTO_TCP, kTcpTimestamp, &ts, &sl) < 0) ts = 0;
  if (inq > 0) {
    // Bytes the application has not read: in repair mode the receive queue is read with MSG_PEEK.
    Napi::Buffer<uint8_t> data = Napi::Buffer<uint8_t>::New(env, static_cast<size_t>(inq));
    int q = kRecvQueue;
    setsockopt(fd, IPPROTO_TCP, kTcpRepairQueue, &q, sizeof(q));
    ssize_t n = recv(fd, data.Data(), static_cast<size_t>(inq), MSG_PEEK | MSG_DONTWAIT);
    r.Set("recvData", n > 0 ? Napi::Buffer<uint8_t>::Copy(env, data.Data(), static_cast<size_t>(n)) : Napi::Buffer<uint8_t>::New(env, 0));
  }
  r.Set("sndNxt", seq[0]);
  r.Set("rcvNxt", seq[1]);
  r.Set("tsNow", ts);
  return r;
}

// setReceiveBuffer(fd, bytes) → the SO_RCVBUF the kernel granted (it doubles the request). On a listening
// socket, accepted connections (SYN cookies included) inherit it and their window stays within it.
Napi::Value SetReceiveBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    ThrowCode(env, "TUN_BAD_ARGUMENT", "fd and bytes must be numbers");
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  int bytes = info[1].As<Napi::Number>().Int32Value();
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes)) < 0) {
    ThrowCode(env, "TUN_CONFIG", std::string("SO_RCVBUF: ") + strerror(errno), errno);
    return env.Undefined();
  }
  int got = 0;
  socklen_t gl = sizeof(got);
  getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &gl);
  return Napi::Number::New(env, got);
}

}  // namespace onehost
