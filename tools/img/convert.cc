// `coblock-img convert`: qemu-img 7.2's img_convert and its copy engine
// (convert_iteration_sectors, convert_co_do_copy, convert_co_write,
// is_allocated_sectors_min): the source is walked by block status through
// its backing chain; zero and unallocated ranges are skipped on a target
// that reads as zeros (or written as zeros), data is read in chunks of up to
// 2 MiB by `-m` coroutines and written in order (out of order with -W),
// compressed cluster by cluster with -c. Progress: specs §9.
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

enum : int {
    kOptionTargetImageOpts = kOptionFirstOwn,
    kOptionTargetIsZero,
    kOptionSalvage,
    kOptionBitmaps,
};

constexpr int64_t kSector = 512;
constexpr int64_t kIoBufSectors = 2 * 1024 * 1024 / kSector;
constexpr int kMaxCoroutines = 16;
constexpr int64_t kMaxBufSectors = 32768;  // -S limit (16 MiB), as qemu-img

enum class ChunkStatus { kData, kZero, kBackingFile };

struct ConvertConfig {
    int num_coroutines = 8;
    bool in_order = true;
    bool compressed = false;
    int64_t min_sparse = 8;  // sectors; 0: write everything (-S 0)
    bool has_zero_init = false;
    bool target_has_backing = false;
    int64_t cluster_sectors = 0;  // target cluster, for -c
    int64_t alignment = 8;        // sectors, for zero detection
    // Size of the target's backing file in sectors (-1: none). Past it the
    // target reads as zeros already, so zero runs there are skipped.
    int64_t target_backing_sectors = -1;
    bool salvage = false;    // --salvage: unreadable sectors become zeros
    bool quiet = false;      // -q: no salvage warnings
    int64_t rate_limit = 0;  // -r: target write bytes per second, 0 = none
    // -c to qcow2: writes are ordered by arrival in the driver (see co_worker).
    bool compressed_starts_in_order = false;
};

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

// One source image; several are concatenated (each starts on a sector).
struct SourcePart {
    BlockBackend* blk = nullptr;
    BlockNode* base = nullptr;  // block status stops here (-B)
    // -l: reads and block status come from this snapshot instead.
    Qcow2SnapshotReader* snapshot = nullptr;
    int64_t start_sector = 0;
    int64_t sectors = 0;
    int64_t bytes = 0;
};

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

    // What the copy did with the source's bytes (for --output=json).
    struct Stats {
        int64_t data_bytes = 0;     // written as data
        int64_t zero_bytes = 0;     // zeros: skipped or written as zeros
        int64_t backing_bytes = 0;  // left to the target's backing file
    };
    const Stats& stats() const { return stats_; }

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
    Stats stats_;
};

// Formats whose driver writes compressed clusters (QEMU's
// block_driver_can_compress), checked before anything is created.
bool format_can_compress(const std::string& format) {
    return format == "qcow2" || format == "qcow" || format == "vmdk";
}

// -l snapshot.id=...,snapshot.name=...: QEMU's internal_snapshot_opts
// accept exactly these two keys.
bool parse_snapshot_opts(const char* text, std::optional<std::string>* id,
                         std::optional<std::string>* name) {
    Result<qapi::OptionsTree> parsed = qapi::parse_qemu_opts(text);
    bool ok = static_cast<bool>(parsed);
    if (!parsed) {
        error_report(parsed.error().to_string());
    } else {
        for (const auto& [key, value] : *parsed) {
            if (key == "snapshot.id") {
                *id = value.text;
            } else if (key == "snapshot.name") {
                *name = value.text;
            } else {
                error_report("Invalid parameter '" + key + "'");
                ok = false;
                break;
            }
        }
    }
    if (!ok) error_report(std::string("Failed in parsing snapshot param '") + text + "'");
    return ok;
}

// bdrv_snapshot_load_tmp(_by_id_or_name): QEMU's messages for a format
// without internal snapshots and for a snapshot that is not there; for
// qcow2 a read-only view of the snapshot (nullptr after printing an error).
std::unique_ptr<Qcow2SnapshotReader> load_snapshot(BlockNode* node, bool by_opts,
                                                   const std::optional<std::string>& id,
                                                   const std::optional<std::string>& name,
                                                   const std::optional<std::string>& id_or_name) {
    const std::string prefix = "Failed to load snapshot: ";
    if (node->driver().name != "qcow2") {
        error_report(prefix + "Block format '" + node->driver().name +
                     "' used by device '' does not support temporarily loading internal "
                     "snapshots");
        return nullptr;
    }
    Result<std::vector<qcow2::SnapshotEntry>> entries = read_qcow2_snapshots(node);
    if (!entries) {
        error_report(prefix + entries.error().to_string());
        return nullptr;
    }
    const qcow2::SnapshotEntry* found = by_opts ? find_snapshot(*entries, id, name)
                                                : find_snapshot(*entries, id_or_name, std::nullopt);
    if (!by_opts && found == nullptr) found = find_snapshot(*entries, std::nullopt, id_or_name);
    if (found == nullptr) {
        error_report(prefix + "Can't find snapshot");
        return nullptr;
    }
    Result<std::unique_ptr<Qcow2SnapshotReader>> reader = Qcow2SnapshotReader::open(node, *found);
    if (!reader) {
        error_report(prefix + reader.error().to_string());
        return nullptr;
    }
    return std::move(*reader);
}

// --bitmaps: qemu-img copies persistent dirty bitmaps (qcow2 only). Only a
// qcow2 source can have them; coblock's qcow2 driver does not carry them,
// so a source that has some is refused rather than copied without them.
bool check_source_bitmaps(BlockNode* node) {
    if (node->driver().name != "qcow2" || node->file() == nullptr) {
        error_report("Source lacks bitmap support");
        return false;
    }
    std::vector<std::byte> head(512);
    Status read = run_sync([&] { return co_child_pread(node->file(), 0, head.data(), 512); });
    Result<qcow2::Header> header =
        read ? qcow2::decode_header(head) : Result<qcow2::Header>(read.error());
    if (!header) {
        error_report("Could not read the source's header: " + header.error().to_string());
        return false;
    }
    if (header->autoclear_features & qcow2::kAutoclearBitmaps) {
        error_report(
            "Copying persistent bitmaps is not supported by coblock-img: the source has "
            "bitmaps (autoclear bit 0 set)");
        return false;
    }
    return true;
}

int64_t pow2floor(int64_t value) {
    int64_t p = 1;
    while (p * 2 <= value)
        p *= 2;
    return p;
}

}  // namespace

int img_convert(int argc, char** argv) {
    static const struct option kLongOptions[] = {
        {"help", no_argument, nullptr, 'h'},
        {"object", required_argument, nullptr, kOptionObject},
        {"image-opts", no_argument, nullptr, kOptionImageOpts},
        {"force-share", no_argument, nullptr, 'U'},
        {"target-image-opts", no_argument, nullptr, kOptionTargetImageOpts},
        {"salvage", no_argument, nullptr, kOptionSalvage},
        {"target-is-zero", no_argument, nullptr, kOptionTargetIsZero},
        {"bitmaps", no_argument, nullptr, kOptionBitmaps},
        {"output", required_argument, nullptr, kOptionOutput},
        {nullptr, 0, nullptr, 0},
    };
    ImageSpec src_spec;
    src_spec.flags.read_only = true;
    std::string out_format;
    std::string options;
    bool has_options = false;
    std::string out_backing;
    std::string backing_format;
    std::string cache = "unsafe";  // qemu-img convert's default target cache
    bool skip_create = false;
    bool target_is_zero = false;
    bool progress = false;
    bool quiet = false;
    bool copy_range = false;
    bool json = false;  // coblock extension: a summary of the copy
    bool explicit_min_sparse = false;
    bool target_image_opts = false;
    bool bitmaps = false;
    // -l: a snapshot name or id, or snapshot.id=/snapshot.name= options.
    std::optional<std::string> snapshot_id_or_name;
    bool snapshot_opts = false;
    std::optional<std::string> snapshot_id, snapshot_name;
    ConvertConfig config;
    int c;
    while ((c = getopt_long(argc, argv, ":hf:O:B:CcF:o:l:S:pt:T:qnm:WUr:", kLongOptions,
                            nullptr)) != -1) {
        if (handle_shared_option(c, argv, &src_spec)) continue;
        switch (c) {
            case 'O':
                out_format = optarg;
                break;
            case 'B':
                out_backing = optarg;
                break;
            case 'F':
                backing_format = optarg;
                break;
            case 'C':
                // Copy offloading: QEMU falls back to reading and writing
                // when the copy_range call fails, which is what we do.
                copy_range = true;
                break;
            case 'c':
                config.compressed = true;
                break;
            case 'o':
                if (!is_valid_option_list(optarg)) {
                    error_report(std::string("Invalid option list: ") + optarg);
                    return 1;
                }
                if (has_options) options += ',';
                options += optarg;
                has_options = true;
                break;
            case 'l':
                if (std::strncmp(optarg, "snapshot.", 9) == 0) {
                    if (!parse_snapshot_opts(optarg, &snapshot_id, &snapshot_name)) return 1;
                    snapshot_opts = true;
                } else {
                    snapshot_id_or_name = optarg;
                }
                break;
            case 'S': {
                std::optional<int64_t> value = cvtnum("buffer size for sparse output", optarg);
                if (!value || *value % kSector != 0 || *value / kSector > kMaxBufSectors) {
                    if (value)
                        error_report(
                            "Invalid buffer size for sparse output specified. Valid sizes are "
                            "multiples of 512 up to 16777216. Select 0 to disable sparse "
                            "detection (fully allocates output).");
                    return 1;
                }
                config.min_sparse = *value / kSector;
                explicit_min_sparse = true;
                break;
            }
            case 'p':
                progress = true;
                break;
            case 't':
                cache = optarg;
                break;
            case 'T':
                if (!parse_cache_mode(optarg, src_spec.flags)) {
                    error_report(std::string("Invalid source cache option: ") + optarg);
                    return 1;
                }
                break;
            case 'q':
                quiet = true;
                break;
            case 'n':
                skip_create = true;
                break;
            case 'm': {
                std::optional<unsigned long> value = parse_ulong(optarg);
                if (!value || *value < 1 || *value > kMaxCoroutines) {
                    error_report(
                        "Invalid number of coroutines. Allowed number of coroutines is "
                        "between 1 and 16");
                    return 1;
                }
                config.num_coroutines = static_cast<int>(*value);
                break;
            }
            case 'W':
                config.in_order = false;
                break;
            case 'r': {
                std::optional<int64_t> rate = cvtnum("rate limit", optarg);
                if (!rate) return 1;
                config.rate_limit = *rate;
                break;
            }
            case kOptionTargetImageOpts:
                target_image_opts = true;
                break;
            case kOptionTargetIsZero:
                target_is_zero = true;
                break;
            case kOptionSalvage:
                config.salvage = true;
                break;
            case kOptionOutput:
                if (!parse_output_format(optarg, &json)) return 1;
                break;
            case kOptionBitmaps:
                bitmaps = true;
                break;
        }
    }
    const bool explicit_out_format = !out_format.empty();
    if (out_format.empty() && !target_image_opts) out_format = "raw";
    config.quiet = quiet;
    if (quiet || json) progress = false;
    if (copy_range && config.compressed) {
        error_report("Cannot enable copy offloading when -c is used");
        return 1;
    }
    if (copy_range && explicit_min_sparse) {
        error_report("Cannot enable copy offloading when -S is used");
        return 1;
    }
    if (copy_range && config.salvage) {
        error_report("Cannot use copy offloading in salvaging mode");
        return 1;
    }
    if (target_image_opts && !skip_create) {
        error_report("--target-image-opts requires use of -n flag");
        return 1;
    }
    if (has_options && qapi::has_help_option(options))
        return print_create_help(optind < argc ? argv[argc - 1] : nullptr, out_format);

    const int sources = argc - optind - 1;
    if (sources < 1) {
        error_report("Must specify image file name");
        return 1;
    }
    if (target_is_zero && !skip_create) {
        error_report("--target-is-zero requires use of -n flag");
        return 1;
    }
    if (skip_create && has_options) {
        error_report("-o has no effect when skipping image creation");
        return 1;
    }
    const std::string out_filename = argv[argc - 1];

    Progress meter(progress, 1.0f);
    meter.print(0, 100);
    // Every exit from here on ends the progress line, as qemu-img's "out:".
    struct EndProgress {
        Progress& meter;
        ~EndProgress() { meter.end(); }
    } end_progress{meter};

    // Several sources are concatenated, each starting on a sector boundary.
    std::vector<std::unique_ptr<BlockBackend>> srcs;
    std::unique_ptr<Qcow2SnapshotReader> snapshot;
    std::vector<SourcePart> parts;
    int64_t total_sectors = 0;
    for (int i = 0; i < sources; ++i) {
        src_spec.filename = argv[optind + i];
        std::unique_ptr<BlockBackend> src = open_image(src_spec);
        if (!src) return 1;
        SourcePart part;
        part.blk = src.get();
        part.bytes = static_cast<int64_t>(src->length());
        part.sectors = (part.bytes + kSector - 1) / kSector;
        part.start_sector = total_sectors;
        total_sectors += part.sectors;
        parts.push_back(part);
        srcs.push_back(std::move(src));
    }
    if (bitmaps) {
        if (sources > 1) {
            error_report("Copying bitmaps only possible with single source");
            return 1;
        }
        if (!check_source_bitmaps(srcs[0]->root())) return 1;
    }
    if (snapshot_opts || snapshot_id_or_name) {
        if (!snapshot_opts && sources > 1) {
            error_report("No support for concatenating multiple snapshot");
            return 1;
        }
        snapshot = load_snapshot(srcs[0]->root(), snapshot_opts, snapshot_id, snapshot_name,
                                 snapshot_id_or_name);
        if (!snapshot) return 1;
        parts[0].snapshot = snapshot.get();
    }
    const uint64_t size = sources == 1 ? static_cast<uint64_t>(parts[0].bytes)
                                       : static_cast<uint64_t>(total_sectors * kSector);

    const BlockDriver* driver = out_format.empty() ? nullptr : find_block_driver(out_format);
    if (driver == nullptr && !target_image_opts) {
        error_report("Unknown file format '" + out_format + "'");
        return 1;
    }
    if (!out_backing.empty() && driver && !driver->supports_backing) {
        error_report("Backing file not supported for file format '" + out_format + "'");
        return 1;
    }
    if (!backing_format.empty() && driver && !driver->supports_backing) {
        error_report("Backing file format not supported for file format '" + out_format + "'");
        return 1;
    }
    if (sources > 1 && !out_backing.empty()) {
        error_report(
            "Having a backing file for the target makes no sense when concatenating multiple "
            "input images");
        return 1;
    }
    if (!out_backing.empty() && backing_format.empty()) {
        error_report("Use of backing file requires explicit backing format");
        return 1;
    }
    if (!backing_format.empty() && out_backing.empty()) {
        error_report(out_filename + ": error while converting " + out_format +
                     ": Backing format cannot be used without backing file");
        return 1;
    }
    if (config.compressed && driver && !format_can_compress(out_format)) {
        error_report("Compression not supported for this file format");
        return 1;
    }

    if (!skip_create) {
        Result<qapi::OptionsTree> parsed = qapi::parse_qemu_opts(options);
        if (!parsed) {
            error_report(parsed.error().to_string());
            return 1;
        }
        Status created = create_image(out_format, out_filename, size, std::move(*parsed),
                                      out_backing, backing_format);
        if (!created) {
            error_report(out_filename + ": " + created.error().to_string());
            return 1;
        }
    }

    ImageSpec dst_spec;
    dst_spec.filename = out_filename;
    // --target-image-opts: the target is an option string; -O with it is
    // refused by img_open, as qemu-img does.
    dst_spec.image_opts = target_image_opts;
    dst_spec.format = target_image_opts && !explicit_out_format ? std::string() : out_format;
    if (!parse_cache_mode(cache, dst_spec.flags)) {
        error_report("Invalid cache option: " + cache);
        return 1;
    }
    std::unique_ptr<BlockBackend> dst = open_image(dst_spec);
    if (!dst) return 1;
    if (skip_create && dst->length() < size) {
        error_report("output file is smaller than input file");
        return 1;
    }
    if (bitmaps && dst->root()->driver().name != "qcow2") {
        error_report("Format driver '" + dst->root()->driver().name + "' does not support bitmaps");
        return 1;
    }
    if (config.compressed && !(dst->root()->supported_write_flags() & kReqWriteCompressed)) {
        error_report("Compression not supported for this file format");
        return 1;
    }

    config.target_has_backing = !out_backing.empty();
    if (config.target_has_backing && dst->root()->backing() != nullptr)
        config.target_backing_sectors =
            static_cast<int64_t>(dst->root()->backing()->node()->size()) / kSector;
    config.has_zero_init = skip_create ? target_is_zero : !config.target_has_backing;
    const ImageFacts facts = image_facts(dst->root());
    if (config.compressed) {
        if (facts.cluster_size <= 0 || facts.cluster_size % kSector != 0) {
            error_report("invalid cluster size");
            return 1;
        }
        config.cluster_sectors = facts.cluster_size / kSector;
        config.compressed_starts_in_order = dst->root()->driver().name == "qcow2";
    }
    config.alignment = std::max<int64_t>(
        {pow2floor(std::max<int64_t>(config.min_sparse, 1)),
         static_cast<int64_t>(dst->root()->limits().request_alignment) / kSector, int64_t{1}});
    config.alignment = pow2floor(config.alignment);

    // -B: what is in the new backing file is not copied: walk the source
    // only down to its own backing file.
    if (config.target_has_backing && srcs[0]->root()->backing() != nullptr)
        parts[0].base = srcs[0]->root()->backing()->node();

    Converter converter(std::move(parts), *dst, config, meter, progress);
    int ret = converter.run();
    if (ret == 0) {
        Status flushed = dst->flush();
        if (!flushed) {
            error_report(std::string("error while flushing: ") +
                         std::strerror(flushed.error().as_errno()));
            ret = -1;
        }
    }
    if (ret == 0) meter.print(100, 0);
    if (ret == 0 && json) {
        nlohmann::ordered_json summary = nlohmann::ordered_json::object();
        summary["filename"] = out_filename;
        summary["format"] = dst->root()->driver().name;
        summary["virtual-size"] = size;
        summary["compressed"] = config.compressed;
        summary["data-bytes"] = converter.stats().data_bytes;
        summary["zero-bytes"] = converter.stats().zero_bytes;
        summary["backing-bytes"] = converter.stats().backing_bytes;
        const int64_t allocated = dst->root()->allocated_size();
        if (allocated >= 0) summary["actual-size"] = allocated;
        std::printf("%s\n", qapi::to_qemu_json_pretty(summary).c_str());
    }
    return ret == 0 ? 0 : 1;
}

}  // namespace coblock::img
