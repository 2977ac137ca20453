// Helpers for the qcow driver tests: images built in memory (from
// formats/qcow's create layout, or a hand-made header), opened through a
// named MemoryNode, and small data-pattern helpers.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "block/backend.h"
#include "block/driver.h"
#include "block/graph.h"
#include "coroutine/run_sync.h"
#include "drivers/memory/memory_node.h"
#include "formats/qcow/qcow_create.h"
#include "formats/qcow/qcow_header.h"
#include "qapi/options_tree.h"

namespace coblock::qcow::testing {

inline std::vector<std::byte> layout_bytes(const CreateLayout& layout) {
    std::vector<std::byte> bytes(layout.file_size);
    for (const LayoutWrite& w : layout.writes)
        std::memcpy(bytes.data() + w.offset, w.bytes.data(), w.bytes.size());
    return bytes;
}

// What `qemu-img create -f qcow [-b backing]` writes.
inline std::vector<std::byte> new_image(uint64_t size, const std::string& backing = {}) {
    auto layout = build_create_layout(CreateOptions{size, backing});
    return layout.ok() ? layout_bytes(*layout) : std::vector<std::byte>{};
}

// An image with any geometry: header, backing name at 48, the zeroed L1
// table 8-aligned after it (padded to 512 like QEMU).
inline std::vector<std::byte> custom_image(uint64_t size, uint8_t cluster_bits, uint8_t l2_bits,
                                           const std::string& backing = {}) {
    Header h;
    h.size = size;
    h.cluster_bits = cluster_bits;
    h.l2_bits = l2_bits;
    if (!backing.empty()) {
        h.backing_file_offset = kHeaderSize;
        h.backing_file_size = static_cast<uint32_t>(backing.size());
    }
    h.l1_table_offset = (kHeaderSize + backing.size() + 7) / 8 * 8;
    const uint64_t l1_shift = cluster_bits + l2_bits;
    const uint64_t l1_size = (size + (uint64_t{1} << l1_shift) - 1) >> l1_shift;
    std::vector<std::byte> bytes(h.l1_table_offset + (l1_size * 8 + 511) / 512 * 512);
    (void)encode_header(h, bytes);
    std::memcpy(bytes.data() + kHeaderSize, backing.data(), backing.size());
    return bytes;
}

inline std::string unique_name(const std::string& prefix) {
    static int counter = 0;
    return prefix + std::to_string(counter++);
}

// A MemoryNode held by a reference.
struct MemImage {
    NodeRef ref;
    MemoryNode* mem = nullptr;
};

inline MemImage memory_image(std::vector<std::byte> bytes, MemoryNodeOptions options = {}) {
    MemImage image;
    image.mem = new MemoryNode(std::move(bytes), std::move(options));
    image.ref = NodeRef(image.mem);
    image.mem->set_node_name(*allocate_node_name(""));
    return image;
}

// Opens the qcow driver directly on `file` (the graph cannot refer to nodes
// made outside it by name). `backing`, when given, is attached as the
// backing node instead of what the header names; `options` go to the
// driver ("backing" = "" opens without the backing file).
inline Result<std::unique_ptr<BlockBackend>> open_qcow(BlockNode* file,
                                                       BlockNode* backing = nullptr,
                                                       bool read_only = false,
                                                       qapi::OptionsTree options = {},
                                                       bool no_io = false) {
    block_layer_init();
    OpenFlags flags;
    flags.read_only = read_only;
    flags.no_io = no_io;
    flags.no_backing = backing != nullptr;
    Result<NodeRef> opened = run_sync([&]() -> Result<NodeRef> {
        OpenContext ctx("", std::move(options), flags);
        ctx.set_preopened_file(NodeRef(file));
        ASSIGN_OR_RETURN(std::unique_ptr<BlockNode> node, find_block_driver("qcow")->co_open(ctx));
        NodeRef ref(node.release());
        ref->set_node_name(*allocate_node_name(""));
        ref->set_open_flags(flags);
        if (backing) {
            uint32_t perm, shared;
            default_child_permissions(kRoleBacking, flags, &perm, &shared);
            ASSIGN_OR_RETURN(
                std::unique_ptr<BdrvChild> edge,
                attach_child(ref.get(), {}, backing, "backing", kRoleBacking, perm, shared));
            ref->adopt_child(std::move(edge));
        }
        return ref;
    });
    if (!opened.ok()) return std::move(opened).error();
    uint32_t perm = kPermConsistentRead | (read_only ? 0u : uint32_t{kPermWrite | kPermResize});
    return BlockBackend::attach(opened->get(), perm, kPermConsistentRead | kPermWriteUnchanged);
}

inline std::vector<uint8_t> filled(size_t n, uint8_t value) {
    return std::vector<uint8_t>(n, value);
}

inline std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
    std::vector<uint8_t> v(n);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; ++i) {
        x = x * 1103515245u + 12345u;
        v[i] = static_cast<uint8_t>(x >> 16);
    }
    return v;
}

inline uint64_t be64_at(const std::vector<std::byte>& bytes, uint64_t offset) {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
        v = (v << 8) | static_cast<uint8_t>(bytes[offset + i]);
    return v;
}

}  // namespace coblock::qcow::testing
