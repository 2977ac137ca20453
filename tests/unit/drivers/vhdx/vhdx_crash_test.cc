// Crash consistency of the vhdx writer (issue 6): a write-logging filter
// records every write, truncate and flush the driver sends to its file
// during random allocating workloads; then images are rebuilt from the
// starting bytes plus a prefix of that record (every prefix that ends at a
// flush, and random prefixes in between where the writes since the last
// flush may each have reached the disk or not, as a write-back cache
// allows) and opened read-write with log replay. Each must open, pass our
// check, and hold every write acknowledged before the last flush of the
// prefix; a sample is also given to `qemu-img check`.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "block/check.h"
#include "block/create.h"
#include "coroutine/event_loop.h"
#include "drivers/memory/memory_node.h"
#include "tests/unit/drivers/vhdx/vhdx_test_util.h"

namespace coblock {
namespace {

using namespace vhdx_test;
using vhdx::kMiB;

// ---- The write-logging filter ----------------------------------------------------

struct LoggedOp {
    enum Kind { kWrite, kZero, kTruncate, kFlush };
    Kind kind = kWrite;
    uint64_t offset = 0;  // kTruncate: the new size
    uint64_t length = 0;
    std::vector<std::byte> data;  // kWrite
};

inline const BlockDriver kWriteLogDriver{.name = "vhdx-test-write-log",
                                         .kind = DriverKind::kFilter};

// Passes everything to its child and appends each write, zero write,
// truncate and flush to `log` once the child has completed it.
class WriteLogNode final : public BlockNode {
  public:
    WriteLogNode() : BlockNode(kWriteLogDriver) {}
    std::vector<LoggedOp> log;

    Status co_preadv(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) override {
        return co_child_preadv(file(), offset, bytes, qiov, flags);
    }
    Status co_pwritev(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) override {
        TRY(co_child_pwritev(file(), offset, bytes, qiov, flags));
        LoggedOp op;
        op.offset = offset;
        op.length = bytes;
        op.data.resize(bytes);
        qiov.copy_to(0, op.data.data(), bytes);
        log.push_back(std::move(op));
        set_size(file()->node()->size());
        return {};
    }
    Status co_pwrite_zeroes(uint64_t offset, uint64_t bytes, uint32_t flags) override {
        TRY(co_child_pwrite_zeroes(file(), offset, bytes, flags));
        log.push_back(LoggedOp{LoggedOp::kZero, offset, bytes, {}});
        set_size(file()->node()->size());
        return {};
    }
    Status co_truncate(uint64_t size, bool exact, Prealloc prealloc, bool shrink_ok) override {
        TRY(co_child_truncate(file(), size, exact, prealloc, shrink_ok));
        log.push_back(LoggedOp{LoggedOp::kTruncate, size, 0, {}});
        set_size(file()->node()->size());
        return {};
    }
    Status co_flush() override {
        log.push_back(LoggedOp{LoggedOp::kFlush, 0, 0, {}});
        return {};  // co_node_flush flushes the child next
    }
    bool is_filter() const override { return true; }
};

void apply_logged(std::vector<std::byte>& image, const LoggedOp& op) {
    switch (op.kind) {
        case LoggedOp::kWrite:
            if (image.size() < op.offset + op.length) image.resize(op.offset + op.length);
            std::memcpy(image.data() + op.offset, op.data.data(), op.length);
            break;
        case LoggedOp::kZero:
            if (image.size() < op.offset + op.length) image.resize(op.offset + op.length);
            std::memset(image.data() + op.offset, 0, op.length);
            break;
        case LoggedOp::kTruncate:
            image.resize(op.offset);
            break;
        case LoggedOp::kFlush:
            break;
    }
}

// Opens the vhdx driver on `file` the way co_open_node does with a
// preopened protocol node. `filename` resolves a differencing parent.
Result<std::unique_ptr<BlockBackend>> open_on(const NodeRef& file, const std::string& filename,
                                              bool read_only) {
    return run_sync([&]() -> Result<std::unique_ptr<BlockBackend>> {
        OpenFlags flags;
        flags.read_only = read_only;
        flags.cache_no_flush = true;
        OpenContext ctx(filename, qapi::OptionsTree{}, flags);
        ctx.set_preopened_file(file);
        ASSIGN_OR_RETURN(std::unique_ptr<BlockNode> opened, kVhdxDriver.co_open(ctx));
        NodeRef node(opened.release());
        node->set_open_flags(ctx.flags());
        uint32_t perm = kPermConsistentRead;
        if (!read_only) perm |= kPermWrite | kPermResize;
        return BlockBackend::attach(node.get(), perm, kPermConsistentRead | kPermWriteUnchanged);
    });
}

// ---- The workload --------------------------------------------------------------------

// One guest request and where it lies in the filter's record: its effects
// are all in log[0, end) and none in log[0, start).
struct GuestOp {
    enum Kind { kWrite, kZero, kDiscard, kFlush } kind;
    uint64_t offset = 0;
    uint64_t length = 0;
    std::vector<uint8_t> data;  // kWrite
    size_t start = 0;
    size_t end = 0;
};

constexpr uint64_t kSector = 512;

class VhdxCrashTest : public ::testing::Test {
  protected:
    void SetUp() override {
        block_layer_init();
        ASSERT_TRUE(dir_.ok());
    }

    // Runs `count` random requests on the image held in `base` (opened on
    // the write-logging filter), recording them in ops_ and the filter's
    // record in log_.
    void run_workload(const std::vector<std::byte>& base, const std::string& filename,
                      uint64_t disk_size, uint32_t seed, int count, bool with_discard) {
        NodeRef mem(new MemoryNode(base));
        auto* filter = new WriteLogNode();
        NodeRef filter_ref(filter);
        auto edge = attach_child(filter, {}, mem.get(), "file", kRoleFilteredChild, kPermAll,
                                 kPermConsistentRead);
        ASSERT_TRUE(edge.ok());
        filter->adopt_child(std::move(*edge));
        filter->set_size(mem->size());
        auto blk = open_on(filter_ref, filename, false);
        ASSERT_TRUE(blk.ok()) << blk.error().to_string();
        std::mt19937 rng(seed);
        auto pick = [&](uint64_t n) {
            return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng);
        };
        for (int i = 0; i < count; ++i) {
            GuestOp op;
            const uint64_t r = pick(100);
            op.kind = r < 65   ? GuestOp::kWrite
                      : r < 75 ? GuestOp::kZero
                      : r < 80 ? (with_discard ? GuestOp::kDiscard : GuestOp::kZero)
                               : GuestOp::kFlush;
            if (op.kind != GuestOp::kFlush) {
                // Mostly small writes anywhere, sometimes whole blocks.
                if (pick(6) == 0) {
                    op.offset = pick(disk_size / kMiB) * kMiB;
                    op.length = kMiB;
                } else {
                    op.offset = pick(disk_size / kSector) * kSector;
                    op.length = std::min((1 + pick(128)) * kSector, disk_size - op.offset);
                }
            }
            if (op.kind == GuestOp::kWrite) op.data = pattern(op.length, seed * 1000 + i);
            op.start = filter->log.size();
            Status s;
            switch (op.kind) {
                case GuestOp::kWrite:
                    s = (*blk)->pwrite(op.offset, op.data.data(), op.data.size());
                    break;
                case GuestOp::kZero:
                    s = (*blk)->pwrite_zeroes(op.offset, op.length, kReqMayUnmap);
                    break;
                case GuestOp::kDiscard:
                    s = (*blk)->pdiscard(op.offset, op.length);
                    break;
                case GuestOp::kFlush:
                    s = (*blk)->flush();
                    break;
            }
            ASSERT_TRUE(s.ok()) << s.error().to_string();
            op.end = filter->log.size();
            ops_.push_back(op);
        }
        blk->reset();  // close: the last flush and log clearing are recorded too
        log_ = filter->log;
    }

    // What the guest may read at each sector after a crash whose image
    // holds log[0, flush_end) and possibly parts of log[flush_end, end):
    // exactly the state after every request acknowledged by flush_end, or
    // for sectors a request still in flight touched, one of those values.
    // Fills settled_ and in_flight_.
    void expect_after(const std::vector<uint8_t>& initial, size_t flush_end, size_t end) {
        settled_.assign(initial.begin(), initial.end());
        in_flight_.clear();
        for (const GuestOp& op : ops_) {
            if (op.end <= flush_end)
                apply_guest(settled_, op);
            else if (op.start < end)
                in_flight_.push_back(&op);
        }
    }
    static void apply_guest(std::vector<uint8_t>& shadow, const GuestOp& op) {
        if (op.kind == GuestOp::kWrite)
            std::memcpy(shadow.data() + op.offset, op.data.data(), op.length);
        else if (op.kind != GuestOp::kFlush) {
            std::memset(shadow.data() + op.offset, 0, op.length);
        }
    }

    // Rebuilds the crashed image, opens it (replaying the log), checks the
    // content and our check; leaves the replayed bytes in image_.
    void check_crash_point(const std::vector<std::byte>& base, const std::string& filename,
                           const std::vector<uint8_t>& initial, size_t flush_end, size_t end,
                           std::mt19937& rng, bool drop_some) {
        // The buffers are reused (fresh image-sized vectors per point cost more
        // in page faults than the check itself).
        std::vector<std::byte> image = std::move(image_);
        image.assign(base.begin(), base.end());
        for (size_t i = 0; i < flush_end; ++i)
            apply_logged(image, log_[i]);
        // After the last flush a write-back cache may have kept any subset.
        for (size_t i = flush_end; i < end; ++i)
            if (!drop_some || log_[i].kind == LoggedOp::kTruncate || (rng() & 1))
                apply_logged(image, log_[i]);
        expect_after(initial, flush_end, end);

        auto* mem = new MemoryNode(std::move(image));
        NodeRef mem_ref(mem);
        std::string where = "crash point " + std::to_string(flush_end) + ".." +
                            std::to_string(end) + (drop_some ? " (some writes dropped)" : "");
        auto blk = open_on(mem_ref, filename, false);
        if (!blk.ok()) {
            ADD_FAILURE() << where << ": open failed: " << blk.error().to_string();
            return;
        }
        std::vector<uint8_t>& got = got_;
        got.resize(initial.size());
        Status s = (*blk)->pread(0, got.data(), got.size());
        if (!s.ok()) {
            ADD_FAILURE() << where << ": read failed: " << s.error().to_string();
            return;
        }
        for (uint64_t off = 0; off < got.size(); off += kSector) {
            if (std::memcmp(got.data() + off, settled_.data() + off, kSector) == 0) continue;
            bool explained = false;
            for (const GuestOp* op : in_flight_) {
                if (off < op->offset || off >= op->offset + op->length) continue;
                std::vector<uint8_t> value(kSector, 0);
                if (op->kind == GuestOp::kWrite)
                    std::memcpy(value.data(), op->data.data() + (off - op->offset), kSector);
                if (std::memcmp(got.data() + off, value.data(), kSector) == 0) explained = true;
            }
            if (!explained) {
                ADD_FAILURE() << where << ": sector at " << off
                              << " holds neither the acknowledged data nor an in-flight write";
                return;
            }
        }
        CheckResult r;
        s = run_sync([&] { return (*blk)->root()->co_check(r, CheckFix::kNone); });
        EXPECT_TRUE(s.ok() && r.corruptions == 0 && r.check_errors == 0)
            << where << ": check found " << r.corruptions << " corruptions";
        blk->reset();
        image_ = std::move(mem->bytes());
    }

    // Checks every prefix ending at a flush and `random_points` random
    // prefixes; every `qemu_every`th point also goes through qemu-img check.
    int check_all(const std::vector<std::byte>& base, const std::string& filename,
                  const std::vector<uint8_t>& initial, int random_points, int qemu_every) {
        std::mt19937 rng(7);
        struct Point {
            size_t flush_end, end;
            bool drop;
        };
        std::vector<Point> points;
        size_t last_flush = 0;
        for (size_t i = 0; i < log_.size(); ++i) {
            if (log_[i].kind == LoggedOp::kFlush) {
                last_flush = i + 1;
                points.push_back({last_flush, last_flush, false});
            }
        }
        points.push_back({last_flush, log_.size(), false});
        for (int k = 0; k < random_points; ++k) {
            const size_t end = std::uniform_int_distribution<size_t>(0, log_.size())(rng);
            size_t flush_end = 0;
            for (size_t i = 0; i < end; ++i)
                if (log_[i].kind == LoggedOp::kFlush) flush_end = i + 1;
            points.push_back({flush_end, end, (k & 1) != 0});
        }
        const bool qemu = have_qemu() && qemu_every > 0;
        int checked = 0, qemu_checked = 0;
        for (size_t p = 0; p < points.size(); ++p) {
            check_crash_point(base, filename, initial, points[p].flush_end, points[p].end, rng,
                              points[p].drop);
            if (HasFailure()) return checked;
            ++checked;
            if (qemu && p % qemu_every == 0) {
                const std::string img = dir_.path("crash.vhdx");
                std::remove(img.c_str());
                write_at_new(img, image_);
                std::string out;
                EXPECT_EQ(run("qemu-img check -f vhdx " + img, &out), 0)
                    << "crash point " << points[p].flush_end << ".." << points[p].end << ": "
                    << out;
                ++qemu_checked;
            }
        }
        std::printf(
            "[ crash    ] %zu recorded writes/flushes, %d crash points checked, %d of "
            "them by qemu-img check\n",
            log_.size(), checked, qemu_checked);
        return checked;
    }

    static void write_at_new(const std::string& path, const std::vector<std::byte>& bytes) {
        int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) return;
        (void)!pwrite(fd, bytes.data(), bytes.size(), 0);
        close(fd);
    }

    EventLoop loop_;
    EventLoop::Scope scope_{loop_};
    TempDir dir_;
    std::vector<GuestOp> ops_;
    std::vector<LoggedOp> log_;
    std::vector<std::byte> image_;
    std::vector<uint8_t> got_, settled_;
    std::vector<const GuestOp*> in_flight_;
};

std::vector<std::byte> as_bytes(const std::vector<uint8_t>& v) {
    std::vector<std::byte> out(v.size());
    std::memcpy(out.data(), v.data(), v.size());
    return out;
}

TEST_F(VhdxCrashTest, DynamicImageSurvivesEveryCrashPoint) {
    constexpr uint64_t kSize = 16 * kMiB;
    const std::string path = dir_.path("base.vhdx");
    qapi::OptionsTree o;
    o.set("block_size", "1M");
    o.set("log_size", "1M");
    ASSERT_TRUE(create_vhdx(path, kSize, o).ok());
    const auto base = as_bytes(read_whole_file(path));
    run_workload(base, path, kSize, 1, 60, true);
    if (HasFatalFailure()) return;
    const int checked = check_all(base, path, std::vector<uint8_t>(kSize, 0), 60, 10);
    EXPECT_GT(checked, 100);
}

TEST_F(VhdxCrashTest, DifferencingImageSurvivesEveryCrashPoint) {
    // Partially present blocks: every small write also updates a sector
    // bitmap through the log.
    constexpr uint64_t kSize = 16 * kMiB;
    const std::string parent = dir_.path("parent.vhdx");
    const std::string child = dir_.path("child.vhdx");
    qapi::OptionsTree o;
    o.set("block_size", "1M");
    o.set("log_size", "1M");
    ASSERT_TRUE(create_vhdx(parent, kSize, o).ok());
    const auto parent_data = pattern(kSize, 99);
    {
        auto blk = open_vhdx(parent, false);
        ASSERT_TRUE(blk.ok());
        ASSERT_TRUE((*blk)->pwrite(0, parent_data.data(), parent_data.size()).ok());
    }
    ASSERT_TRUE(create_vhdx(child, 0, o, parent).ok());
    const auto base = as_bytes(read_whole_file(child));
    run_workload(base, child, kSize, 2, 45, false);
    if (HasFatalFailure()) return;
    // QEMU cannot open differencing images: our check only.
    const int checked = check_all(base, child, parent_data, 60, 0);
    EXPECT_GT(checked, 100);
}

}  // namespace
}  // namespace coblock
