// Helpers for the file driver tests: a scratch directory that cleans up
// after itself, plain-POSIX access to the files under test, and opening a
// `file` protocol node as the root of a BlockBackend.
#pragma once

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "block/backend.h"
#include "block/driver.h"
#include "drivers/file/file_node.h"
#include "qapi/options_tree.h"

namespace coblock::testing {

// A fresh directory under `base` (/tmp is ext4 here: O_DIRECT, holes and
// fallocate work; /dev/shm is tmpfs).
class TempDir {
  public:
    explicit TempDir(const std::string& base = "/tmp") {
        std::string tmpl = base + "/coblock-file-XXXXXX";
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

// Creates (or truncates) `path` as a sparse file of `size` bytes.
inline void make_file(const std::string& path, uint64_t size) {
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        (void)!ftruncate(fd, static_cast<off_t>(size));
        close(fd);
    }
}

inline std::vector<uint8_t> read_file(const std::string& path, uint64_t offset, size_t bytes) {
    std::vector<uint8_t> out(bytes, 0xee);
    int fd = open(path.c_str(), O_RDONLY);
    if (fd >= 0) {
        (void)!pread(fd, out.data(), bytes, static_cast<off_t>(offset));
        close(fd);
    }
    return out;
}

inline void write_file(const std::string& path, uint64_t offset, const std::vector<uint8_t>& data) {
    int fd = open(path.c_str(), O_RDWR);
    if (fd >= 0) {
        (void)!pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
        close(fd);
    }
}

inline uint64_t file_size(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

inline uint64_t allocated_bytes(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_blocks) * 512 : 0;
}

// Opens `path` with driver=file as the backend's root (no format probing).
inline Result<std::unique_ptr<BlockBackend>> open_file_backend(const std::string& path,
                                                               const OpenFlags& flags,
                                                               qapi::OptionsTree options = {}) {
    options.set("driver", "file");
    return BlockBackend::open(path, std::move(options), flags);
}

inline FileNode* file_node(const BlockBackend& blk) {
    return dynamic_cast<FileNode*>(blk.root());
}

inline std::vector<uint8_t> pattern(size_t bytes, uint8_t seed) {
    std::vector<uint8_t> out(bytes);
    for (size_t i = 0; i < bytes; ++i)
        out[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 9));
    return out;
}

}  // namespace coblock::testing
