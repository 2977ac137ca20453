// `coblock-img bench`: qemu-img 7.2's img_bench with the same flags, defaults,
// output lines and flush rules (bench_cb), run as `depth` coroutines that each
// loop over "take the next offset, read or write, count". Output and error
// texts: specs/qemu-img-output.md §8.
#include <getopt.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "block/backend.h"
#include "block/iovec.h"
#include "coroutine/co_queue.h"
#include "coroutine/coroutine.h"
#include "coroutine/event_loop.h"
#include "tools/img/commands.h"
#include "tools/img/options.h"

namespace coblock::img {
namespace {

enum : int {
    kOptionFlushInterval = kOptionFirstOwn,
    kOptionPattern,
    kOptionNoDrain,
};

struct BenchConfig {
    int count = 75000;
    int depth = 64;
    int64_t offset = 0;
    int bufsize = 4096;
    int step = 0;  // 0: the request size
    int pattern = 0;
    int flush_interval = 0;
    bool drain_on_flush = true;
    bool write = false;
};

// A failed request ends the run at once, as qemu-img's bench_cb does; the
// coroutines still suspended have nothing worth unwinding.
[[noreturn]] void fail_request(const char* what, const Error& error) {
    error_report(std::string(what) + ": " + std::strerror(error.as_errno()));
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(EXIT_FAILURE);
}

class BenchRun {
  public:
    BenchRun(BlockBackend& blk, const BenchConfig& config)
        : blk_(blk),
          config_(config),
          image_size_(blk.length()),
          next_offset_(static_cast<uint64_t>(config.offset)),
          to_submit_(config.count) {
        // One buffer per request in flight, filled once: the run itself
        // allocates nothing.
        const int workers = std::min(config.depth, config.count);
        buffers_.reserve(static_cast<size_t>(workers));
        for (int i = 0; i < workers; ++i) {
            buffers_.emplace_back(static_cast<size_t>(config.bufsize));
            std::memset(buffers_.back().data(), config.pattern, buffers_.back().size());
        }
    }

    // Runs the benchmark; returns the seconds from the first submission to
    // the last completion. A flush still running then (the final one, or
    // undrained ones) is waited for afterwards, outside the timing, as
    // qemu-img's blk_unref does.
    double run() {
        EventLoop& loop = blk_.loop();
        EventLoop::Scope scope(loop);
        const int64_t start = EventLoop::now_ns();
        workers_running_ = static_cast<int>(buffers_.size());
        for (size_t i = 0; i < buffers_.size(); ++i)
            spawn([this, i] { co_worker(i); });
        loop.run_until([this] { return completed_ == config_.count; });
        const int64_t end = EventLoop::now_ns();
        loop.run_until([this] { return workers_running_ == 0 && flushes_running_ == 0; });
        return static_cast<double>(end - start) / 1e9;
    }

  private:
    uint64_t take_offset() {
        const uint64_t offset = next_offset_;
        next_offset_ += static_cast<uint64_t>(config_.step);
        if (image_size_ != 0) next_offset_ %= image_size_;  // qemu-img divides by zero here
        return offset;
    }

    void co_worker(size_t index) {
        IoVector qiov(buffers_[index].data(), buffers_[index].size());
        const uint64_t bytes = qiov.size();
        for (;;) {
            while (draining_)
                drain_waiters_.co_wait();
            if (to_submit_ == 0) break;
            const uint64_t offset = take_offset();
            --to_submit_;
            ++in_flight_;
            Status status = config_.write ? blk_.co_pwritev(offset, bytes, qiov)
                                          : blk_.co_preadv(offset, bytes, qiov);
            if (!status) fail_request("Failed request", status.error());
            --in_flight_;
            ++completed_;
            // bench_cb: flush when the count of requests not yet submitted
            // is a multiple of the interval (so also at the end).
            if (config_.flush_interval != 0 && to_submit_ % config_.flush_interval == 0)
                co_flush_point();
        }
        --workers_running_;
    }

    void co_flush_point() {
        if (!config_.drain_on_flush) {
            ++flushes_running_;
            spawn([this] {
                Status status = blk_.co_flush();
                if (!status) fail_request("Failed flush request", status.error());
                --flushes_running_;
            });
            return;
        }
        // Stop submitting; the last request to complete issues the flush
        // and lets everyone go on.
        draining_ = true;
        if (in_flight_ != 0) return;
        Status status = blk_.co_flush();
        if (!status) fail_request("Failed request", status.error());
        draining_ = false;
        drain_waiters_.wake_all();
    }

    BlockBackend& blk_;
    const BenchConfig config_;
    const uint64_t image_size_;
    std::vector<AlignedBuffer> buffers_;
    uint64_t next_offset_;
    int to_submit_;  // requests not yet submitted
    int in_flight_ = 0;
    int completed_ = 0;
    int workers_running_ = 0;
    int flushes_running_ = 0;
    bool draining_ = false;  // a drained flush is pending: submit nothing
    CoQueue drain_waiters_;
};

// qemu_strtoul-based options: -c, -d, --pattern, --flush-interval.
bool parse_bounded(const char* text, unsigned long max, int* out) {
    std::optional<unsigned long> value = parse_ulong(text);
    if (!value || *value > max) return false;
    *out = static_cast<int>(*value);
    return true;
}

}  // namespace

int img_bench(int argc, char** argv) {
    static const struct option kLongOptions[] = {
        {"help", no_argument, nullptr, 'h'},
        {"flush-interval", required_argument, nullptr, kOptionFlushInterval},
        {"image-opts", no_argument, nullptr, kOptionImageOpts},
        {"pattern", required_argument, nullptr, kOptionPattern},
        {"no-drain", no_argument, nullptr, kOptionNoDrain},
        {"force-share", no_argument, nullptr, 'U'},
        {nullptr, 0, nullptr, 0},
    };
    BenchConfig config;
    ImageSpec spec;
    spec.flags.read_only = true;  // -w makes it read-write
    int c;
    while ((c = getopt_long(argc, argv, ":hc:d:f:ni:o:qs:S:t:wU", kLongOptions, nullptr)) != -1) {
        if (handle_shared_option(c, argv, &spec)) continue;
        switch (c) {
            case 'c':
                if (!parse_bounded(optarg, INT_MAX, &config.count)) {
                    error_report("Invalid request count specified");
                    return 1;
                }
                break;
            case 'd':
                if (!parse_bounded(optarg, INT_MAX, &config.depth)) {
                    error_report("Invalid queue depth specified");
                    return 1;
                }
                break;
            case 'n':
                spec.flags.aio = AioMode::kNative;
                break;
            case 'i':
                if (!parse_aio_mode(optarg, spec.flags.aio)) {
                    error_report(std::string("Invalid aio option: ") + optarg);
                    return 1;
                }
                break;
            case 'o': {
                std::optional<int64_t> offset = cvtnum("offset", optarg);
                if (!offset) return 1;
                config.offset = *offset;
                break;
            }
            case 'q':
                break;  // accepted; bench prints its lines regardless (as qemu-img)
            case 's': {
                std::optional<int64_t> size = cvtnum("buffer size", optarg, 0, INT_MAX);
                if (!size) return 1;
                config.bufsize = static_cast<int>(*size);
                break;
            }
            case 'S': {
                std::optional<int64_t> step = cvtnum("step_size", optarg, 0, INT_MAX);
                if (!step) return 1;
                config.step = static_cast<int>(*step);
                break;
            }
            case 't':
                if (!parse_cache_mode(optarg, spec.flags)) {
                    error_report("Invalid cache mode");
                    return 1;
                }
                break;
            case 'w':
                spec.flags.read_only = false;
                config.write = true;
                break;
            case kOptionPattern:
                if (!parse_bounded(optarg, 0xff, &config.pattern)) {
                    error_report("Invalid pattern byte specified");
                    return 1;
                }
                break;
            case kOptionFlushInterval:
                if (!parse_bounded(optarg, INT_MAX, &config.flush_interval)) {
                    error_report("Invalid flush interval specified");
                    return 1;
                }
                break;
            case kOptionNoDrain:
                config.drain_on_flush = false;
                break;
        }
    }
    if (optind != argc - 1) error_exit("Expecting one image file name");
    spec.filename = argv[argc - 1];

    if (!config.write && config.flush_interval != 0) {
        error_report("--flush-interval is only available in write tests");
        return 1;
    }
    if (config.flush_interval != 0 && config.flush_interval < config.depth) {
        error_report("Flush interval can't be smaller than depth");
        return 1;
    }
    // qemu-img accepts -d 0 and then waits forever for requests it never
    // sends; refuse it instead.
    if (config.depth == 0 && config.count != 0) {
        error_report("Invalid queue depth specified");
        return 1;
    }

    std::unique_ptr<BlockBackend> blk = open_image(spec);
    if (!blk) return 1;

    if (config.step == 0) config.step = config.bufsize;
    std::printf(
        "Sending %d %s requests, %d bytes each, %d in parallel (starting at offset %lld, step "
        "size %d)\n",
        config.count, config.write ? "write" : "read", config.bufsize, config.depth,
        static_cast<long long>(config.offset), config.step);
    if (config.flush_interval != 0)
        std::printf("Sending flush every %d requests\n", config.flush_interval);
    std::fflush(stdout);

    BenchRun bench(*blk, config);
    const double seconds = bench.run();
    std::printf("Run completed in %3.3f seconds.\n", seconds);
    return 0;
}

}  // namespace coblock::img
