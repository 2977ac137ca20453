// `coblock-img compare`: qemu-img 7.2's img_compare (compare_buffers,
// check_empty_sectors): block status of both images through their backing
// chains, reads of what is allocated, 512-byte sector granularity for the
// mismatch offset; exit 0 identical, 1 different, 2 open error, 3 block
// status error, 4 read error. Texts: specs/qemu-img-output.md §6, §9.
#include <getopt.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "block/io.h"
#include "coroutine/run_sync.h"
#include "qapi/json_output.h"
#include "tools/img/commands.h"
#include "tools/img/options.h"

namespace coblock::img {
namespace {

constexpr int64_t kIoBufSize = 2 * 1024 * 1024;
constexpr int64_t kSectorSize = 512;

struct Image {
    std::unique_ptr<BlockBackend> blk;
    std::string filename;
    int64_t size = 0;
};

// compare_buffers: whether the first sector differs, and in *pnum how many
// bytes from the start share that state.
bool compare_buffers(const std::byte* a, const std::byte* b, int64_t bytes, int64_t* pnum) {
    int64_t i = std::min(bytes, kSectorSize);
    const bool res = std::memcmp(a, b, static_cast<size_t>(i)) != 0;
    while (i < bytes) {
        const int64_t len = std::min(bytes - i, kSectorSize);
        if ((std::memcmp(a + i, b + i, static_cast<size_t>(len)) != 0) != res) break;
        i += len;
    }
    *pnum = i;
    return res;
}

int64_t find_nonzero(const std::byte* buf, int64_t n) {
    for (int64_t i = 0; i < n; i += kSectorSize) {
        const int64_t len = std::min(kSectorSize, n - i);
        for (int64_t j = 0; j < len; ++j)
            if (buf[i + j] != std::byte{0}) return i;
    }
    return -1;
}

class Comparer {
  public:
    Comparer(Image& a, Image& b, bool strict, bool quiet, bool progress, bool json)
        : a_(a),
          b_(b),
          strict_(strict),
          quiet_(quiet),
          json_(json),
          progress_(progress && !quiet && !json, 2.0f) {}

    int run() {
        buf1_.resize(kIoBufSize);
        buf2_.resize(kIoBufSize);
        result_["identical"] = false;
        result_["size-mismatch"] = a_.size != b_.size;
        const int ret = compare();
        progress_.end();
        // coblock extension: --output=json prints the verdict as one object
        // (only when the comparison itself completed: exit 0 or 1).
        if (json_ && !quiet_ && ret <= 1)
            std::printf("%s\n", qapi::to_qemu_json_pretty(result_).c_str());
        return ret;
    }

  private:
    void mismatch(const char* kind, int64_t offset) {
        result_["mismatch"] = kind;
        if (offset >= 0) result_["offset"] = offset;
    }

    // Human messages; in JSON mode the same facts go into result_.
    void say(const std::string& text) {
        if (json_) return;
        if (!quiet_) {
            std::fputs(text.c_str(), stdout);
            std::fflush(stdout);
        }
    }

    int read(Image& img, int64_t offset, int64_t bytes, std::byte* buf) {
        Status status =
            img.blk->pread(static_cast<uint64_t>(offset), buf, static_cast<size_t>(bytes));
        if (!status) {
            error_report("Error while reading offset " + std::to_string(offset) + " of " +
                         img.filename + ": " + std::strerror(status.error().as_errno()));
            return 4;
        }
        return 0;
    }

    int check_empty(Image& img, int64_t offset, int64_t bytes) {
        if (int ret = read(img, offset, bytes, buf1_.data())) return ret;
        const int64_t idx = find_nonzero(buf1_.data(), bytes);
        if (idx >= 0) {
            say("Content mismatch at offset " + std::to_string(offset + idx) + "!\n");
            mismatch("content", offset + idx);
            return 1;
        }
        return 0;
    }

    Result<BlockStatus> status_of(Image& img, int64_t offset, int64_t bytes) {
        BlockNode* top = img.blk->root();
        return run_sync([&] {
            return co_block_status_above(top, nullptr, static_cast<uint64_t>(offset),
                                         static_cast<uint64_t>(bytes), true);
        });
    }

    int compare() {
        const int64_t total = std::min(a_.size, b_.size);
        const int64_t progress_base = std::max(a_.size, b_.size);
        progress_.print(0, 100);
        if (strict_ && a_.size != b_.size) {
            say("Strict mode: Image size mismatch!\n");
            mismatch("size", -1);
            return 1;
        }
        int64_t offset = 0;
        while (offset < total) {
            Result<BlockStatus> s1 = status_of(a_, offset, a_.size - offset);
            if (!s1 || s1->bytes == 0) {
                error_report("Sector allocation test failed for " + a_.filename);
                return 3;
            }
            Result<BlockStatus> s2 = status_of(b_, offset, b_.size - offset);
            if (!s2 || s2->bytes == 0) {
                error_report("Sector allocation test failed for " + b_.filename);
                return 3;
            }
            // Strict mode compares QEMU's whole status word, EOF bit
            // included (so a run reaching the end differs from one that
            // does not).
            const uint32_t kCompared = kStatusData | kStatusZero | kStatusAllocated |
                                       kStatusOffsetValid | kStatusCompressed | kStatusEof;
            const bool allocated1 = s1->flags & kStatusAllocated;
            const bool allocated2 = s2->flags & kStatusAllocated;
            int64_t chunk = static_cast<int64_t>(std::min(s1->bytes, s2->bytes));
            if (strict_ && (s1->flags & kCompared) != (s2->flags & kCompared)) {
                say("Strict mode: Offset " + std::to_string(offset) + " block status mismatch!\n");
                mismatch("block-status", offset);
                return 1;
            }
            if ((s1->flags & kStatusZero) && (s2->flags & kStatusZero)) {
                // both read as zeros
            } else if (allocated1 == allocated2) {
                if (allocated1) {
                    chunk = std::min(chunk, kIoBufSize);
                    if (int ret = read(a_, offset, chunk, buf1_.data())) return ret;
                    if (int ret = read(b_, offset, chunk, buf2_.data())) return ret;
                    int64_t pnum = 0;
                    const bool differ = compare_buffers(buf1_.data(), buf2_.data(), chunk, &pnum);
                    if (differ || pnum != chunk) {
                        say("Content mismatch at offset " +
                            std::to_string(offset + (differ ? 0 : pnum)) + "!\n");
                        mismatch("content", offset + (differ ? 0 : pnum));
                        return 1;
                    }
                }
            } else {
                chunk = std::min(chunk, kIoBufSize);
                if (int ret = check_empty(allocated1 ? a_ : b_, offset, chunk)) return ret;
            }
            offset += chunk;
            progress_.print(static_cast<float>(chunk) / static_cast<float>(progress_base) * 100,
                            100);
        }
        if (a_.size != b_.size) {
            say("Warning: Image size mismatch!\n");
            result_["size-mismatch"] = true;
            Image& over = a_.size > b_.size ? a_ : b_;
            while (offset < progress_base) {
                Result<BlockStatus> s = status_of(over, offset, progress_base - offset);
                if (!s || s->bytes == 0) {
                    error_report("Sector allocation test failed for " + over.filename);
                    return 3;
                }
                int64_t chunk = static_cast<int64_t>(s->bytes);
                if ((s->flags & kStatusAllocated) && !(s->flags & kStatusZero)) {
                    chunk = std::min(chunk, kIoBufSize);
                    if (int ret = check_empty(over, offset, chunk)) return ret;
                }
                offset += chunk;
                progress_.print(static_cast<float>(chunk) / static_cast<float>(progress_base) * 100,
                                100);
            }
        }
        say("Images are identical.\n");
        result_["identical"] = true;
        return 0;
    }

    Image& a_;
    Image& b_;
    bool strict_;
    bool quiet_;
    bool json_;
    Progress progress_;
    nlohmann::ordered_json result_ = nlohmann::ordered_json::object();
    std::vector<std::byte> buf1_;
    std::vector<std::byte> buf2_;
};

}  // namespace

int img_compare(int argc, char** argv) {
    static const struct option kLongOptions[] = {
        {"help", no_argument, nullptr, 'h'},
        {"object", required_argument, nullptr, kOptionObject},
        {"image-opts", no_argument, nullptr, kOptionImageOpts},
        {"force-share", no_argument, nullptr, 'U'},
        {"output", required_argument, nullptr, kOptionOutput},
        {nullptr, 0, nullptr, 0},
    };
    bool json = false;
    ImageSpec spec1;
    ImageSpec spec2;
    spec1.flags.read_only = spec2.flags.read_only = true;
    bool strict = false;
    bool quiet = false;
    bool progress = false;
    int c;
    while ((c = getopt_long(argc, argv, ":hf:F:T:pqsU", kLongOptions, nullptr)) != -1) {
        if (handle_shared_option(c, argv, nullptr)) continue;
        switch (c) {
            case 'f':
                spec1.format = optarg;
                break;
            case 'F':
                spec2.format = optarg;
                break;
            case 'T':
                if (!parse_cache_mode(optarg, spec1.flags)) {
                    error_report(std::string("Invalid source cache option: ") + optarg);
                    return 2;
                }
                parse_cache_mode(optarg, spec2.flags);
                break;
            case 'p':
                progress = true;
                break;
            case 'q':
                quiet = true;
                break;
            case 's':
                strict = true;
                break;
            case 'U':
                spec1.flags.force_share = spec2.flags.force_share = true;
                break;
            case kOptionImageOpts:
                spec1.image_opts = spec2.image_opts = true;
                break;
            case kOptionOutput:
                if (!parse_output_format(optarg, &json)) return 1;
                break;
        }
    }
    if (quiet) progress = false;
    if (optind != argc - 2) error_exit("Expecting two image file names");
    spec1.filename = argv[optind];
    spec2.filename = argv[optind + 1];

    Image a;
    Image b;
    a.filename = spec1.filename;
    b.filename = spec2.filename;
    a.blk = open_image_for_reading(spec1);
    if (!a.blk) return 2;
    b.blk = open_image_for_reading(spec2);
    if (!b.blk) return 2;
    a.size = static_cast<int64_t>(a.blk->length());
    b.size = static_cast<int64_t>(b.blk->length());
    Comparer comparer(a, b, strict, quiet, progress, json);
    return comparer.run();
}

}  // namespace coblock::img
