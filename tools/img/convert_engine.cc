// The copy engine of `coblock-img convert` (see convert_engine.h): block
// status walk, -m worker coroutines, in-order or out-of-order writes, zero
// detection (is_allocated_sectors_min), --salvage reads, -r throttling.
#include "tools/img/convert_engine.h"

#include <getopt.h>
#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>
#include "block/create.h"
#include "block/driver.h"
#include "block/io.h"
#include "coroutine/co_mutex.h"
#include "coroutine/co_queue.h"
#include "coroutine/coroutine.h"
#include "coroutine/event_loop.h"
#include "coroutine/run_sync.h"
#include "coroutine/sleep.h"
#include "formats/qcow2/constants.h"
#include "formats/qcow2/header.h"
#include "qapi/json_output.h"
#include "qapi/keyval.h"
#include "tools/img/commands.h"
#include "tools/img/options.h"
#include "tools/img/qcow2_snapshot_reader.h"
#include "tools/img/qcow2_snapshots.h"

namespace coblock::img {
namespace {

enum class ChunkStatus { kData, kZero, kBackingFile };

bool sector_is_zero(const std::byte* p, int64_t bytes) {
    for (int64_t i = 0; i < bytes; ++i)
        if (p[i] != std::byte{0}) return false;
    return true;
}

// is_allocated_sectors: the run of sectors at the start of `buf` that are
// all zero or all non-zero, with the end aligned as QEMU aligns it.
bool is_allocated_sectors(const std::byte* buf, int64_t n, int64_t* pnum, int64_t sector_num,
                          int64_t alignment) {
    if (n <= 0) {
        *pnum = 0;
        return false;
    }
    bool is_zero = sector_is_zero(buf, kSector);
    int64_t i = 1;
    for (; i < n; ++i) {
        buf += kSector;
        if (is_zero != sector_is_zero(buf, kSector)) break;
    }
    if (i == n) {
        *pnum = i;
        return !is_zero;
    }
    const int64_t tail = (sector_num + i) & (alignment - 1);
    if (tail) {
        if (is_zero && i <= tail) is_zero = false;
        if (!is_zero) {
            i += alignment - tail;
            i = std::min(i, n);
        } else {
            i -= tail;
        }
    }
    *pnum = i;
    return !is_zero;
}

// is_allocated_sectors_min: zero runs shorter than `min` sectors count as
// data.
bool is_allocated_sectors_min(const std::byte* buf, int64_t n, int64_t* pnum, int64_t min,
                              int64_t sector_num, int64_t alignment) {
    if (n < min) min = n;
    if (!is_allocated_sectors(buf, n, pnum, sector_num, alignment)) return false;
    int64_t num_used = *pnum;
    buf += kSector * *pnum;
    n -= *pnum;
    sector_num += *pnum;
    int64_t num_checked = num_used;
    while (n > 0) {
        const bool ret = is_allocated_sectors(buf, n, pnum, sector_num, alignment);
        buf += kSector * *pnum;
        n -= *pnum;
        sector_num += *pnum;
        num_checked += *pnum;
        if (ret)
            num_used = num_checked;
        else if (*pnum >= min)
            break;
    }
    *pnum = num_used;
    return true;
}

class Converter {
  public:
    Converter(std::vector<SourcePart> parts, BlockBackend& dst, const ConvertConfig& config,
              Progress& progress, bool count_for_progress)
        : parts_(std::move(parts)),
          dst_(dst),
          config_(config),
          progress_(progress),
          count_for_progress_(count_for_progress) {
        const SourcePart& last = parts_.back();
        total_sectors_ = last.start_sector + last.sectors;
        // The target's size: the source's own for one source (it may end
        // inside a sector), whole sectors when concatenating.
        total_bytes_ = parts_.size() == 1 ? last.bytes : total_sectors_ * kSector;
        buf_sectors_ = config.compressed && config.cluster_sectors > 0 ? config.cluster_sectors
                                                                       : kIoBufSectors;
    }

    const ConvertStats& stats() const { return stats_; }

    // Runs the copy; returns 0 or -errno (the error is printed).
    int run() {
        EventLoop& loop = dst_.loop();
        EventLoop::Scope scope(loop);
        // qemu-img walks the whole source once more to size the progress
        // bar; without -p that walk is skipped.
        bool counted = !count_for_progress_;
        if (!counted)
            spawn([&] {
                count_allocated();
                counted = true;
            });
        loop.run_until([&] { return counted; });
        if (ret_ != kInProgress) return ret_;
        const int workers = config_.num_coroutines;
        running_ = workers;
        for (int i = 0; i < workers; ++i)
            spawn([this] { co_worker(); });
        loop.run_until([this] { return running_ == 0; });
        if (ret_ == kInProgress && config_.compressed) finish_compressed();
        return ret_ == kInProgress ? 0 : ret_;
    }

  private:
    static constexpr int kInProgress = 1;

    // qemu-img ends a compressed convert with an empty compressed write
    // ("signal EOF to align"): qcow and qcow2 round their file up to whole
    // sectors, as packed data ends mid-sector. The request layer drops empty
    // requests, so the format node's hook gets it directly, as QEMU's block
    // layer passes this one through.
    void finish_compressed() {
        BlockNode* target = dst_.root();
        bool finished = false;
        spawn([&] {
            IoVector empty(nullptr, 0);
            Status status = target->co_pwritev(0, 0, empty, kReqWriteCompressed);
            if (!status) {
                error_report("error while writing at byte 0: " +
                             std::string(std::strerror(status.error().as_errno())));
                ret_ = -status.error().as_errno();
            }
            finished = true;
        });
        dst_.loop().run_until([&] { return finished; });
    }

    // convert_iteration_sectors: the status and length of the run at
    // `sector_num` (run under lock_).
    const SourcePart& part_of(int64_t sector_num) const {
        for (const SourcePart& part : parts_)
            if (sector_num < part.start_sector + part.sectors) return part;
        return parts_.back();
    }

    int64_t iteration_sectors(int64_t sector_num) {
        const SourcePart& part = part_of(sector_num);
        int64_t n = part.start_sector + part.sectors - sector_num;
        if (sector_next_status_ <= sector_num) {
            // Zeros past the end of the target's backing file read as zeros
            // there already (QEMU's post_backing_zero); split at that end.
            bool post_backing_zero = false;
            if (config_.target_backing_sectors >= 0) {
                if (sector_num >= config_.target_backing_sectors)
                    post_backing_zero = true;
                else if (sector_num + n > config_.target_backing_sectors)
                    n = config_.target_backing_sectors - sector_num;
            }
            const uint64_t offset =
                static_cast<uint64_t>((sector_num - part.start_sector) * kSector);
            Result<BlockStatus> status = make_error(ErrorKind::kIo, "no block status");
            for (;;) {
                const uint64_t len = static_cast<uint64_t>(
                    std::min(n * kSector, part.bytes - static_cast<int64_t>(offset)));
                status = part.snapshot ? part.snapshot->co_block_status(offset, len)
                                       : co_block_status_above(part.blk->root(), part.base, offset,
                                                               len, true);
                if (status && status->bytes != 0) break;
                const int err = status ? EIO : status.error().as_errno();
                if (!config_.salvage) {
                    error_report("error while reading block status at offset " +
                                 std::to_string(offset) + ": " + std::strerror(err));
                    return -err;
                }
                if (n == 1) {
                    // --salvage: try to read the sector as data.
                    if (!config_.quiet)
                        warn_report("error while reading block status at offset " +
                                    std::to_string(offset) + ": " + std::strerror(err));
                    status = BlockStatus{};
                    status->flags = kStatusData;
                    status->bytes = kSector;
                    break;
                }
                n = (n + 3) / 4;  // retry on a shorter range
            }
            n = static_cast<int64_t>((status->bytes + kSector - 1) / kSector);
            if (status->flags & kStatusZero)
                status_ = post_backing_zero ? ChunkStatus::kBackingFile : ChunkStatus::kZero;
            else if (status->flags & kStatusData)
                status_ = ChunkStatus::kData;
            else
                status_ =
                    config_.target_has_backing ? ChunkStatus::kBackingFile : ChunkStatus::kData;
            sector_next_status_ = sector_num + n;
        }
        n = std::min(n, sector_next_status_ - sector_num);
        // What goes through the buffer is at most one buffer long (zeros
        // too under -S 0, which writes them as data).
        if (counts_for_progress(status_)) n = std::min(n, buf_sectors_);
        if (config_.compressed && config_.cluster_sectors > 0) {
            if (n < config_.cluster_sectors) {
                n = std::min(config_.cluster_sectors, total_sectors_ - sector_num);
                status_ = ChunkStatus::kData;
            } else {
                n -= n % config_.cluster_sectors;
            }
        }
        return n;
    }

    // convert_co_read: with --salvage a failed read is retried sector by
    // sector, and sectors that still fail read as zeros (with a warning).
    static Status read_part(const SourcePart& part, int64_t offset, int64_t bytes, std::byte* buf) {
        if (part.snapshot)
            return part.snapshot->co_read(static_cast<uint64_t>(offset),
                                          static_cast<uint64_t>(bytes), buf);
        IoVector qiov(buf, static_cast<size_t>(bytes));
        return part.blk->co_preadv(static_cast<uint64_t>(offset), static_cast<uint64_t>(bytes),
                                   qiov);
    }

    Status read_source(const SourcePart& part, int64_t offset, int64_t bytes, std::byte* buf) {
        Status read = read_part(part, offset, bytes, buf);
        if (read || !config_.salvage) return read;
        for (int64_t pos = 0; pos < bytes; pos += kSector) {
            const int64_t n = std::min(kSector, bytes - pos);
            Status one = read_part(part, offset + pos, n, buf + pos);
            if (!one) {
                if (!config_.quiet)
                    warn_report("error while reading offset " + std::to_string(offset + pos) +
                                ": " + std::strerror(one.error().as_errno()));
                std::memset(buf + pos, 0, static_cast<size_t>(n));
            }
        }
        return {};
    }

    // -r: QEMU throttles the target's writes to `rate_limit` bytes per
    // second (a throttle group on the target); here each write waits for
    // its slot in a schedule that grows by bytes / rate.
    void co_throttle(int64_t bytes) {
        if (config_.rate_limit <= 0) return;
        const int64_t now = EventLoop::now_ns();
        const int64_t start = std::max(now, next_write_ns_);
        next_write_ns_ = start + static_cast<int64_t>(static_cast<double>(bytes) * 1e9 /
                                                      static_cast<double>(config_.rate_limit));
        if (start > now) co_sleep_ns(start - now);
    }

    bool counts_for_progress(ChunkStatus status) const {
        return status == ChunkStatus::kData ||
               (config_.min_sparse == 0 && status == ChunkStatus::kZero);
    }

    void count_allocated() {
        int64_t sector = 0;
        while (sector < total_sectors_) {
            const int64_t n = iteration_sectors(sector);
            if (n < 0) {
                ret_ = static_cast<int>(n);
                return;
            }
            if (counts_for_progress(status_)) allocated_sectors_ += n;
            sector += n;
        }
        sector_next_status_ = 0;
    }

    int64_t byte_count(int64_t sector_num, int64_t n) const {
        return std::min(n * kSector, total_bytes_ - sector_num * kSector);
    }

    Status write(int64_t sector_num, int64_t nb_sectors, std::byte* buf, ChunkStatus status) {
        while (nb_sectors > 0) {
            int64_t n = nb_sectors;
            const uint32_t flags = config_.compressed ? uint32_t{kReqWriteCompressed} : 0u;
            bool zero = false;
            switch (status) {
                case ChunkStatus::kBackingFile:
                    stats_.backing_bytes += byte_count(sector_num, n);
                    break;
                case ChunkStatus::kData:
                    if (config_.min_sparse == 0 ||
                        (!config_.compressed &&
                         is_allocated_sectors_min(buf, n, &n, config_.min_sparse, sector_num,
                                                  config_.alignment)) ||
                        (config_.compressed && !sector_is_zero(buf, byte_count(sector_num, n)))) {
                        const int64_t bytes = byte_count(sector_num, n);
                        co_throttle(bytes);
                        IoVector qiov(buf, static_cast<size_t>(bytes));
                        TRY(dst_.co_pwritev(static_cast<uint64_t>(sector_num * kSector),
                                            static_cast<uint64_t>(bytes), qiov, flags));
                        stats_.data_bytes += bytes;
                        break;
                    }
                    zero = true;
                    break;
                case ChunkStatus::kZero:
                    zero = true;
                    break;
            }
            if (zero) stats_.zero_bytes += byte_count(sector_num, n);
            if (zero && !config_.has_zero_init) {
                TRY(dst_.co_pwrite_zeroes(static_cast<uint64_t>(sector_num * kSector),
                                          static_cast<uint64_t>(byte_count(sector_num, n)),
                                          kReqMayUnmap));
            }
            sector_num += n;
            nb_sectors -= n;
            buf += n * kSector;
        }
        return {};
    }

    void co_worker() {
        AlignedBuffer buf(static_cast<size_t>(buf_sectors_ * kSector));
        for (;;) {
            lock_.co_lock();
            if (ret_ != kInProgress || next_sector_ >= total_sectors_) {
                lock_.unlock();
                break;
            }
            const int64_t n = iteration_sectors(next_sector_);
            if (n < 0) {
                ret_ = static_cast<int>(n);
                lock_.unlock();
                break;
            }
            const int64_t sector_num = next_sector_;
            ChunkStatus status = status_;
            next_sector_ += n;
            if (counts_for_progress(status)) {
                allocated_done_ += n;
                progress_.print(static_cast<float>(100.0 * static_cast<double>(allocated_done_) /
                                                   static_cast<double>(allocated_sectors_)),
                                0);
            }
            lock_.unlock();

            const SourcePart& part = part_of(sector_num);
            const int64_t local = (sector_num - part.start_sector) * kSector;
            const int64_t bytes = std::min(n * kSector, part.bytes - local);
            if (status == ChunkStatus::kData) {
                Status read = read_source(part, local, bytes, buf.data());
                if (!read) {
                    error_report("error while reading at byte " +
                                 std::to_string(sector_num * kSector) + ": " +
                                 std::strerror(read.error().as_errno()));
                    if (ret_ == kInProgress) ret_ = -read.error().as_errno();
                }
                if (bytes < n * kSector)
                    std::memset(buf.data() + bytes, 0, static_cast<size_t>(n * kSector - bytes));
            } else if (config_.min_sparse == 0 && status == ChunkStatus::kZero) {
                status = ChunkStatus::kData;
                std::memset(buf.data(), 0, static_cast<size_t>(n * kSector));
            }

            if (config_.in_order) {
                while (written_up_to_ != sector_num && ret_ == kInProgress)
                    write_order_.co_wait();
            }
            // qcow2 allocates compressed clusters in the order their writes
            // arrive and compresses them in parallel: a compressed write only
            // has to start in order, so the next chunk's may start at once.
            const bool ordered_at_start = config_.in_order && config_.compressed_starts_in_order;
            if (ordered_at_start) {
                written_up_to_ = sector_num + n;
                write_order_.wake_all();
            }
            if (ret_ == kInProgress) {
                Status written = write(sector_num, n, buf.data(), status);
                if (!written) {
                    error_report("error while writing at byte " +
                                 std::to_string(sector_num * kSector) + ": " +
                                 std::strerror(written.error().as_errno()));
                    if (ret_ == kInProgress) ret_ = -written.error().as_errno();
                }
            }
            if (config_.in_order && !ordered_at_start) {
                written_up_to_ = sector_num + n;
                write_order_.wake_all();
            }
        }
        --running_;
        write_order_.wake_all();  // an error must not leave others waiting
    }

    const std::vector<SourcePart> parts_;
    BlockBackend& dst_;
    const ConvertConfig config_;
    Progress& progress_;
    const bool count_for_progress_;
    int64_t total_bytes_ = 0;
    int64_t total_sectors_ = 0;
    int64_t buf_sectors_ = kIoBufSectors;
    CoMutex lock_;
    int64_t next_sector_ = 0;
    int64_t sector_next_status_ = 0;
    ChunkStatus status_ = ChunkStatus::kData;
    int64_t allocated_sectors_ = 0;
    int64_t allocated_done_ = 0;
    int64_t written_up_to_ = 0;
    int64_t next_write_ns_ = 0;
    CoQueue write_order_;
    int running_ = 0;
    int ret_ = kInProgress;
    ConvertStats stats_;
};

}  // namespace

int run_convert(std::vector<SourcePart> parts, BlockBackend& dst, const ConvertConfig& config,
                Progress& progress, bool count_for_progress, ConvertStats* stats) {
    Converter converter(std::move(parts), dst, config, progress, count_for_progress);
    const int ret = converter.run();
    *stats = converter.stats();
    return ret;
}

}  // namespace coblock::img
