{
  "targets": [
    {
      "target_name": "onehost_kernel",
      "sources": ["native/nft-flows.cc", "native/nft-context.cc", "native/bpf-map.cc", "../tun/native/netns.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-O2", "-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "cflags_cc!": ["-fno-exceptions"],
      "libraries": ["-lnftables", "-lnftnl", "-lmnl"]
    }
  ]
}
