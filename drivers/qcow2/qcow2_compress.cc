// Compressed cluster codecs (qcow2-notes.md §11.6, §11.7): raw deflate with
// a 4 KiB window (what QEMU's inflater accepts) and one zstd frame per
// cluster.
#include <zlib.h>
#include <zstd.h>

#include "drivers/qcow2/qcow2_node.h"
#include "formats/qcow2/constants.h"

namespace coblock::qcow2drv {

namespace {

Status inflate_cluster(const std::byte* src, size_t src_len, std::byte* dst, size_t dst_len) {
    z_stream strm{};
    // A reader may use any window >= 4 KiB; the largest accepts every stream.
    if (inflateInit2(&strm, -15) != Z_OK) return make_error(ErrorKind::kInternal, "inflateInit2");
    strm.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(src));
    strm.avail_in = static_cast<uInt>(src_len);
    strm.next_out = reinterpret_cast<Bytef*>(dst);
    strm.avail_out = static_cast<uInt>(dst_len);
    int ret = inflate(&strm, Z_FINISH);
    const bool full = strm.avail_out == 0;
    inflateEnd(&strm);
    if ((ret == Z_STREAM_END || ret == Z_BUF_ERROR) && full) return {};
    return corrupt_error("qcow2: compressed cluster does not inflate to a full cluster (zlib " +
                         std::to_string(ret) + ")");
}

Status zstd_decompress_cluster(const std::byte* src, size_t src_len, std::byte* dst,
                               size_t dst_len) {
    ZSTD_DCtx* dctx = ZSTD_createDCtx();
    if (!dctx) return make_error(ErrorKind::kInternal, "ZSTD_createDCtx");
    ZSTD_inBuffer in{src, src_len, 0};
    ZSTD_outBuffer out{dst, dst_len, 0};
    Status status;
    while (out.pos < out.size) {
        size_t last_in = in.pos, last_out = out.pos;
        size_t ret = ZSTD_decompressStream(dctx, &out, &in);
        if (ZSTD_isError(ret)) {
            status = corrupt_error(std::string("qcow2: zstd compressed cluster: ") +
                                   ZSTD_getErrorName(ret));
            break;
        }
        // Frame finished but the output is short: a new frame may follow
        // (QEMU accepts concatenated frames); stop when nothing moves.
        if (in.pos == last_in && out.pos == last_out) {
            status = corrupt_error("qcow2: zstd compressed cluster is shorter than a cluster");
            break;
        }
    }
    ZSTD_freeDCtx(dctx);
    return status;
}

}  // namespace

Status decompress_cluster(uint8_t type, const std::byte* src, size_t src_len, std::byte* dst,
                          size_t dst_len) {
    if (type == qcow2::kCompressionZstd) return zstd_decompress_cluster(src, src_len, dst, dst_len);
    return inflate_cluster(src, src_len, dst, dst_len);
}

Result<std::optional<std::vector<std::byte>>> compress_cluster(uint8_t type, const std::byte* src,
                                                               size_t src_len, size_t max_len) {
    std::vector<std::byte> out(max_len);
    if (type == qcow2::kCompressionZstd) {
        ZSTD_CCtx* cctx = ZSTD_createCCtx();
        if (!cctx) return make_error(ErrorKind::kInternal, "ZSTD_createCCtx");
        ZSTD_inBuffer in{src, src_len, 0};
        ZSTD_outBuffer o{out.data(), out.size(), 0};
        size_t ret = ZSTD_compressStream2(cctx, &o, &in, ZSTD_e_end);
        ZSTD_freeCCtx(cctx);
        if (ZSTD_isError(ret) || ret != 0) return std::optional<std::vector<std::byte>>{};
        out.resize(o.pos);
        return std::optional<std::vector<std::byte>>(std::move(out));
    }
    z_stream strm{};
    // QEMU's parameters: its 4 KiB-window inflater must accept our streams.
    if (deflateInit2(&strm, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return make_error(ErrorKind::kInternal, "deflateInit2");
    strm.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(src));
    strm.avail_in = static_cast<uInt>(src_len);
    strm.next_out = reinterpret_cast<Bytef*>(out.data());
    strm.avail_out = static_cast<uInt>(out.size());
    int ret = deflate(&strm, Z_FINISH);
    size_t produced = out.size() - strm.avail_out;
    deflateEnd(&strm);
    if (ret != Z_STREAM_END) return std::optional<std::vector<std::byte>>{};
    out.resize(produced);
    return std::optional<std::vector<std::byte>>(std::move(out));
}

}  // namespace coblock::qcow2drv
