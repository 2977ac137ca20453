// qcow image creation through the driver (BlockDriver::co_create) on temp
// files: the layout, the options qemu-img takes, refusing encryption.
#include <gtest/gtest.h>

#include "block/create.h"
#include "qcow_test_util.h"
#include "tests/unit/drivers/file/file_test_util.h"

namespace coblock::qcow {
namespace {

using namespace coblock::qcow::testing;
using coblock::testing::TempDir;

std::vector<std::byte> file_bytes(const std::string& path) {
    const uint64_t size = coblock::testing::file_size(path);
    auto raw = coblock::testing::read_file(path, 0, size);
    std::vector<std::byte> out(raw.size());
    std::memcpy(out.data(), raw.data(), raw.size());
    return out;
}

TEST(QcowCreate, PlainAndWithBackingMatchTheLayout) {
    TempDir dir;
    ASSERT_TRUE(dir.ok());
    const std::string plain = dir.path("plain.qcow");
    ASSERT_TRUE(create_image("qcow", plain, 100 << 20, {}).ok());
    EXPECT_EQ(file_bytes(plain), new_image(100 << 20));
    EXPECT_EQ(coblock::testing::file_size(plain), 560u);

    const std::string top = dir.path("top.qcow");
    qapi::OptionsTree options;
    options.set("backing_file", "plain.qcow");
    options.set("backing_fmt", "qcow");
    Status s = create_image("qcow", top, 100 << 20, options, "plain.qcow", "qcow");
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_EQ(file_bytes(top), new_image(100 << 20, "plain.qcow"));

    // It opens, with the backing file found next to it.
    auto blk = BlockBackend::open(top, {}, OpenFlags{});
    ASSERT_TRUE(blk.ok()) << blk.error().message;
    EXPECT_EQ((*blk)->root()->driver().name, "qcow");
    ASSERT_NE((*blk)->root()->backing(), nullptr);
    EXPECT_EQ((*blk)->root()->backing()->node()->driver().name, "qcow");
    EXPECT_EQ((*blk)->length(), uint64_t{100} << 20);
}

TEST(QcowCreate, SizeRoundsUpAndZeroIsRefused) {
    TempDir dir;
    const std::string path = dir.path("a.qcow");
    ASSERT_TRUE(create_image("qcow", path, 1000, {}).ok());
    auto blk = BlockBackend::open(path, {}, OpenFlags{});
    ASSERT_TRUE(blk.ok()) << blk.error().message;
    EXPECT_EQ((*blk)->length(), 1024u);
    blk->reset();
    EXPECT_FALSE(create_image("qcow", dir.path("b.qcow"), 0, {}).ok());
}

TEST(QcowCreate, EncryptionIsRefused) {
    TempDir dir;
    qapi::OptionsTree options;
    options.set("encryption", "on");
    Status s = create_image("qcow", dir.path("e.qcow"), 1 << 20, options);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().message, "Parameter 'encrypt.key-secret' is required for cipher");
    qapi::OptionsTree with_secret;
    with_secret.set("encrypt.format", "aes");
    with_secret.set("encrypt.key-secret", "sec0");
    s = create_image("qcow", dir.path("e.qcow"), 1 << 20, with_secret);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().kind, ErrorKind::kUnsupported);
}

TEST(QcowCreate, UnknownOptionIsRefused) {
    TempDir dir;
    qapi::OptionsTree options;
    options.set("cluster_size", "65536");
    Status s = create_image("qcow", dir.path("c.qcow"), 1 << 20, options);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().message, "Invalid parameter 'cluster_size'");
}

}  // namespace
}  // namespace coblock::qcow
