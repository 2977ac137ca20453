// Helpers for the vhdx driver tests: scratch directories, running qemu-img /
// qemu-io (the oracle), opening images through the graph, a test-local fault
// filter that fails every write after a trigger (to stop the driver between
// writing and applying its log), and a driver for images opened on top of it.
#pragma once

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "block/backend.h"
#include "block/driver.h"
#include "block/graph.h"
#include "block/io.h"
#include "coroutine/run_sync.h"
#include "drivers/vhdx/vhdx_node.h"
#include "qapi/options_tree.h"

namespace coblock::vhdx_test {

class TempDir {
  public:
    TempDir() {
        std::string tmpl = "/tmp/coblock-vhdx-XXXXXX";
        if (mkdtemp(tmpl.data()) != nullptr) dir_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    bool ok() const { return !dir_.empty(); }
    std::string path(const std::string& name) const { return dir_ + "/" + name; }
    const std::string& dir() const { return dir_; }

  private:
    std::string dir_;
};

inline bool have_qemu() {
    return access("/usr/bin/qemu-img", X_OK) == 0 && access("/usr/bin/qemu-io", X_OK) == 0;
}

// Runs a shell command; returns its exit status and (optionally) stdout+stderr.
inline int run(const std::string& command, std::string* output = nullptr) {
    FILE* p = popen((command + " 2>&1").c_str(), "r");
    if (!p) return -1;
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
        out.append(buf, n);
    int status = pclose(p);
    if (output) *output = out;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

inline std::vector<uint8_t> read_whole_file(const std::string& path) {
    std::vector<uint8_t> out;
    int fd = open(path.c_str(), O_RDONLY);
    if (fd < 0) return out;
    struct stat st;
    fstat(fd, &st);
    out.resize(static_cast<size_t>(st.st_size));
    size_t done = 0;
    while (done < out.size()) {
        ssize_t n = pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(done));
        if (n <= 0) break;
        done += static_cast<size_t>(n);
    }
    close(fd);
    return out;
}

inline void write_at(const std::string& path, uint64_t offset, const void* data, size_t bytes) {
    int fd = open(path.c_str(), O_RDWR);
    if (fd >= 0) {
        (void)!pwrite(fd, data, bytes, static_cast<off_t>(offset));
        close(fd);
    }
}

inline Result<std::unique_ptr<BlockBackend>> open_vhdx(const std::string& path, bool read_only,
                                                       qapi::OptionsTree options = {}) {
    options.set("driver", "vhdx");
    OpenFlags flags;
    flags.read_only = read_only;
    // Durability is not under test (crashes are simulated by the fault
    // filter); skipping fsync keeps the programs fast.
    flags.cache_no_flush = true;
    return BlockBackend::open(path, std::move(options), flags);
}

inline VhdxNode* vhdx_node(const BlockBackend& blk) {
    return dynamic_cast<VhdxNode*>(blk.root());
}

inline Status create_vhdx(const std::string& path, uint64_t size, qapi::OptionsTree options = {},
                          const std::string& backing = {}) {
    return create_image("vhdx", path, size, std::move(options), backing,
                        backing.empty() ? "" : "vhdx");
}

// Deterministic bytes for a write: depend on the seed and the position.
inline std::vector<uint8_t> pattern(size_t bytes, uint32_t seed) {
    std::vector<uint8_t> out(bytes);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < bytes; ++i) {
        x = x * 1103515245u + 12345u;
        out[i] = static_cast<uint8_t>(x >> 16);
    }
    return out;
}

// ---- Fault filter -------------------------------------------------------------

inline const BlockDriver kFaultDriver{.name = "vhdx-test-fault", .kind = DriverKind::kFilter};

// Passes I/O to its child until tripped; a write that touches
// [trip_offset, trip_offset + trip_length) trips it after it completes (or a
// write count reaches trip_after_writes), and from then on every write,
// zero write and truncate fails with EIO, as if the machine had stopped.
class FaultNode final : public BlockNode {
  public:
    FaultNode() : BlockNode(kFaultDriver) {}

    uint64_t trip_offset = 0;
    uint64_t trip_length = 0;
    int64_t trip_after_writes = -1;
    bool tripped = false;
    int64_t writes = 0;

    Status co_preadv(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) override {
        return co_child_preadv(file(), offset, bytes, qiov, flags);
    }
    Status co_pwritev(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) override {
        if (tripped) return stopped();
        TRY(co_child_pwritev(file(), offset, bytes, qiov, flags));
        after_write(offset, bytes);
        return {};
    }
    Status co_pwrite_zeroes(uint64_t offset, uint64_t bytes, uint32_t flags) override {
        if (tripped) return stopped();
        TRY(co_child_pwrite_zeroes(file(), offset, bytes, flags));
        after_write(offset, bytes);
        return {};
    }
    Status co_truncate(uint64_t size, bool exact, Prealloc prealloc, bool shrink_ok) override {
        if (tripped) return stopped();
        TRY(co_child_truncate(file(), size, exact, prealloc, shrink_ok));
        set_size(file()->node()->size());
        return {};
    }
    bool is_filter() const override { return true; }

  private:
    static Status stopped() { return Error{ErrorKind::kIo, EIO, "fault filter: stopped", {}}; }
    void after_write(uint64_t offset, uint64_t bytes) {
        ++writes;
        if (trip_length && offset < trip_offset + trip_length && trip_offset < offset + bytes)
            tripped = true;
        if (trip_after_writes >= 0 && writes >= trip_after_writes) tripped = true;
    }
};

// A vhdx image opened read-write on a fault filter over the file.
struct FaultyImage {
    NodeRef file;
    NodeRef fault;
    NodeRef vhdx;
    std::unique_ptr<BlockBackend> blk;
    FaultNode* filter() const { return static_cast<FaultNode*>(fault.get()); }
};

inline Result<FaultyImage> open_faulty(const std::string& path) {
    FaultyImage img;
    qapi::OptionsTree file_options;
    file_options.set("driver", "file");
    OpenFlags flags;
    ASSIGN_OR_RETURN(img.file, run_sync([&] {
                         return co_open_node(path, std::move(file_options), flags, false);
                     }));
    auto* fault = new FaultNode();
    img.fault = NodeRef(fault);
    ASSIGN_OR_RETURN(auto edge, attach_child(fault, {}, img.file.get(), "file", kRoleFilteredChild,
                                             kPermAll, kPermConsistentRead));
    fault->adopt_child(std::move(edge));
    fault->set_size(img.file->size());
    fault->set_open_flags(flags);

    auto* vhdx = new VhdxNode(kVhdxDriver);
    img.vhdx = NodeRef(vhdx);
    ASSIGN_OR_RETURN(auto vedge, attach_child(vhdx, {}, fault, "file", kRoleFile, kPermAll,
                                              kPermConsistentRead));
    vhdx->adopt_child(std::move(vedge));
    vhdx->set_open_flags(flags);
    OpenContext ctx(path, {}, flags);
    TRY(run_sync([&] { return vhdx->co_init(ctx); }));
    ASSIGN_OR_RETURN(img.blk, BlockBackend::attach(vhdx, kPermAll, kPermConsistentRead));
    return img;
}

}  // namespace coblock::vhdx_test
