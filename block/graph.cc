// The graph: references, names, permissions, opening with probing, graph
// changes and the JSON query. Follows QEMU's block.c (bdrv_open_inherit,
// bdrv_check_perm, bdrv_replace_child, bdrv_reopen) in a simpler shape.
#include "block/graph.h"

#include <map>

#include "block/io.h"
#include "coroutine/run_sync.h"
#include "qapi/keyval.h"
#include "qapi/schema.h"

namespace coblock {

namespace {

// Head bytes handed to probe functions (QEMU's BLOCK_PROBE_BUF_SIZE).
constexpr size_t kProbeBytes = 2048;

std::map<std::string, BlockNode*>& named_nodes() {
    static std::map<std::string, BlockNode*> nodes;
    return nodes;
}

std::string label_of(const BdrvChild* edge) {
    return edge->parent() ? edge->parent()->node_name() : edge->parent_label();
}

// The first permission named in `perms`, as QEMU names it in conflicts.
std::string first_permission(uint32_t perms) {
    for (uint32_t bit = 1; bit <= kPermResize; bit <<= 1)
        if (perms & bit) return permission_names(bit);
    return "";
}

// Checks an edge wanting (perm, shared) on `child` against the child's
// other parents.
Status check_against_parents(BlockNode* child, const BdrvChild* ignore, uint32_t perm,
                             uint32_t shared) {
    for (BdrvChild* other : child->parents()) {
        if (other == ignore) continue;
        if (uint32_t denied = perm & ~other->shared()) {
            return make_error(ErrorKind::kPermission,
                              "Conflicts with use by " + label_of(other) + " as '" + other->name() +
                                  "', which does not allow '" + first_permission(denied) + "' on " +
                                  child->node_name());
        }
        if (uint32_t used = other->perm() & ~shared) {
            return make_error(ErrorKind::kPermission,
                              "Conflicts with use by " + label_of(other) + " as '" + other->name() +
                                  "', which uses '" + first_permission(used) + "' on " +
                                  child->node_name());
        }
    }
    return {};
}

Status co_close_and_delete(BlockNode* node) {
    Status closed = node->co_close();
    if (!node->node_name().empty()) release_node_name(node->node_name());
    delete node;
    return closed;
}

// Options every node accepts besides its driver's (QEMU's bdrv_runtime_opts
// and the common cache/discard keys); they adjust the flags.
Status take_common_options(qapi::OptionsTree& options, OpenFlags& flags, std::string* node_name) {
    if (auto v = options.take("node-name")) *node_name = *v;
    if (auto v = options.take("read-only")) {
        ASSIGN_OR_RETURN(flags.read_only, qapi::parse_bool_option("read-only", *v));
    }
    if (auto v = options.take("auto-read-only")) {
        ASSIGN_OR_RETURN(bool unused, qapi::parse_bool_option("auto-read-only", *v));
        (void)unused;
    }
    if (auto v = options.take("force-share")) {
        ASSIGN_OR_RETURN(flags.force_share, qapi::parse_bool_option("force-share", *v));
    }
    if (auto v = options.take("cache.direct")) {
        ASSIGN_OR_RETURN(flags.cache_direct, qapi::parse_bool_option("cache.direct", *v));
    }
    if (auto v = options.take("cache.no-flush")) {
        ASSIGN_OR_RETURN(flags.cache_no_flush, qapi::parse_bool_option("cache.no-flush", *v));
    }
    if (auto v = options.take("discard")) {
        if (*v == "ignore" || *v == "off")
            flags.discard = DiscardMode::kIgnore;
        else if (*v == "unmap" || *v == "on")
            flags.discard = DiscardMode::kUnmap;
        else
            return invalid_argument("Invalid discard option");
    }
    if (auto v = options.take("detect-zeroes")) {
        if (*v == "off")
            flags.detect_zeroes = DetectZeroes::kOff;
        else if (*v == "on")
            flags.detect_zeroes = DetectZeroes::kOn;
        else if (*v == "unmap")
            flags.detect_zeroes = DetectZeroes::kUnmap;
        else
            return invalid_argument("Parameter 'detect-zeroes' does not accept value '" + *v + "'");
    }
    if (flags.force_share && !flags.read_only)
        return invalid_argument("force-share=on can only be used with read-only images");
    return {};
}

// Reads the first bytes of `file` for probing.
Result<std::vector<std::byte>> co_read_head(BlockNode* file) {
    ASSIGN_OR_RETURN(
        std::unique_ptr<BdrvChild> edge,
        attach_child(nullptr, "probe", file, "probe", kRoleData, kPermConsistentRead, kPermAll));
    std::vector<std::byte> head(std::min<uint64_t>(kProbeBytes, file->size()));
    TRY(co_child_pread(edge.get(), 0, head.data(), head.size()));
    return head;
}

}  // namespace

// ---- References -----------------------------------------------------------------

NodeRef::NodeRef(BlockNode* node) : node_(node) {
    if (node_) node_ref(node_);
}

void NodeRef::reset() {
    if (BlockNode* node = node_) {
        node_ = nullptr;
        node_unref(node);
    }
}

void node_ref(BlockNode* node) {
    ++node->refcount_;
}

void node_unref(BlockNode* node) {
    if (--node->refcount_ > 0) return;
    if (in_coroutine()) {
        (void)co_close_and_delete(node);
    } else {
        run_sync([node] { (void)co_close_and_delete(node); });
    }
}

// ---- Names ----------------------------------------------------------------------

Result<std::string> allocate_node_name(const std::string& requested) {
    auto& nodes = named_nodes();
    if (!requested.empty()) {
        if (requested[0] == '#' || requested.size() > 31)
            return invalid_argument("Invalid node-name: '" + requested + "'");
        if (nodes.count(requested))
            return invalid_argument("Duplicate nodes with node-name='" + requested + "'");
        nodes[requested] = nullptr;
        return requested;
    }
    static uint64_t counter = 0;
    std::string name;
    do {
        name = "#block" + std::to_string(counter++);
    } while (nodes.count(name));
    nodes[name] = nullptr;
    return name;
}

void release_node_name(const std::string& name) {
    named_nodes().erase(name);
}

BlockNode* find_node(const std::string& name) {
    auto it = named_nodes().find(name);
    return it == named_nodes().end() ? nullptr : it->second;
}

// ---- Permissions ----------------------------------------------------------------

void default_child_permissions(uint32_t role, const OpenFlags& parent_flags, uint32_t* perm,
                               uint32_t* shared) {
    if (role & kRoleCow) {
        // A backing image is only read, and others may read it too.
        *perm = kPermConsistentRead;
        *shared = kPermConsistentRead | kPermWriteUnchanged;
    } else {
        // Storage (and filtered data): metadata must stay consistent, so
        // nobody else may write or resize it while we hold it.
        *perm = parent_flags.no_io ? 0u : uint32_t{kPermConsistentRead};
        if (!parent_flags.read_only) *perm |= kPermWrite | kPermResize;
        *shared = kPermConsistentRead | kPermWriteUnchanged;
    }
    if (parent_flags.force_share) *shared = kPermAll;
}

Status refresh_permissions(BlockNode* node) {
    uint32_t perm = 0;
    uint32_t shared = kPermAll;
    for (BdrvChild* edge : node->parents()) {
        perm |= edge->perm();
        shared &= edge->shared();
    }
    return node->update_permissions(perm, shared);
}

Result<std::unique_ptr<BdrvChild>> attach_child(BlockNode* parent, const std::string& parent_label,
                                                BlockNode* child, const std::string& name,
                                                uint32_t role, uint32_t perm, uint32_t shared) {
    TRY(check_against_parents(child, nullptr, perm, shared));
    auto edge = std::make_unique<BdrvChild>(name, parent, parent_label, child, role, perm, shared);
    if (Status s = refresh_permissions(child); !s.ok()) {
        edge.reset();  // drops our permissions again
        return std::move(s).error();
    }
    return edge;
}

Status update_edge_permissions(BdrvChild* edge, uint32_t perm, uint32_t shared) {
    TRY(check_against_parents(edge->node(), edge, perm, shared));
    const uint32_t old_perm = edge->perm();
    const uint32_t old_shared = edge->shared();
    edge->set_permissions(perm, shared);
    if (Status s = refresh_permissions(edge->node()); !s.ok()) {
        edge->set_permissions(old_perm, old_shared);
        (void)refresh_permissions(edge->node());
        return s;
    }
    return {};
}

Status replace_child(BdrvChild* edge, BlockNode* new_child) {
    TRY(check_against_parents(new_child, edge, edge->perm(), edge->shared()));
    edge->set_node(new_child);
    return refresh_permissions(new_child);
}

Status insert_filter_above(BlockNode* below, BlockNode* filter) {
    BdrvChild* filter_edge = filter->primary_child();
    if (!filter_edge || filter_edge->node() != below)
        return invalid_argument("filter " + filter->node_name() + " does not sit on " +
                                below->node_name());
    // The filter now acts for all of below's parents: it takes what they took.
    std::vector<BdrvChild*> moving;
    uint32_t perm = filter_edge->perm();
    uint32_t shared = filter_edge->shared();
    for (BdrvChild* edge : below->parents()) {
        if (edge == filter_edge) continue;
        moving.push_back(edge);
        perm |= edge->perm();
        shared &= edge->shared();
    }
    for (BdrvChild* edge : moving)
        edge->set_node(filter);
    filter_edge->set_permissions(perm, shared);
    TRY(refresh_permissions(filter));
    return refresh_permissions(below);
}

Status remove_filter(BlockNode* filter) {
    BdrvChild* filter_edge = filter->primary_child();
    if (!filter->is_filter() || !filter_edge)
        return invalid_argument(filter->node_name() + " is not a filter");
    BlockNode* below = filter_edge->node();
    NodeRef keep(filter);  // the moves below drop the parents' references
    std::vector<BdrvChild*> moving(filter->parents().begin(), filter->parents().end());
    for (BdrvChild* edge : moving)
        edge->set_node(below);
    return refresh_permissions(below);
}

Status co_reopen(BlockNode* node, bool read_only) {
    OpenFlags flags = node->open_flags();
    if (flags.read_only == read_only) return {};
    if (!read_only && flags.force_share)
        return invalid_argument("force-share=on can only be used with read-only images");
    flags.read_only = read_only;
    // Read-write needs writable storage below first; read-only settles the
    // node (flush) before its storage stops taking writes.
    auto storage_children = [&] {
        std::vector<BdrvChild*> out;
        for (const auto& edge : node->children())
            if (!(edge->role() & kRoleCow)) out.push_back(edge.get());
        return out;
    };
    // A node that swaps its descriptor must not have requests in flight.
    co_drain(node);
    if (!read_only) {
        for (BdrvChild* edge : storage_children()) {
            TRY(co_reopen(edge->node(), false));
            uint32_t perm, shared;
            default_child_permissions(edge->role(), flags, &perm, &shared);
            TRY(update_edge_permissions(edge, perm, shared));
        }
        TRY(node->co_reopen(flags));
        node->set_open_flags(flags);
    } else {
        TRY(co_node_flush(node));
        TRY(node->co_reopen(flags));
        node->set_open_flags(flags);
        for (BdrvChild* edge : storage_children()) {
            uint32_t perm, shared;
            default_child_permissions(edge->role(), flags, &perm, &shared);
            TRY(update_edge_permissions(edge, perm, shared));
            TRY(co_reopen(edge->node(), true));
        }
    }
    return {};
}

Status co_reopen_cache(BlockNode* node, bool cache_direct, bool cache_no_flush) {
    for (const auto& edge : node->children())
        if (!(edge->role() & kRoleCow))
            TRY(co_reopen_cache(edge->node(), cache_direct, cache_no_flush));
    OpenFlags flags = node->open_flags();
    if (flags.cache_direct == cache_direct && flags.cache_no_flush == cache_no_flush) return {};
    flags.cache_direct = cache_direct;
    flags.cache_no_flush = cache_no_flush;
    co_drain(node);
    TRY(node->co_reopen(flags));
    node->set_open_flags(flags);
    return {};
}

// ---- Opening --------------------------------------------------------------------

OpenContext::OpenContext(std::string filename, qapi::OptionsTree options, OpenFlags flags)
    : filename_(std::move(filename)), options_(std::move(options)), flags_(flags) {}

Result<BdrvChild*> OpenContext::co_open_child(BlockNode& parent, const std::string& name,
                                              uint32_t role, const std::string& filename,
                                              bool probe, const std::string& format) {
    OpenFlags child_flags = flags_;
    if (role & kRoleCow) {
        child_flags.read_only = true;
        child_flags.no_io = false;
    }
    NodeRef child;
    if (auto reference = options_.take(name)) {
        // "file=node-name" refers to an existing node.
        BlockNode* existing = find_node(*reference);
        if (!existing)
            return make_error(ErrorKind::kNotFound,
                              "Cannot find device='' nor node-name='" + *reference + "'");
        child = NodeRef(existing);
    } else if (name == "file" && preopened_file_) {
        child = std::move(preopened_file_);
    } else {
        qapi::OptionsTree sub = options_.extract_subtree(name);
        std::string child_filename = filename;
        if (!format.empty() && !sub.has("driver")) sub.set("driver", format);
        ASSIGN_OR_RETURN(
            child, co_open_node(child_filename, std::move(sub), child_flags, probe, warnings_));
    }
    uint32_t perm, shared;
    default_child_permissions(role, flags_, &perm, &shared);
    ASSIGN_OR_RETURN(std::unique_ptr<BdrvChild> edge,
                     attach_child(&parent, {}, child.get(), name, role, perm, shared));
    return parent.adopt_child(std::move(edge));
}

std::string probe_warning(const std::string& filename) {
    return "WARNING: Image format was not specified for '" + filename +
           "' and probing guessed raw.\n"
           "         Automatically detecting the format is dangerous for raw images, write "
           "operations on block 0 will be restricted.\n"
           "         Specify the 'raw' format explicitly to remove the restrictions.";
}

const BlockDriver* probe_format(ByteSpan head, std::string_view filename) {
    const BlockDriver* best = nullptr;
    int best_score = 0;
    for (const BlockDriver* d : block_drivers()) {
        if (d->kind != DriverKind::kFormat || !d->probe) continue;
        int score = d->probe(head, filename);
        if (score > best_score) {
            best_score = score;
            best = d;
        }
    }
    return best ? best : find_block_driver("raw");
}

Result<NodeRef> co_open_node(const std::string& filename_in, qapi::OptionsTree options,
                             const OpenFlags& flags_in, bool probe,
                             std::vector<std::string>* warnings) {
    block_layer_init();
    std::string filename = filename_in;
    if (filename.rfind("json:", 0) == 0) {
        ASSIGN_OR_RETURN(qapi::OptionsTree from_json, qapi::parse_filename_or_options(filename));
        options.merge(from_json, /*overwrite=*/false);
        filename.clear();
    }
    OpenFlags flags = flags_in;
    std::string requested_name;
    TRY(take_common_options(options, flags, &requested_name));
    const nlohmann::ordered_json options_json = options.to_json();

    const BlockDriver* driver = nullptr;
    if (auto name = options.take("driver")) {
        driver = find_block_driver(*name);
        if (!driver) return invalid_argument("Unknown driver '" + *name + "'");
    }
    // QEMU parses a protocol prefix only in a filename argument, never in
    // a "filename" option (file.filename=a:b names the file "a:b").
    bool filename_from_options = false;
    if (filename.empty()) {
        if (auto f = options.get("filename"); f && (!driver || driver->is_format())) {
            filename = *f;
            options.erase("filename");
            filename_from_options = true;
        }
    }
    // A protocol prefix picks the protocol; a format is still probed on top
    // of it when one is wanted (QEMU opens "blkdebug::a.qcow2" and
    // "null-co://" as qcow2/raw over the protocol node).
    const BlockDriver* protocol = nullptr;
    if (!driver && !filename_from_options) {
        protocol = find_protocol_for_filename(filename);
        if (!protocol) {
            if (auto prefix = qapi::split_protocol_prefix(filename))
                return invalid_argument("Unknown protocol '" + prefix->protocol + "'");
        }
        if (!probe) driver = protocol;
    }

    std::vector<std::string> local_warnings;
    std::vector<std::string>* sink = warnings ? warnings : &local_warnings;
    NodeRef preopened_file;
    bool probed = false;
    if (auto reference = options.get("file"); reference && (!driver || driver->is_format())) {
        // "file=NAME" refers to an existing node (QEMU's bdrv_open_child).
        BlockNode* existing = find_node(*reference);
        if (!existing)
            return make_error(ErrorKind::kNotFound, "Cannot find device='" + *reference +
                                                        "' nor node-name='" + *reference + "'");
        options.erase("file");
        preopened_file = NodeRef(existing);
        if (!driver) {
            ASSIGN_OR_RETURN(std::vector<std::byte> head, co_read_head(existing));
            driver = probe_format(head, existing->filename());
            probed = true;
        }
    }
    if (!driver) {
        // Without a name, a "file" subtree (json:{"file":{...}}) is the
        // protocol node to probe.
        const bool file_subtree = probe && options.has_subtree("file");
        if (filename.empty() && !file_subtree)
            return invalid_argument("The 'file' block driver requires a file name");
        const BlockDriver* file_driver = protocol ? protocol : find_block_driver("file");
        if (!probe) {
            driver = file_driver;
        } else {
            // Open the protocol first, then let the formats look at its head.
            qapi::OptionsTree file_options = options.extract_subtree("file");
            if (!file_options.has("driver") && !filename.empty())
                file_options.set("driver", file_driver->name);
            ASSIGN_OR_RETURN(preopened_file,
                             co_open_node(filename, std::move(file_options), flags, false, sink));
            ASSIGN_OR_RETURN(std::vector<std::byte> head, co_read_head(preopened_file.get()));
            const std::string probed_name =
                filename.empty() ? preopened_file->filename() : filename;
            driver = probe_format(head, probed_name);
            probed = true;
            // qemu-img and qemu-io warn only when the image may be written.
            if (driver->name == "raw" && !flags.read_only)
                sink->push_back(probe_warning(probed_name));
        }
    }
    if (!driver->is_format() && !filename.empty() && !options.has("filename"))
        options.set("filename", filename);

    OpenContext ctx(filename, std::move(options), flags);
    ctx.set_warnings_sink(sink);
    ctx.set_format_probed(probed);
    ctx.set_preopened_file(std::move(preopened_file));
    ASSIGN_OR_RETURN(std::unique_ptr<BlockNode> node, driver->co_open(ctx));
    NodeRef ref(node.release());
    TRY(qapi::check_all_consumed(
        ctx.options(),
        driver->is_format() ? qapi::DriverClass::kFormat : qapi::DriverClass::kProtocol,
        driver->name));
    ASSIGN_OR_RETURN(std::string name, allocate_node_name(requested_name));
    named_nodes()[name] = ref.get();
    ref->set_node_name(name);
    if (ref->filename().empty()) {
        if (!filename.empty())
            ref->set_filename(filename);
        else if (BdrvChild* primary = ref->primary_child())
            ref->set_filename(primary->node()->filename());
    }
    ref->set_open_flags(ctx.flags());
    ref->set_options_json(options_json);
    return ref;
}

// ---- Query ----------------------------------------------------------------------

nlohmann::ordered_json query_graph() {
    nlohmann::ordered_json nodes = nlohmann::ordered_json::array();
    nlohmann::ordered_json edges = nlohmann::ordered_json::array();
    for (const auto& [name, node] : named_nodes()) {
        if (!node) continue;
        nlohmann::ordered_json n;
        n["node-name"] = name;
        n["driver"] = node->driver().name;
        n["size"] = node->size();
        n["read-only"] = node->read_only();
        n["filename"] = node->filename();
        n["options"] = node->options_json();
        nodes.push_back(std::move(n));
        for (const auto& edge : node->children()) {
            nlohmann::ordered_json e;
            e["parent"] = name;
            e["child"] = edge->node()->node_name();
            e["name"] = edge->name();
            e["role"] = edge->role();
            e["perm"] = permission_names(edge->perm());
            e["shared"] = permission_names(edge->shared());
            edges.push_back(std::move(e));
        }
    }
    nlohmann::ordered_json out;
    out["nodes"] = std::move(nodes);
    out["edges"] = std::move(edges);
    return out;
}

}  // namespace coblock
