// Interop tests of the qcow version 1 codecs against qemu-img/qemu-io 7.2:
// our layouts must be byte-identical to qemu-img's and open in QEMU; images
// QEMU writes must parse. Skipped (with a message) when qemu-img is missing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "formats/qcow/qcow_create.h"
#include "formats/qcow/qcow_header.h"
#include "formats/qcow/qcow_tables.h"

namespace coblock::qcow {
namespace {

using ::testing::HasSubstr;

CreateOptions create_options(uint64_t size, std::string backing_file = {}) {
    CreateOptions options;
    options.size = size;
    options.backing_file = std::move(backing_file);
    return options;
}

struct CommandResult {
    int exit_status = -1;
    std::string output;  // stdout and stderr
};

CommandResult run(const std::string& command) {
    CommandResult result;
    FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
    if (!pipe) return result;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0)
        result.output.append(buf, n);
    int status = ::pclose(pipe);
    result.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

bool have_qemu_tools() {
    return run("command -v qemu-img").exit_status == 0 &&
           run("command -v qemu-io").exit_status == 0;
}

std::string quote(const std::string& s) {
    std::string q = "'";
    for (char c : s)
        q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

std::vector<std::byte> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::byte> bytes(chars.size());
    std::memcpy(bytes.data(), chars.data(), chars.size());
    return bytes;
}

// Writes a layout the way a driver would: writes in order, zeros to file_size.
void write_layout(const std::string& path, const CreateLayout& layout) {
    std::vector<std::byte> file(layout.file_size);
    for (const LayoutWrite& w : layout.writes)
        std::copy(w.bytes.begin(), w.bytes.end(), file.begin() + w.offset);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(file.data()), file.size());
}

class QcowInterop : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!have_qemu_tools())
            GTEST_SKIP() << "qemu-img/qemu-io not in PATH; interop test skipped";
        std::string tmpl = ::testing::TempDir() + "qcow_interop_XXXXXX";
        std::vector<char> buf(tmpl.begin(), tmpl.end());
        buf.push_back('\0');
        ASSERT_NE(::mkdtemp(buf.data()), nullptr);
        dir_ = buf.data();
    }
    void TearDown() override {
        if (!dir_.empty()) run("rm -rf " + quote(dir_));
    }
    std::string path(const std::string& name) const { return dir_ + "/" + name; }

    std::string dir_;
};

TEST_F(QcowInterop, LayoutIsByteIdenticalToQemuImgCreate) {
    struct Case {
        uint64_t size;
        std::string backing;
    };
    // Backing files need not exist: with a size given, qemu-img only warns.
    for (const Case& c : {Case{100 << 20, ""}, Case{1000001, ""}, Case{1 << 30, "a.qcow2"},
                          Case{3 << 20, "b"}, Case{(uint64_t{5} << 30) + 512, "base-image.raw"}}) {
        SCOPED_TRACE(c.backing + " " + std::to_string(c.size));
        const std::string theirs = path("theirs.qcow");
        std::string command = "qemu-img create -f qcow ";
        if (!c.backing.empty()) command += "-u -b " + quote(c.backing) + " -F raw ";
        CommandResult created = run(command + quote(theirs) + " " + std::to_string(c.size));
        ASSERT_EQ(created.exit_status, 0) << created.output;

        auto layout = build_create_layout(create_options(c.size, c.backing));
        ASSERT_TRUE(layout.ok()) << layout.error().message;
        const std::string ours = path("ours.qcow");
        write_layout(ours, *layout);
        EXPECT_EQ(read_file(ours), read_file(theirs));
    }
}

TEST_F(QcowInterop, QemuOpensOurImageWithoutBackingFile) {
    auto layout = build_create_layout(create_options(1 << 20));
    ASSERT_TRUE(layout.ok());
    const std::string image = path("ours.qcow");
    write_layout(image, *layout);

    CommandResult info = run("qemu-img info --output=json " + quote(image));
    ASSERT_EQ(info.exit_status, 0) << info.output;
    EXPECT_THAT(info.output, HasSubstr("\"format\": \"qcow\""));
    EXPECT_THAT(info.output, HasSubstr("\"virtual-size\": 1048576,"));
    EXPECT_THAT(info.output, HasSubstr("\"cluster-size\": 4096"));

    CommandResult read = run("qemu-io -f qcow -c 'read -P 0 0 64k' " + quote(image));
    EXPECT_EQ(read.exit_status, 0) << read.output;
    EXPECT_THAT(read.output, HasSubstr("read 65536/65536 bytes at offset 0"));
    EXPECT_THAT(read.output, ::testing::Not(HasSubstr("failed")));

    // QEMU has no check for qcow v1; exit 63 (not 1) means it opened the image.
    CommandResult check = run("qemu-img check -f qcow " + quote(image));
    EXPECT_EQ(check.exit_status, 63) << check.output;
    EXPECT_THAT(check.output, HasSubstr("does not support checks"));
}

TEST_F(QcowInterop, QemuOpensOurImageWithBackingFile) {
    const std::string base = path("base.qcow");
    ASSERT_EQ(run("qemu-img create -f qcow " + quote(base) + " 1M").exit_status, 0);
    auto layout = build_create_layout(create_options(1 << 20, "base.qcow"));
    ASSERT_TRUE(layout.ok());
    const std::string image = path("overlay.qcow");
    write_layout(image, *layout);

    CommandResult info = run("qemu-img info --output=json " + quote(image));
    ASSERT_EQ(info.exit_status, 0) << info.output;
    EXPECT_THAT(info.output, HasSubstr("\"format\": \"qcow\""));
    EXPECT_THAT(info.output, HasSubstr("\"virtual-size\": 1048576,"));
    EXPECT_THAT(info.output, HasSubstr("\"backing-filename\": \"base.qcow\""));
    EXPECT_THAT(info.output, HasSubstr("\"cluster-size\": 512"));

    CommandResult read = run("qemu-io -f qcow -c 'read -P 0 0 64k' " + quote(image));
    EXPECT_EQ(read.exit_status, 0) << read.output;
    EXPECT_THAT(read.output, HasSubstr("read 65536/65536 bytes at offset 0"));

    // Data written to the backing file shows through our overlay.
    ASSERT_EQ(run("qemu-io -f qcow -c 'write -P 0x5a 0 4k' " + quote(base)).exit_status, 0);
    read = run("qemu-io -f qcow -c 'read -P 0x5a 0 4k' -c 'read -P 0 4k 60k' " + quote(image));
    EXPECT_EQ(read.exit_status, 0) << read.output;
}

TEST_F(QcowInterop, ParsesQemuImgCreateOutput) {
    const std::string image = path("theirs.qcow");
    ASSERT_EQ(run("qemu-img create -f qcow -u -b 'base image.raw' -F raw " + quote(image) + " 1G")
                  .exit_status,
              0);
    std::vector<std::byte> file = read_file(image);
    ASSERT_EQ(file.size(), 4160u);  // header 48 + 14 -> 64, L1 of 512 entries = 4096
    auto header = parse_header(file);
    ASSERT_TRUE(header.ok()) << header.error().message;
    EXPECT_TRUE(check_supported(*header).ok());
    EXPECT_EQ(header->size, uint64_t{1} << 30);
    EXPECT_EQ(header->mtime, 0u);
    EXPECT_EQ(header->cluster_bits, 9);
    EXPECT_EQ(header->l2_bits, 12);
    EXPECT_EQ(header->l1_table_offset, 64u);
    auto extent = backing_file_name_extent(*header);
    ASSERT_TRUE(extent.ok() && extent->has_value());
    auto name = parse_backing_file_name(
        *header, ByteSpan(file).subspan((*extent)->offset, (*extent)->length));
    ASSERT_TRUE(name.ok());
    EXPECT_EQ(*name, "base image.raw");
    auto geometry = header_geometry(*header);
    ASSERT_TRUE(geometry.ok());
    auto l1_extent = l1_table_extent(*header);
    ASSERT_TRUE(l1_extent.ok());
    EXPECT_EQ(*l1_extent, (Extent{64, 4096}));
    auto l1 = parse_l1_table(*geometry, ByteSpan(file).subspan(64, 4096));
    ASSERT_TRUE(l1.ok());
    EXPECT_EQ(l1->size(), 512u);
}

TEST_F(QcowInterop, FollowsQemuWrittenTables) {
    // The spec's §9 example: after these writes L1[0] = 0x1000, L2[0][1] =
    // 0x2000, L1[1] = 0x3000, L2[1][0] = 0x4000.
    const std::string image = path("written.qcow");
    ASSERT_EQ(run("qemu-img create -f qcow " + quote(image) + " 100M").exit_status, 0);
    CommandResult write = run(
        "qemu-io -f qcow -c 'write -P 0xab 4096 4096' -c 'write -P 0xcd 2M 512' " + quote(image));
    ASSERT_EQ(write.exit_status, 0) << write.output;
    std::vector<std::byte> file = read_file(image);
    ASSERT_EQ(file.size(), 0x5000u);

    auto header = parse_header(file);
    ASSERT_TRUE(header.ok());
    auto geometry = header_geometry(*header);
    ASSERT_TRUE(geometry.ok());
    auto l1_extent = l1_table_extent(*header);
    ASSERT_TRUE(l1_extent.ok());
    auto l1 =
        parse_l1_table(*geometry, ByteSpan(file).subspan(l1_extent->offset, l1_extent->length));
    ASSERT_TRUE(l1.ok());
    EXPECT_EQ((*l1)[0], 0x1000u);
    EXPECT_EQ((*l1)[1], 0x3000u);

    struct Expect {
        uint64_t guest_offset;
        uint64_t entry_offset;
        uint64_t host_offset;
        std::byte pattern;
    };
    for (const Expect& e : {Expect{4096 + 17, 0x1000 + 8, 0x2000 + 17, std::byte{0xab}},
                            Expect{(2 << 20) + 100, 0x3000, 0x4000 + 100, std::byte{0xcd}}}) {
        auto location = locate_l2_entry(*geometry, *l1, e.guest_offset);
        ASSERT_TRUE(location.ok() && location->has_value());
        EXPECT_EQ((*location)->entry_offset, e.entry_offset);
        const uint64_t raw = load_be<uint64_t>(file.data() + (*location)->entry_offset);
        auto entry = decode_l2_entry(*geometry, raw);
        ASSERT_TRUE(entry.ok()) << entry.error().message;
        EXPECT_EQ(entry->type, ClusterType::kNormal);
        auto host = host_offset(*geometry, *entry, e.guest_offset);
        ASSERT_TRUE(host.ok());
        EXPECT_EQ(*host, e.host_offset);
        EXPECT_EQ(file[*host], e.pattern);
    }

    // Unwritten guest offsets: L1 entry 0 covers offset 0 but its L2 entry is 0;
    // L1 entry 2 is 0 altogether.
    auto location = locate_l2_entry(*geometry, *l1, 0);
    ASSERT_TRUE(location.ok() && location->has_value());
    auto entry =
        decode_l2_entry(*geometry, load_be<uint64_t>(file.data() + (*location)->entry_offset));
    ASSERT_TRUE(entry.ok());
    EXPECT_EQ(entry->type, ClusterType::kUnallocated);
    auto none = locate_l2_entry(*geometry, *l1, 4 << 20);
    ASSERT_TRUE(none.ok());
    EXPECT_FALSE(none->has_value());
}

TEST_F(QcowInterop, DecodesQemuCompressedClusters) {
    // qemu-io writes compressed clusters one whole cluster at a time. (Not
    // `qemu-img convert -c -O qcow`: 7.2 writes a correct image but exits 1,
    // because its final zero-length compressed write is refused by the qcow
    // driver.)
    const std::string image = path("compressed.qcow");
    ASSERT_EQ(run("qemu-img create -f qcow " + quote(image) + " 1M").exit_status, 0);
    CommandResult write =
        run("qemu-io -f qcow -c 'write -c -P 0x11 0 4k' -c 'write -c -P 0x22 4k 4k' "
            "-c 'write -c -P 0x33 8k 4k' -c 'write -c -P 0x44 12k 4k' " +
            quote(image));
    ASSERT_EQ(write.exit_status, 0) << write.output;

    std::vector<std::byte> file = read_file(image);
    auto header = parse_header(file);
    ASSERT_TRUE(header.ok()) << header.error().message;
    auto geometry = header_geometry(*header);
    ASSERT_TRUE(geometry.ok());
    ASSERT_EQ(geometry->cluster_bits, 12u);
    auto l1_extent = l1_table_extent(*header);
    ASSERT_TRUE(l1_extent.ok());
    auto l1 =
        parse_l1_table(*geometry, ByteSpan(file).subspan(l1_extent->offset, l1_extent->length));
    ASSERT_TRUE(l1.ok());
    auto l1_entry = decode_l1_entry(*geometry, (*l1)[0]);
    ASSERT_TRUE(l1_entry.ok() && l1_entry->allocated());
    ASSERT_LE(l1_entry->l2_table_offset + geometry->l2_table_bytes(), file.size());
    auto l2 = parse_l2_table(
        *geometry, ByteSpan(file).subspan(l1_entry->l2_table_offset, geometry->l2_table_bytes()));
    ASSERT_TRUE(l2.ok());

    for (uint64_t cluster = 0; cluster < 4; ++cluster) {
        SCOPED_TRACE(cluster);
        auto entry = decode_l2_entry(*geometry, (*l2)[cluster]);
        ASSERT_TRUE(entry.ok()) << entry.error().message;
        EXPECT_EQ(entry->type, ClusterType::kCompressed);
        EXPECT_GT(entry->compressed_size, 0u);
        EXPECT_LT(entry->compressed_size, geometry->cluster_size());
        // QEMU appends compressed data at EOF rounded up to 512 (spec §6).
        EXPECT_EQ(entry->offset % 512, 0u);
        EXPECT_LE(entry->offset + entry->compressed_size, file.size());
        EXPECT_EQ(*encode_l2_entry(*geometry, *entry), (*l2)[cluster]);
    }
    EXPECT_EQ(decode_l2_entry(*geometry, (*l2)[4])->type, ClusterType::kUnallocated);
}

}  // namespace
}  // namespace coblock::qcow
