// Compressed clusters (qcow2-notes.md §11): the codecs (raw deflate with a
// 4 KiB window, one zstd frame per cluster) and the compressed write path,
// which deflates on the loop's thread pool (QEMU's qcow2_co_compress) and
// packs the result byte-tight into shared host clusters (§11.5).
#include <zlib.h>
#include <zstd.h>

#include <algorithm>

#include "block/io.h"
#include "coroutine/thread_pool.h"
#include "drivers/qcow2/qcow2_node.h"
#include "formats/qcow2/constants.h"

namespace coblock::qcow2drv {

using qcow2::hex_string;

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

// Compression contexts cost hundreds of KiB to set up (deflate's window and
// hash chains, zstd's tables); each worker thread keeps one of each and
// resets it per cluster, which produces the same streams as a fresh one.
struct DeflateContext {
    z_stream strm{};
    bool ready = false;
    ~DeflateContext() {
        if (ready) deflateEnd(&strm);
    }
    z_stream* get() {
        if (ready) {
            if (deflateReset(&strm) == Z_OK) return &strm;
            deflateEnd(&strm);
            ready = false;
        }
        strm = z_stream{};
        // QEMU's parameters: its 4 KiB-window inflater must accept our streams.
        if (deflateInit2(&strm, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) !=
            Z_OK)
            return nullptr;
        ready = true;
        return &strm;
    }
};

struct ZstdContext {
    ZSTD_CCtx* cctx = nullptr;
    ~ZstdContext() { ZSTD_freeCCtx(cctx); }
    ZSTD_CCtx* get() {
        if (cctx) {
            if (!ZSTD_isError(ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters)))
                return cctx;
            ZSTD_freeCCtx(cctx);
        }
        cctx = ZSTD_createCCtx();
        return cctx;
    }
};

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
        thread_local ZstdContext context;
        ZSTD_CCtx* cctx = context.get();
        if (!cctx) return make_error(ErrorKind::kInternal, "ZSTD_createCCtx");
        ZSTD_inBuffer in{src, src_len, 0};
        ZSTD_outBuffer o{out.data(), out.size(), 0};
        // One call with "end": the frame header carries the content size, as
        // in QEMU's frames. A frame that does not fit leaves ret != 0.
        size_t ret = ZSTD_compressStream2(cctx, &o, &in, ZSTD_e_end);
        if (ZSTD_isError(ret) || ret != 0) return std::optional<std::vector<std::byte>>{};
        out.resize(o.pos);
        return std::optional<std::vector<std::byte>>(std::move(out));
    }
    thread_local DeflateContext context;
    z_stream* strm = context.get();
    if (!strm) return make_error(ErrorKind::kInternal, "deflateInit2");
    strm->next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(src));
    strm->avail_in = static_cast<uInt>(src_len);
    strm->next_out = reinterpret_cast<Bytef*>(out.data());
    strm->avail_out = static_cast<uInt>(out.size());
    int ret = deflate(strm, Z_FINISH);
    size_t produced = out.size() - strm->avail_out;
    if (ret != Z_STREAM_END) return std::optional<std::vector<std::byte>>{};
    out.resize(produced);
    return std::optional<std::vector<std::byte>>(std::move(out));
}

Result<std::optional<std::vector<std::byte>>> co_compress_cluster(uint8_t type,
                                                                  const std::byte* src,
                                                                  size_t src_len, size_t max_len) {
    if (!in_coroutine()) return compress_cluster(type, src, src_len, max_len);
    return co_run([&] { return compress_cluster(type, src, src_len, max_len); });
}

// QEMU's qcow2_co_pwritev_compressed_task: compress off the loop, then under
// the lock check that the cluster is unallocated and take bytes for the
// data; write them without the lock; link the L2 entry last, so a crash
// before it leaves a leak, never an entry pointing at missing data.
//
// Compressed writes allocate in the order they arrived, whatever order their
// compression ends in: a writer issuing clusters in guest order (qemu-img
// convert -c) gets QEMU's layout while the clusters compress in parallel.
Status Qcow2Node::write_compressed(uint64_t offset, uint64_t bytes, IoVector& qiov) {
    const uint64_t cs = geom_.cluster_size();
    if (bytes == 0) return extend_file_to_sector();
    if (!geom_.is_cluster_aligned(offset) ||
        (!geom_.is_cluster_aligned(bytes) && offset + bytes != size()))
        return invalid_argument("qcow2: compressed writes must cover whole clusters");
    if (bytes > cs) {
        // Several clusters: compressed one by one, as QEMU's
        // qcow2_co_pwritev_compressed_part splits them.
        for (uint64_t pos = 0; pos < bytes; pos += cs) {
            const uint64_t n = std::min(cs, bytes - pos);
            IoVector part = qiov.slice(pos, n);
            TRY(write_compressed(offset + pos, n, part));
        }
        return {};
    }
    const uint64_t ticket = compressed_order_.take_ticket();
    std::vector<std::byte> buf(cs);
    qiov.copy_to(0, buf.data(), bytes);
    Result<std::optional<std::vector<std::byte>>> compressed =
        co_compress_cluster(image_.header.compression_type, buf.data(), cs, cs - 1);
    // Our turn to allocate; it passes on once our bytes are taken, or on
    // any early return.
    CoSequencer::Turn turn = compressed_order_.wait_turn(ticket);
    if (!compressed) return compressed.error();
    std::optional<std::vector<std::byte>>& packed = *compressed;
    if (!packed) {
        // Does not compress: an ordinary allocating write of the cluster.
        IoVector whole(buf.data(), bytes);
        return co_pwritev(offset, bytes, whole, 0);
    }
    AllocRangeGuard alloc(alloc_ranges_, offset, offset + cs);
    uint64_t l2_offset = 0, host = 0;
    const uint64_t len = packed->size();
    {
        CoMutexGuard guard(lock_);
        wait_for_old_reads();
        ASSIGN_OR_RETURN(MetaCache::Entry * table, get_l2_for_write(offset, &l2_offset));
        ASSIGN_OR_RETURN(
            qcow2::RawL2Entry raw,
            qcow2::read_l2_entry(table->data, l2_slice_index(offset), geom_.extended_l2));
        const qcow2::L2Entry e = qcow2::decode_l2_entry(raw.word, raw.bitmap, geom_);
        if (e.host_offset != 0 || e.compressed)
            return Error{ErrorKind::kIo, EIO,
                         "qcow2: compressed write to an allocated cluster at " + hex_string(offset),
                         std::nullopt};
        ASSIGN_OR_RETURN(host, alloc_compressed_bytes(len));
    }
    turn.release();
    Status st = check_overlap(0, host, len);
    if (st.ok()) {
        ::coblock::co_debug_event(file_, BlkdebugEvent::kWriteCompressed);
        st = co_child_pwrite(file_, host, packed->data(), packed->size());
    }
    CoMutexGuard guard(lock_);
    if (!st.ok()) {
        (void)update_refcount(host, len, -1, false);
        return st;
    }
    ASSIGN_OR_RETURN(qcow2::L2Entry ce, qcow2::make_compressed_entry(host, len, geom_));
    ASSIGN_OR_RETURN(uint64_t word, qcow2::encode_l2_entry(ce, geom_));
    TRY(mark_dirty());
    ASSIGN_OR_RETURN(MetaCache::Entry * table, load_l2(l2_offset, offset));
    ::coblock::co_debug_event(file_, BlkdebugEvent::kL2UpdateCompressed);
    TRY(qcow2::write_l2_entry(table->data, l2_slice_index(offset), geom_.extended_l2,
                              qcow2::RawL2Entry{word, 0}));
    table->dirty = true;
    l2_depends_on_flush_ = true;
    return {};
}

// QEMU ends `convert -c` with an empty compressed write, which rounds the
// image file up to whole sectors: packed data ends mid-sector, and readers
// read compressed clusters in whole sectors.
Status Qcow2Node::extend_file_to_sector() {
    const uint64_t length = file_->node()->size();
    const uint64_t rounded = (length + 511) / 512 * 512;
    if (rounded == length) return {};
    return co_child_truncate(file_, rounded, false, Prealloc::kOff, false);
}

}  // namespace coblock::qcow2drv
