// The graph: opening nodes from an options tree (QEMU's bdrv_open), probing,
// node names, child edges with permission checks, reference counting, graph
// changes (insert/remove a filter, replace a child, reopen) and the graph
// query as JSON. Everything here runs in the loop thread; functions named
// co_* run in a coroutine.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "block/child.h"
#include "block/driver.h"
#include "block/node.h"
#include "formats/result.h"
#include "qapi/options_tree.h"

namespace coblock {

// ---- References ---------------------------------------------------------------
// A counted reference to a node. The node is closed (co_close, then
// destroyed) when the last NodeRef or edge to it goes away.
class NodeRef {
  public:
    NodeRef() = default;
    explicit NodeRef(BlockNode* node);  // takes a new reference
    NodeRef(const NodeRef& other) : NodeRef(other.node_) {}
    NodeRef(NodeRef&& other) noexcept : node_(other.node_) { other.node_ = nullptr; }
    NodeRef& operator=(NodeRef other) noexcept {
        std::swap(node_, other.node_);
        return *this;
    }
    ~NodeRef() { reset(); }

    void reset();
    BlockNode* get() const { return node_; }
    BlockNode* operator->() const { return node_; }
    BlockNode& operator*() const { return *node_; }
    explicit operator bool() const { return node_ != nullptr; }

  private:
    BlockNode* node_ = nullptr;
};

void node_ref(BlockNode* node);
// Drops a reference; at zero closes and deletes the node (from plain code
// this polls the current loop until co_close finishes).
void node_unref(BlockNode* node);

// ---- Opening --------------------------------------------------------------------
// The permissions a parent takes on a child of `role`, given the parent's
// open flags (QEMU's bdrv_default_perms): storage children of writable
// nodes get write+resize and share only reads; -U shares everything.
void default_child_permissions(uint32_t role, const OpenFlags& parent_flags, uint32_t* perm,
                               uint32_t* shared);

// What a driver's co_open sees.
class OpenContext {
  public:
    OpenContext(std::string filename, qapi::OptionsTree options, OpenFlags flags);

    // The filename the node is opened from; may be empty (json:/options).
    const std::string& filename() const { return filename_; }
    // The options for this node; the driver takes the keys it consumes
    // (schema.parse removes them). Keys left over are an error.
    qapi::OptionsTree& options() { return options_; }
    const OpenFlags& flags() const { return flags_; }
    OpenFlags& mutable_flags() { return flags_; }

    // Opens child `name` of `parent` from the options subtree `name.*`, a
    // node-name reference (`name=node`), or `filename` when the subtree has
    // none. `probe_format`: false opens a protocol node (a format's file),
    // true probes a format (backing files). Attaches the edge with the
    // default permissions for `role` and returns it.
    Result<BdrvChild*> co_open_child(BlockNode& parent, const std::string& name, uint32_t role,
                                     const std::string& filename, bool probe_format,
                                     const std::string& format = {});

    // Messages the open wants shown (e.g. the raw-probe warning).
    std::vector<std::string>& warnings() { return *warnings_; }
    void set_warnings_sink(std::vector<std::string>* sink) { warnings_ = sink; }
    // The protocol node opened for probing; co_open_child("file") uses it.
    void set_preopened_file(NodeRef file) { preopened_file_ = std::move(file); }
    // True when the format was guessed by probing rather than given.
    bool format_probed() const { return format_probed_; }
    void set_format_probed(bool probed) { format_probed_ = probed; }

  private:
    std::string filename_;
    qapi::OptionsTree options_;
    OpenFlags flags_;
    std::vector<std::string> own_warnings_;
    std::vector<std::string>* warnings_ = &own_warnings_;
    NodeRef preopened_file_;
    bool format_probed_ = false;
};

// Opens a node (and its children) as QEMU's bdrv_open: `driver` in options
// selects the driver; else a protocol prefix of the filename; else the file
// is opened with the `file` protocol and the format is probed (raw with a
// warning when nothing matches, see probe_warning()). json:{...} filenames
// are expanded first. Options the drivers leave are an error naming the key.
// `probe_format` false opens a protocol node only.
Result<NodeRef> co_open_node(const std::string& filename, qapi::OptionsTree options,
                             const OpenFlags& flags, bool probe_format = true,
                             std::vector<std::string>* warnings = nullptr);

// QEMU's three-line warning when raw was guessed (stderr, qemu-img/qemu-io).
std::string probe_warning(const std::string& filename);

// Picks the format for the first bytes of an image; raw when none scores.
const BlockDriver* probe_format(ByteSpan head, std::string_view filename);

// ---- Graph changes ----------------------------------------------------------------
// Attaches `child` to `parent` (nullptr for a backend root, labelled by
// `parent_label`) after checking that `perm` is shared by every other parent
// of `child`, and that `shared` covers every other parent's perm; then tells
// the child (update_permissions) so protocol nodes take file locks.
Result<std::unique_ptr<BdrvChild>> attach_child(BlockNode* parent, const std::string& parent_label,
                                                BlockNode* child, const std::string& name,
                                                uint32_t role, uint32_t perm, uint32_t shared);
// Changes the permissions held through `edge`, with the same checks.
Status update_edge_permissions(BdrvChild* edge, uint32_t perm, uint32_t shared);
// Points `edge` at `new_child` (permissions checked against its parents).
Status replace_child(BdrvChild* edge, BlockNode* new_child);
// Inserts `filter` (a freshly opened filter node whose primary child is
// `below`) between `below` and all of below's parents.
Status insert_filter_above(BlockNode* below, BlockNode* filter);
// Removes `filter`, reconnecting its parents to its filtered child.
Status remove_filter(BlockNode* filter);
// Switches a node (and the storage children that follow it) between
// read-only and read-write; permissions and file locks follow.
Status co_reopen(BlockNode* node, bool read_only);
// Changes cache.direct and cache.no-flush of a node and of the storage
// children below it (QEMU's reopen: children inherit the cache options),
// children first; a file node switches O_DIRECT on its descriptor. Stops at
// the first node that refuses, leaving the ones above unchanged.
Status co_reopen_cache(BlockNode* node, bool cache_direct, bool cache_no_flush);

// Recomputes the cumulative permissions on `node` and tells it.
Status refresh_permissions(BlockNode* node);

// ---- Names and query -----------------------------------------------------------
// A unique name: `requested` when free ("node-name" option), else "#blockN".
Result<std::string> allocate_node_name(const std::string& requested);
void release_node_name(const std::string& name);
BlockNode* find_node(const std::string& name);
// All open nodes, edges, drivers, sizes and options:
// {"nodes":[{"node-name","driver","size","read-only","filename","options"}],
//  "edges":[{"parent","child","name","role","perm","shared"}]}
nlohmann::ordered_json query_graph();

}  // namespace coblock
