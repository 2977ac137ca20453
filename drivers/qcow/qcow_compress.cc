#include "drivers/qcow/qcow_compress.h"

#include <zlib.h>

#include <string>

#include "coroutine/coroutine.h"
#include "coroutine/thread_pool.h"

namespace coblock::qcow {
namespace {

// QEMU's qcow inflates and deflates with a 4 KiB window and no zlib header.
constexpr int kWindowBits = -12;
constexpr int kMemLevel = 9;

}  // namespace

Status decompress_cluster(std::span<const std::byte> in, std::span<std::byte> out) {
    z_stream strm{};
    if (inflateInit2(&strm, kWindowBits) != Z_OK)
        return make_error(ErrorKind::kInternal, "qcow: inflateInit2 failed");
    strm.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
    strm.avail_in = static_cast<uInt>(in.size());
    strm.next_out = reinterpret_cast<Bytef*>(out.data());
    strm.avail_out = static_cast<uInt>(out.size());
    const int ret = inflate(&strm, Z_FINISH);
    const uint64_t produced = out.size() - strm.avail_out;
    inflateEnd(&strm);
    if ((ret != Z_STREAM_END && ret != Z_BUF_ERROR) || produced != out.size())
        return Error{ErrorKind::kCorrupt, EIO,
                     "qcow: compressed cluster of " + std::to_string(in.size()) +
                         " bytes inflates to " + std::to_string(produced) + " bytes, not " +
                         std::to_string(out.size()) + " (zlib status " + std::to_string(ret) + ")",
                     std::nullopt};
    return {};
}

std::optional<std::vector<std::byte>> compress_cluster(std::span<const std::byte> in) {
    z_stream strm{};
    if (deflateInit2(&strm, Z_DEFAULT_COMPRESSION, Z_DEFLATED, kWindowBits, kMemLevel,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return std::nullopt;
    std::vector<std::byte> out(in.size());
    strm.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
    strm.avail_in = static_cast<uInt>(in.size());
    strm.next_out = reinterpret_cast<Bytef*>(out.data());
    strm.avail_out = static_cast<uInt>(out.size());
    const int ret = deflate(&strm, Z_FINISH);
    const size_t produced = out.size() - strm.avail_out;
    deflateEnd(&strm);
    // Like QEMU: a stream that did not finish, or that saves nothing, is
    // written uncompressed instead.
    if (ret != Z_STREAM_END || produced >= in.size()) return std::nullopt;
    out.resize(produced);
    return out;
}

std::optional<std::vector<std::byte>> co_compress_cluster(std::span<const std::byte> in) {
    if (!in_coroutine()) return compress_cluster(in);
    return co_run([&] { return compress_cluster(in); });
}

}  // namespace coblock::qcow
