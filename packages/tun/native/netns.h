// Entering a network namespace for the duration of a scope, on the calling thread only.
#pragma once

#include <string>

namespace onehost {

// NetnsScope moves the calling thread into a named network namespace (a name under /var/run/netns, or a
// path such as /proc/<pid>/ns/net) and back when destroyed. Devices and sockets created meanwhile belong
// to that namespace for good. An empty name does nothing. Check ok() / error() after construction.
class NetnsScope {
 public:
  explicit NetnsScope(const std::string& name);
  ~NetnsScope();
  NetnsScope(const NetnsScope&) = delete;
  NetnsScope& operator=(const NetnsScope&) = delete;
  bool ok() const { return errno_ == 0; }
  int error() const { return errno_; }

 private:
  int orig_ = -1;
  int errno_ = 0;
};

}  // namespace onehost
