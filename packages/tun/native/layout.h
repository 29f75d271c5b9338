// The packet metadata layout shared with JS (see README "Batches").
#pragma once

#include <cstdint>

namespace onehost {

// Four int32 per packet: [0] byte offset in the arena, [1] length, [2] flags (0 today; virtio-net
// header bits when IFF_VNET_HDR arrives), [3] segment size (0 today; the GSO size of a super-packet).
constexpr uint32_t kMetaStride = 4;

}  // namespace onehost
