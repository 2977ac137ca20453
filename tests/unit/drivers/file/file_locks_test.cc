// OFD locks of the file driver: QEMU's byte layout, conflicts between two
// nodes of one process with QEMU's messages, force-share, locking=off,
// reopen without a lock gap, and interop against a real qemu-io (skipped
// when qemu-io is not installed).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "block/graph.h"
#include "coroutine/event_loop.h"
#include "coroutine/run_sync.h"
#include "tests/unit/drivers/file/file_test_util.h"

namespace coblock {
namespace {

using testing::make_file;
using testing::open_file_backend;
using testing::TempDir;

// Whether some other open file description holds `byte` of `path`.
bool byte_taken(const std::string& path, int byte) {
    int fd = open(path.c_str(), O_RDONLY);
    if (fd < 0) return false;
    struct flock fl = {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = byte;
    fl.l_len = 1;
    const bool taken = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
    close(fd);
    return taken;
}

std::string hint(const std::string& path) {
    return "\nIs another process using the image [" + path + "]?";
}

class FileLocksTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_TRUE(dir_.ok());
        path_ = dir_.path("locked.img");
        make_file(path_, 1 << 20);
    }
    OpenFlags rw() const { return OpenFlags{}; }
    OpenFlags ro(bool force_share = false) const {
        OpenFlags flags;
        flags.read_only = true;
        flags.force_share = force_share;
        return flags;
    }

    EventLoop loop_;
    EventLoop::Scope scope_{loop_};
    TempDir dir_;
    std::string path_;
};

TEST_F(FileLocksTest, HeldPermissionsUseQemuBytes) {
    auto blk = open_file_backend(path_, rw());
    ASSERT_TRUE(blk.ok()) << blk.error().to_string();
    // The backend holds consistent read, write and resize and shares only
    // consistent read and write-unchanged.
    EXPECT_TRUE(byte_taken(path_, 100));   // consistent read held
    EXPECT_TRUE(byte_taken(path_, 101));   // write held
    EXPECT_FALSE(byte_taken(path_, 102));  // write unchanged not held
    EXPECT_TRUE(byte_taken(path_, 103));   // resize held
    EXPECT_FALSE(byte_taken(path_, 200));  // consistent read shared
    EXPECT_TRUE(byte_taken(path_, 201));   // write not shared
    EXPECT_FALSE(byte_taken(path_, 202));  // write unchanged shared
    EXPECT_TRUE(byte_taken(path_, 203));   // resize not shared
    blk->reset();
    for (int byte : {100, 101, 103, 201, 203})
        EXPECT_FALSE(byte_taken(path_, byte)) << byte;
}

TEST_F(FileLocksTest, TwoWritersInOneProcessConflict) {
    auto first = open_file_backend(path_, rw());
    ASSERT_TRUE(first.ok()) << first.error().to_string();
    auto second = open_file_backend(path_, rw());
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.error().message, "Failed to get \"write\" lock" + hint(path_));
    EXPECT_EQ(second.error().kind, ErrorKind::kPermission);
    // The first writer is unharmed by the refused open.
    for (int byte : {100, 101, 103, 201, 203})
        EXPECT_TRUE(byte_taken(path_, byte)) << byte;
    first->reset();
    auto third = open_file_backend(path_, rw());
    EXPECT_TRUE(third.ok()) << third.error().to_string();
}

TEST_F(FileLocksTest, ReaderRefusesToShareWriteWithAWriter) {
    auto writer = open_file_backend(path_, rw());
    ASSERT_TRUE(writer.ok());
    auto reader = open_file_backend(path_, ro());
    ASSERT_FALSE(reader.ok());
    EXPECT_EQ(reader.error().message, "Failed to get shared \"write\" lock" + hint(path_));
}

TEST_F(FileLocksTest, WriterRefusedWhileAReaderRefusesToShare) {
    auto reader = open_file_backend(path_, ro());
    ASSERT_TRUE(reader.ok());
    auto writer = open_file_backend(path_, rw());
    ASSERT_FALSE(writer.ok());
    EXPECT_EQ(writer.error().message, "Failed to get \"write\" lock" + hint(path_));
}

TEST_F(FileLocksTest, ForceShareReadOnlyOpenSucceedsAndReads) {
    auto writer = open_file_backend(path_, rw());
    ASSERT_TRUE(writer.ok());
    std::vector<uint8_t> data(512, 0x5a);
    ASSERT_TRUE((*writer)->pwrite(0, data.data(), data.size()).ok());
    auto inspector = open_file_backend(path_, ro(/*force_share=*/true));
    ASSERT_TRUE(inspector.ok()) << inspector.error().to_string();
    std::vector<uint8_t> back(512);
    ASSERT_TRUE((*inspector)->pread(0, back.data(), back.size()).ok());
    EXPECT_EQ(back, data);
}

TEST_F(FileLocksTest, TwoReadersCoexist) {
    auto a = open_file_backend(path_, ro());
    auto b = open_file_backend(path_, ro());
    EXPECT_TRUE(a.ok());
    EXPECT_TRUE(b.ok());
}

TEST_F(FileLocksTest, LockingOffTakesNoLocks) {
    auto first = open_file_backend(path_, rw(), {{"locking", "off"}});
    ASSERT_TRUE(first.ok()) << first.error().to_string();
    EXPECT_FALSE(byte_taken(path_, 101));
    auto second = open_file_backend(path_, rw(), {{"locking", "off"}});
    EXPECT_TRUE(second.ok());
    // locking=on behaves as auto (OFD locks exist on Linux).
    auto third = open_file_backend(path_, rw(), {{"locking", "on"}});
    EXPECT_TRUE(third.ok());
    EXPECT_TRUE(byte_taken(path_, 101));
}

TEST_F(FileLocksTest, ReopenMovesLocksToTheNewDescriptor) {
    auto blk = open_file_backend(path_, rw());
    ASSERT_TRUE(blk.ok());
    BlockNode* node = (*blk)->root();
    Status s = run_sync(loop_, [&] { return co_reopen(node, true); });
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    // The parent still holds its permissions, so the bytes stay taken.
    EXPECT_TRUE(byte_taken(path_, 101));
    EXPECT_TRUE(byte_taken(path_, 201));
    EXPECT_FALSE(open_file_backend(path_, rw()).ok());
    s = run_sync(loop_, [&] { return co_reopen(node, false); });
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    std::vector<uint8_t> data(4096, 0x11);
    EXPECT_TRUE((*blk)->pwrite(0, data.data(), data.size()).ok());
    EXPECT_TRUE(byte_taken(path_, 201));
}

// ---- Interop with QEMU ---------------------------------------------------------

std::string find_qemu_io() {
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/bin:/bin";
    size_t start = 0;
    while (start <= dirs.size()) {
        size_t end = dirs.find(':', start);
        if (end == std::string::npos) end = dirs.size();
        std::string candidate = dirs.substr(start, end - start) + "/qemu-io";
        if (access(candidate.c_str(), X_OK) == 0) return candidate;
        start = end + 1;
    }
    return {};
}

// Runs a shell command; returns its exit status and merged output.
int run_command(const std::string& command, std::string* output) {
    FILE* pipe = popen((command + " 2>&1").c_str(), "r");
    if (!pipe) return -1;
    char buf[512];
    while (size_t n = fread(buf, 1, sizeof buf, pipe))
        output->append(buf, n);
    int status = pclose(pipe);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class QemuInteropTest : public FileLocksTest {
  protected:
    void SetUp() override {
        FileLocksTest::SetUp();
        qemu_io_ = find_qemu_io();
        if (qemu_io_.empty()) GTEST_SKIP() << "qemu-io not installed: QEMU lock interop not tested";
    }
    void TearDown() override {
        if (holder_ > 0) {
            kill(holder_, SIGKILL);
            waitpid(holder_, nullptr, 0);
        }
    }
    // Starts qemu-io holding the image read-write until killed.
    bool hold_with_qemu_io() {
        holder_ = fork();
        if (holder_ == 0) {
            int devnull = open("/dev/null", O_RDWR);
            dup2(devnull, 0);
            dup2(devnull, 1);
            dup2(devnull, 2);
            execl(qemu_io_.c_str(), "qemu-io", "-f", "raw", "-c", "sleep 20000", path_.c_str(),
                  static_cast<char*>(nullptr));
            _exit(127);
        }
        for (int i = 0; i < 500; ++i) {  // up to 5 s for qemu-io to take its locks
            if (byte_taken(path_, 101)) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return false;
    }

    std::string qemu_io_;
    pid_t holder_ = -1;
};

TEST_F(QemuInteropTest, CoblockRefusesAnImageQemuWrites) {
    ASSERT_TRUE(hold_with_qemu_io()) << "qemu-io did not lock the image";
    // qemu-io shares everything on a raw image but holds write: our writer
    // refuses to share write, so it must not open.
    auto blk = open_file_backend(path_, rw());
    ASSERT_FALSE(blk.ok());
    EXPECT_EQ(blk.error().message, "Failed to get shared \"write\" lock" + hint(path_));
    auto inspector = open_file_backend(path_, ro(/*force_share=*/true));
    EXPECT_TRUE(inspector.ok());
}

TEST_F(QemuInteropTest, QemuRefusesAnImageCoblockWrites) {
    auto blk = open_file_backend(path_, rw());
    ASSERT_TRUE(blk.ok());
    std::string out;
    int rc = run_command(qemu_io_ + " -f raw -c 'read 0 512' " + path_, &out);
    EXPECT_EQ(rc, 1);
    EXPECT_NE(out.find("Failed to get \"write\" lock\nIs another process using the image [" +
                       path_ + "]?"),
              std::string::npos)
        << out;
    out.clear();
    rc = run_command(qemu_io_ + " -r -U -f raw -c 'read 0 512' " + path_, &out);
    EXPECT_EQ(rc, 0) << out;
    blk->reset();
    out.clear();
    rc = run_command(qemu_io_ + " -f raw -c 'read 0 512' " + path_, &out);
    EXPECT_EQ(rc, 0) << out;
}

}  // namespace
}  // namespace coblock
