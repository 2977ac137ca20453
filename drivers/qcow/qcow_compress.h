// Compressed clusters of qcow version 1 (specs/qcow-v1.md §6): raw deflate
// with a 4 KiB window, exactly as QEMU's qcow driver writes and reads them.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <vector>

#include "formats/result.h"

namespace coblock::qcow {

// Inflates `in` into `out`, which must be filled exactly (one cluster).
// QEMU accepts Z_STREAM_END and Z_BUF_ERROR as the final status when the
// output is full; anything else (or a short output) is a corrupt error.
Status decompress_cluster(std::span<const std::byte> in, std::span<std::byte> out);

// Deflates one cluster as QEMU does (default level, window bits -12,
// memLevel 9). nullopt when the result would not be smaller than the
// cluster: QEMU then writes the cluster uncompressed.
std::optional<std::vector<std::byte>> compress_cluster(std::span<const std::byte> in);

// The same on a worker of the loop's thread pool (QEMU's qcow compresses on
// the loop; coblock, like qcow2, overlaps clusters on several threads).
// `in` must stay valid until it returns.
std::optional<std::vector<std::byte>> co_compress_cluster(std::span<const std::byte> in);

}  // namespace coblock::qcow
