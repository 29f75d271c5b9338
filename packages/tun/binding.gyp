{
  "targets": [
    {
      "target_name": "onehost_tun",
      "sources": [
        "native/addon.cc",
        "native/bench.cc",
        "native/icmp6.cc",
        "native/netns.cc",
        "native/send-core.cc",
        "native/sender.cc",
        "native/tcp-repair.cc",
        "native/tun-open.cc",
        "native/tun-queue.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-O2", "-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "cflags_cc!": ["-fno-exceptions"]
    }
  ]
}
