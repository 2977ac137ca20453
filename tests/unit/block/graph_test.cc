// The graph: driver registry, probing, permissions, filters, reopen, query.
#include "block/graph.h"

#include <gtest/gtest.h>

#include <unistd.h>
#include <algorithm>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "block/backend.h"
#include "block/io.h"
#include "coroutine/run_sync.h"
#include "drivers/memory/memory_node.h"

namespace coblock {
namespace {

std::vector<std::byte> pattern(size_t n, uint8_t seed) {
    std::vector<std::byte> v(n);
    for (size_t i = 0; i < n; ++i)
        v[i] = static_cast<std::byte>(seed + i * 7);
    return v;
}

// A named in-memory node, owned by the returned reference.
NodeRef memory_node(const std::string& name, size_t size) {
    auto* mem = new MemoryNode(pattern(size, 1));
    NodeRef ref(mem);
    auto allocated = allocate_node_name(name);
    EXPECT_TRUE(allocated.ok());
    mem->set_node_name(name);
    return ref;
}

const BlockDriver kPassFilterDriver{.name = "pass-filter", .kind = DriverKind::kFilter};

// A filter that counts reads and passes everything through.
class PassFilter final : public BlockNode {
  public:
    PassFilter() : BlockNode(kPassFilterDriver) {}
    Status co_preadv(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) override {
        ++reads;
        return co_child_preadv(primary_child(), offset, bytes, qiov, flags);
    }
    Status co_pwritev(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) override {
        return co_child_pwritev(primary_child(), offset, bytes, qiov, flags);
    }
    bool is_filter() const override { return true; }
    int reads = 0;
};

TEST(Registry, RegisteredDriverNames) {
    std::vector<std::string> names;
    for (const BlockDriver* d : block_drivers())
        names.push_back(d->name);
    // Every driver linked into the library, in name order. A new driver
    // folder adds its name here: registration is by static constructor, and
    // this is the check that none was dropped by the linker.
    EXPECT_EQ(names, (std::vector<std::string>{"blkdebug", "compress", "copy-on-read", "file",
                                               "host_device", "null-aio", "null-co", "qcow",
                                               "qcow2", "raw", "vhdx"}));
    EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
}

TEST(Registry, ProtocolPrefixes) {
    EXPECT_EQ(find_protocol_for_filename("null-co://")->name, "null-co");
    EXPECT_EQ(find_protocol_for_filename("file:/tmp/x")->name, "file");
    EXPECT_EQ(find_protocol_for_filename("/tmp/a:b"), nullptr);
    EXPECT_EQ(find_protocol_for_filename("plain.img"), nullptr);
}

TEST(Probe, RawIsTheFallback) {
    std::vector<std::byte> head(512);
    EXPECT_EQ(probe_format(head, "x.img")->name, "raw");
    EXPECT_NE(probe_warning("x.img").find("probing guessed raw"), std::string::npos);
}

TEST(Open, NullCoWithOptions) {
    qapi::OptionsTree options;
    options.set("driver", "null-co");
    options.set("size", "4M");
    options.set("read-zeroes", "on");
    auto blk = BlockBackend::open("", options, OpenFlags{});
    ASSERT_TRUE(blk.ok()) << blk.error().message;
    EXPECT_EQ((*blk)->length(), 4u << 20);
    std::vector<char> buf(4096, 'x');
    ASSERT_TRUE((*blk)->pread(0, buf.data(), buf.size()).ok());
    EXPECT_EQ(buf[100], 0);
    EXPECT_EQ((*blk)->root()->node_name().rfind("#block", 0), 0u);
}

TEST(Open, UnknownOptionNamesTheKey) {
    qapi::OptionsTree options;
    options.set("driver", "null-co");
    options.set("bogus", "1");
    auto blk = BlockBackend::open("", options, OpenFlags{});
    ASSERT_FALSE(blk.ok());
    EXPECT_NE(blk.error().message.find("'bogus'"), std::string::npos) << blk.error().message;
}

TEST(Open, UnknownDriver) {
    qapi::OptionsTree options;
    options.set("driver", "nope");
    auto blk = BlockBackend::open("", options, OpenFlags{});
    ASSERT_FALSE(blk.ok());
    EXPECT_EQ(blk.error().message, "Unknown driver 'nope'");
}

TEST(Open, ProbedRawFileWarnsAndRefusesFormatChangingWrites) {
    char path[] = "/tmp/coblock-graph-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, 1 << 20), 0);
    close(fd);
    std::vector<std::string> warnings;
    auto blk = BlockBackend::open(path, {}, OpenFlags{}, &warnings);
    ASSERT_TRUE(blk.ok()) << blk.error().message;
    EXPECT_EQ((*blk)->root()->driver().name, "raw");
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_EQ(warnings[0], probe_warning(path));
    std::vector<char> ok(512, 'a');
    EXPECT_TRUE((*blk)->pwrite(0, ok.data(), ok.size()).ok());
    blk->reset();
    unlink(path);
}

TEST(Permissions, SecondWriterIsRefused) {
    NodeRef node = memory_node("perm-a", 65536);
    auto first = BlockBackend::attach(node.get(), kPermConsistentRead | kPermWrite,
                                      kPermConsistentRead | kPermWriteUnchanged);
    ASSERT_TRUE(first.ok());
    auto second = BlockBackend::attach(node.get(), kPermConsistentRead | kPermWrite,
                                       kPermConsistentRead | kPermWriteUnchanged);
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.error().kind, ErrorKind::kPermission);
    EXPECT_EQ(
        second.error().message,
        "Conflicts with use by block device as 'root', which does not allow 'write' on perm-a");
    // A reader that shares everything is fine (force-share inspection).
    auto reader = BlockBackend::attach(node.get(), kPermConsistentRead, kPermAll);
    EXPECT_TRUE(reader.ok());
}

TEST(Permissions, ReaderThatForbidsWritesIsRefusedWhileAWriterExists) {
    NodeRef node = memory_node("perm-b", 65536);
    auto writer = BlockBackend::attach(node.get(), kPermConsistentRead | kPermWrite, kPermAll);
    ASSERT_TRUE(writer.ok());
    auto strict = BlockBackend::attach(node.get(), kPermConsistentRead, kPermConsistentRead);
    ASSERT_FALSE(strict.ok());
    EXPECT_NE(strict.error().message.find("which uses 'write'"), std::string::npos);
}

TEST(Permissions, DroppingAnEdgeReleasesItsPermissions) {
    NodeRef node = memory_node("perm-c", 65536);
    {
        auto writer =
            BlockBackend::attach(node.get(), kPermConsistentRead | kPermWrite, kPermConsistentRead);
        ASSERT_TRUE(writer.ok());
    }
    auto again =
        BlockBackend::attach(node.get(), kPermConsistentRead | kPermWrite, kPermConsistentRead);
    EXPECT_TRUE(again.ok());
}

TEST(Graph, InsertAndRemoveFilter) {
    NodeRef node = memory_node("below", 65536);
    auto blk = BlockBackend::attach(node.get(), kPermConsistentRead | kPermWrite, kPermAll);
    ASSERT_TRUE(blk.ok());
    auto* filter = new PassFilter();
    NodeRef filter_ref(filter);
    ASSERT_TRUE(allocate_node_name("filter").ok());
    filter->set_node_name("filter");
    auto edge = attach_child(filter, {}, node.get(), "file", kRoleFilteredChild,
                             kPermConsistentRead, kPermAll);
    ASSERT_TRUE(edge.ok());
    filter->adopt_child(std::move(*edge));
    filter->set_size(node->size());

    ASSERT_TRUE(insert_filter_above(node.get(), filter).ok());
    EXPECT_EQ((*blk)->root(), filter);
    char buf[512];
    ASSERT_TRUE((*blk)->pread(0, buf, sizeof buf).ok());
    EXPECT_EQ(filter->reads, 1);
    EXPECT_TRUE((*blk)->pwrite(0, buf, sizeof buf).ok());  // the filter took the writer's perms

    ASSERT_TRUE(remove_filter(filter).ok());
    EXPECT_EQ((*blk)->root(), node.get());
    ASSERT_TRUE((*blk)->pread(0, buf, sizeof buf).ok());
    EXPECT_EQ(filter->reads, 1);
}

TEST(Graph, ReplaceChild) {
    NodeRef a = memory_node("repl-a", 4096);
    NodeRef b = memory_node("repl-b", 8192);
    auto blk = BlockBackend::attach(a.get(), kPermConsistentRead, kPermAll);
    ASSERT_TRUE(blk.ok());
    ASSERT_TRUE(replace_child((*blk)->root_edge(), b.get()).ok());
    EXPECT_EQ((*blk)->length(), 8192u);
    EXPECT_EQ(a->parents().size(), 0u);
}

TEST(Graph, ReopenReadOnlyAndBack) {
    NodeRef node = memory_node("reopen", 65536);
    auto blk = BlockBackend::attach(node.get(), kPermConsistentRead | kPermWrite, kPermAll);
    ASSERT_TRUE(blk.ok());
    char buf[512] = {};
    run_sync([&] { ASSERT_TRUE(co_reopen(node.get(), true).ok()); });
    Status refused = (*blk)->pwrite(0, buf, sizeof buf);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().kind, ErrorKind::kReadOnly);
    run_sync([&] { ASSERT_TRUE(co_reopen(node.get(), false).ok()); });
    EXPECT_TRUE((*blk)->pwrite(0, buf, sizeof buf).ok());
}

TEST(Graph, QueryListsNodesAndEdges) {
    qapi::OptionsTree options;
    options.set("driver", "raw");
    options.set("node-name", "q-raw");
    options.set("file.driver", "null-co");
    options.set("file.size", "1M");
    options.set("file.node-name", "q-null");
    auto blk = BlockBackend::open("", options, OpenFlags{});
    ASSERT_TRUE(blk.ok()) << blk.error().message;
    auto graph = query_graph();
    bool saw_raw = false, saw_edge = false;
    for (const auto& n : graph["nodes"])
        if (n["node-name"] == "q-raw") {
            saw_raw = true;
            EXPECT_EQ(n["driver"], "raw");
            EXPECT_EQ(n["size"], 1u << 20);
        }
    for (const auto& e : graph["edges"])
        if (e["parent"] == "q-raw" && e["child"] == "q-null" && e["name"] == "file")
            saw_edge = true;
    EXPECT_TRUE(saw_raw);
    EXPECT_TRUE(saw_edge);
    EXPECT_EQ(find_node("q-null")->driver().name, "null-co");
    blk->reset();
    EXPECT_EQ(find_node("q-null"), nullptr);  // closed with its last reference
}

TEST(Graph, DuplicateNodeNameRefused) {
    NodeRef a = memory_node("dup", 4096);
    auto second = allocate_node_name("dup");
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.error().message, "Duplicate nodes with node-name='dup'");
}

TEST(Raw, OffsetAndSizeWindow) {
    qapi::OptionsTree options;
    options.set("driver", "raw");
    options.set("offset", "4096");
    options.set("size", "8192");
    options.set("file.driver", "null-co");
    options.set("file.size", "64k");
    options.set("file.read-zeroes", "on");
    auto blk = BlockBackend::open("", options, OpenFlags{});
    ASSERT_TRUE(blk.ok()) << blk.error().message;
    EXPECT_EQ((*blk)->length(), 8192u);
    char buf[16];
    EXPECT_FALSE((*blk)->pread(8190, buf, 16).ok());  // beyond the window

    options.set("size", "1M");
    auto too_big = BlockBackend::open("", options, OpenFlags{});
    ASSERT_FALSE(too_big.ok());
    EXPECT_NE(too_big.error().message.find("has to be smaller or equal"), std::string::npos);
}

}  // namespace
}  // namespace coblock
