// Interop tests against qemu-img/qemu-io 7.2 when installed: images from our
// layout builder pass `qemu-img check`/`info`; images qemu-img creates parse
// through our parsers; a log entry QEMU wrote replays the way QEMU does.
// Each test skips with a message when the tool is not in PATH.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "tests/unit/formats/vhdx/test_util.h"

namespace coblock::vhdx {
namespace {

using namespace testing;
namespace fs = std::filesystem;

bool in_path(const std::string& tool) {
    const char* path = std::getenv("PATH");
    if (!path) return false;
    std::stringstream dirs(path);
    std::string dir;
    while (std::getline(dirs, dir, ':'))
        if (!dir.empty() && fs::exists(fs::path(dir) / tool)) return true;
    return false;
}

// Runs a shell command, returning its exit status and combined output.
int run(const std::string& command, std::string* output) {
    output->clear();
    FILE* pipe = popen((command + " 2>&1").c_str(), "r");
    if (!pipe) return -1;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, pipe)) > 0)
        output->append(buf, n);
    const int status = pclose(pipe);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string quoted(const fs::path& p) {
    return "'" + p.string() + "'";
}

class VhdxQemuInterop : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!in_path("qemu-img"))
            GTEST_SKIP() << "qemu-img not in PATH; skipping vhdx interop test";
        std::string tmpl = (fs::temp_directory_path() / "coblock-vhdx-XXXXXX").string();
        ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override {
        if (!dir_.empty()) {
            std::error_code ec;
            fs::remove_all(dir_, ec);
        }
    }

    // Writes a layout sparsely: only the written ranges, then the size.
    fs::path write_layout(const std::string& name, const ImageLayout& layout) {
        const fs::path path = dir_ / name;
        {
            std::ofstream out(path, std::ios::binary | std::ios::trunc);
            for (const FileWrite& w : layout.writes) {
                out.seekp(static_cast<std::streamoff>(w.offset));
                out.write(reinterpret_cast<const char*>(w.bytes.data()),
                          static_cast<std::streamsize>(w.bytes.size()));
            }
            EXPECT_TRUE(out.good());
        }
        fs::resize_file(path, layout.file_size);
        return path;
    }

    void expect_qemu_accepts(const fs::path& path, uint64_t virtual_size, uint64_t block_size) {
        std::string out;
        EXPECT_EQ(run("qemu-img check -f vhdx " + quoted(path), &out), 0) << out;
        EXPECT_THAT(out, ::testing::HasSubstr("No errors were found on the image."));
        EXPECT_EQ(run("qemu-img info -f vhdx --output=json " + quoted(path), &out), 0) << out;
        EXPECT_THAT(out, ::testing::HasSubstr("\"virtual-size\": " + std::to_string(virtual_size)));
        EXPECT_THAT(out, ::testing::HasSubstr("\"cluster-size\": " + std::to_string(block_size)));
        EXPECT_THAT(out, ::testing::HasSubstr("\"format\": \"vhdx\""));
    }

    fs::path dir_;
};

CreateOptions create_options(ImageType type, uint64_t size, uint32_t block_size) {
    CreateOptions o;
    o.type = type;
    o.virtual_disk_size = size;
    o.block_size = block_size;
    o.file_write_guid = test_guid(1);
    o.data_write_guid = test_guid(2);
    o.virtual_disk_id = test_guid(3);
    o.sequence_number = 7;
    return o;
}

TEST_F(VhdxQemuInterop, QemuAcceptsOurDynamicImage) {
    auto layout = build_image_layout(create_options(ImageType::kDynamic, 100 * kMiB, 0));
    ASSERT_OK(layout);
    const fs::path path = write_layout("dynamic.vhdx", *layout);
    expect_qemu_accepts(path, 100 * kMiB, 8 * kMiB);

    // QEMU can write into it, and we parse what it wrote.
    if (!in_path("qemu-io")) GTEST_SKIP() << "qemu-io not in PATH; skipping the write half";
    std::string out;
    ASSERT_EQ(run("qemu-io -f vhdx -c 'write -P 0x5a 9437184 4096' " + quoted(path), &out), 0)
        << out;
    expect_qemu_accepts(path, 100 * kMiB, 8 * kMiB);
    const Bytes file = read_file(path.string());
    auto p = parse_image(file);
    ASSERT_OK(p);
    auto loc = locate_virtual_offset(p->geometry, 9437184);
    ASSERT_OK(loc);
    auto e = read_bat_entry(p->bat, loc->bat_index);
    ASSERT_OK(e);
    EXPECT_EQ(e->state, static_cast<uint8_t>(PayloadState::kFullyPresent));
    ASSERT_GE(file.size(), e->file_offset() + loc->offset_in_block + 4096);
    EXPECT_EQ(file[e->file_offset() + loc->offset_in_block], std::byte{0x5a});
}

TEST_F(VhdxQemuInterop, QemuAcceptsOurFixedImage) {
    CreateOptions o = create_options(ImageType::kFixed, 64 * kMiB, 8 * kMiB);
    o.physical_sector_size = 512;
    auto layout = build_image_layout(o);
    ASSERT_OK(layout);
    const fs::path path = write_layout("fixed.vhdx", *layout);
    expect_qemu_accepts(path, 64 * kMiB, 8 * kMiB);
    if (!in_path("qemu-io")) GTEST_SKIP() << "qemu-io not in PATH; skipping the read-back half";
    std::string out;
    EXPECT_EQ(run("qemu-io -f vhdx -c 'read -P 0 0 64M' " + quoted(path), &out), 0) << out;
    EXPECT_THAT(out, ::testing::Not(::testing::HasSubstr("Pattern verification failed")));
}

struct QemuImage {
    const char* options;
    uint64_t size;
    uint64_t block_size;
    bool fixed;
    uint8_t expected_state;  // of every payload entry
};

class VhdxQemuCreated : public VhdxQemuInterop, public ::testing::WithParamInterface<QemuImage> {};

TEST_P(VhdxQemuCreated, ParsesThroughOurParsers) {
    const QemuImage& c = GetParam();
    const fs::path path = dir_ / "qemu.vhdx";
    std::string out;
    ASSERT_EQ(run(std::string("qemu-img create -q -f vhdx -o ") + c.options + " " + quoted(path) +
                      " " + std::to_string(c.size),
                  &out),
              0)
        << out;
    const Bytes file = read_file(path.string());
    auto p = parse_image(file);
    ASSERT_OK(p);
    EXPECT_THAT(std::string(p->identifier.creator.begin(), p->identifier.creator.end()),
                ::testing::StartsWith("QEMU v"));
    EXPECT_EQ(p->headers.current_slot, 1);  // QEMU makes header 2 current
    EXPECT_EQ(p->headers.current.sequence_number, p->headers.other.sequence_number + 1);
    EXPECT_EQ(p->regions.bat.file_offset, 2 * kMiB);
    EXPECT_FALSE(p->regions.bat.required);  // QEMU clears the Required bit
    EXPECT_EQ(p->metadata.virtual_disk_size, c.size);
    EXPECT_EQ(p->metadata.file_parameters.block_size, c.block_size);
    EXPECT_EQ(p->metadata.file_parameters.leave_block_allocated, c.fixed);
    EXPECT_EQ(p->metadata.logical_sector_size, 512u);
    EXPECT_EQ(p->metadata.physical_sector_size, 512u);
    for (uint64_t b = 0; b < p->geometry.data_blocks; ++b) {
        auto e = read_bat_entry(p->bat, payload_bat_index(p->geometry, b));
        ASSERT_OK(e);
        ASSERT_EQ(e->state, c.expected_state) << "block " << b;
    }
    // Our encoders reproduce QEMU's region table and metadata table bytes.
    Bytes table(kRegionTableSize);
    RegionTable rt{{p->regions.bat, p->regions.metadata}};
    ASSERT_OK(encode_region_table(rt, table));
    EXPECT_TRUE(std::equal(table.begin(), table.end(), file.begin() + kRegionTable1Offset));
    Bytes meta(kMetadataTableSize);
    ASSERT_OK(encode_metadata_table(p->metadata_table, meta));
    EXPECT_TRUE(
        std::equal(meta.begin(), meta.end(), file.begin() + p->regions.metadata.file_offset));
}

INSTANTIATE_TEST_SUITE_P(
    Images, VhdxQemuCreated,
    ::testing::Values(QemuImage{"subformat=dynamic", 100 * kMiB, 8 * kMiB, false, 2},
                      QemuImage{"subformat=dynamic,block_size=1M", 100 * kMiB, kMiB, false, 2},
                      QemuImage{"subformat=dynamic,block_size=32M,block_state_zero=off", 10 * kGiB,
                                32 * kMiB, false, 0},
                      QemuImage{"subformat=fixed,block_size=8M,block_state_zero=off", 20 * kMiB,
                                8 * kMiB, true, 6},
                      QemuImage{"subformat=fixed,block_size=4M,block_state_zero=off", 64 * kMiB,
                                4 * kMiB, true, 6}));

TEST_F(VhdxQemuInterop, ReplaysQemuLogEntryLikeQemu) {
    if (!in_path("qemu-io")) GTEST_SKIP() << "qemu-io not in PATH; skipping log replay parity";
    const fs::path path = dir_ / "log.vhdx";
    std::string out;
    ASSERT_EQ(run("qemu-img create -q -f vhdx " + quoted(path) + " 100M", &out), 0) << out;
    ASSERT_EQ(run("qemu-io -f vhdx -c 'write -P 0xab 4096 4096' " + quoted(path), &out), 0) << out;
    Bytes file = read_file(path.string());
    auto p = parse_image(file);
    ASSERT_OK(p);
    const Header& h = p->headers.current;
    const uint64_t bat_sector = p->regions.bat.file_offset;
    EXPECT_EQ(get64(file, bat_sector), 0x800006u);

    // The applied entry stays in the log with the LogGuid QEMU then cleared.
    const ByteSpan log = ByteSpan(file).subspan(h.log_offset, h.log_length);
    const Guid entry_guid = Guid::from_bytes(log.subspan(32, 16));
    auto entry = parse_log_entry(log.subspan(0, 0x2000), entry_guid, h.log_length);
    ASSERT_OK(entry);
    ASSERT_EQ(entry->descriptors.size(), 1u);
    EXPECT_EQ(entry->descriptors[0].file_offset, bat_sector);

    // Forge a pending log (spec §16): reinstate the GUID, break BAT entry 0.
    Header pending = h;
    pending.log_guid = entry_guid;
    auto writes = plan_header_update(p->headers, pending);
    ASSERT_OK(writes);
    for (const HeaderWrite& w : *writes)
        std::copy(w.bytes.begin(), w.bytes.end(), file.begin() + w.file_offset);
    put64(file, bat_sector, 2);
    ASSERT_TRUE(write_file(path.string(), file));

    auto sel = select_header(ByteSpan(file).subspan(kHeader1Offset, kHeaderSize),
                             ByteSpan(file).subspan(kHeader2Offset, kHeaderSize));
    ASSERT_OK(sel);
    auto plan = plan_log_replay(sel->current, ByteSpan(file).subspan(h.log_offset, h.log_length),
                                file.size());
    ASSERT_OK(plan);
    ASSERT_TRUE(plan->active);
    ASSERT_EQ(plan->writes.size(), 1u);
    EXPECT_EQ(plan->writes[0].file_offset, bat_sector);
    EXPECT_EQ(load_le<uint64_t>(plan->writes[0].data.data()), 0x800006u);

    // QEMU refuses the read-only open and repairs with check -r all.
    EXPECT_NE(run("qemu-img info " + quoted(path), &out), 0);
    EXPECT_THAT(out, ::testing::HasSubstr("contains a log that needs to be replayed"));
    EXPECT_EQ(run("qemu-img check -r all -f vhdx " + quoted(path), &out), 0) << out;
    const Bytes repaired = read_file(path.string());
    ASSERT_GE(repaired.size(), bat_sector + 4096);
    EXPECT_TRUE(std::equal(plan->writes[0].data.begin(), plan->writes[0].data.end(),
                           repaired.begin() + bat_sector));
}

}  // namespace
}  // namespace coblock::vhdx
