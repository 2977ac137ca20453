// Helpers for the qcow2 driver tests: a scratch directory, creating and
// opening images through the block layer, a shadow-buffer comparison and
// running qemu-img / qemu-io (tests that need them skip when missing).
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "block/backend.h"
#include "block/check.h"
#include "block/create.h"
#include "block/driver.h"
#include "coroutine/event_loop.h"
#include "coroutine/run_sync.h"
#include "tests/unit/drivers/file/file_test_util.h"

namespace coblock::testing {

inline bool have_tool(const char* path) {
    return access(path, X_OK) == 0;
}

// Runs a shell command; returns its exit status (-1 if it did not exit).
inline int run_command(const std::string& cmd) {
    int st = std::system((cmd + " >/dev/null 2>&1").c_str());
    if (st == -1 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

inline std::string run_output(const std::string& cmd) {
    std::string out;
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    if (!p) return out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
        out.append(buf, n);
    pclose(p);
    return out;
}

inline Result<std::unique_ptr<BlockBackend>> open_qcow2(const std::string& path,
                                                        bool read_only = false,
                                                        qapi::OptionsTree options = {}) {
    options.set("driver", "qcow2");
    OpenFlags flags;
    flags.read_only = read_only;
    return BlockBackend::open(path, std::move(options), flags);
}

inline Status create_qcow2(const std::string& path, uint64_t size, qapi::OptionsTree options = {},
                           const std::string& backing = {}, const std::string& backing_fmt = {}) {
    block_layer_init();
    return create_image("qcow2", path, size, std::move(options), backing, backing_fmt);
}

inline Result<CheckResult> check_image(BlockBackend& blk, CheckFix fix = CheckFix::kNone) {
    CheckResult result;
    Status st = run_sync([&] { return blk.root()->co_check(result, fix); });
    if (!st.ok()) return std::move(st).error();
    return result;
}

}  // namespace coblock::testing

// Asserts a Status/Result is ok, printing its error otherwise.
#define QCOW2_ASSERT_OK(expr)                                     \
    do {                                                          \
        auto status_ = (expr);                                    \
        ASSERT_TRUE(status_.ok()) << status_.error().to_string(); \
    } while (0)
