#include "netns.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace onehost {

NetnsScope::NetnsScope(const std::string& name) {
  if (name.empty()) return;
  std::string path = name.find('/') == std::string::npos ? "/var/run/netns/" + name : name;
  int target = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    errno_ = errno;
    return;
  }
  orig_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (orig_ < 0) {
    errno_ = errno;
    close(target);
    return;
  }
  if (setns(target, CLONE_NEWNET) != 0) {
    errno_ = errno;
    close(target);
    close(orig_);
    orig_ = -1;
    return;
  }
  close(target);
}

NetnsScope::~NetnsScope() {
  if (orig_ < 0) return;
  // Going back to the namespace we came from cannot fail short of kernel trouble; staying in the wrong
  // namespace would silently misdirect every later socket, so stop instead.
  if (setns(orig_, CLONE_NEWNET) != 0) {
    perror("onehost_tun: cannot return to the original network namespace");
    abort();
  }
  close(orig_);
}

}  // namespace onehost
