// BdrvChild: an edge from a parent (a node, or a backend at the root) to a
// child node, with a role and the permissions the parent holds on the child
// (`perm`) and lets other parents hold (`shared`). An edge keeps its child
// alive (a reference) and is owned by its parent.
#pragma once

#include <cstdint>
#include <string>

namespace coblock {

class BlockNode;

class BdrvChild {
  public:
    // Use graph.h's attach functions, which check permissions; this only
    // records the edge and takes a reference on `child`.
    BdrvChild(std::string name, BlockNode* parent, std::string parent_label, BlockNode* child,
              uint32_t role, uint32_t perm, uint32_t shared);
    ~BdrvChild();  // drops the reference
    BdrvChild(const BdrvChild&) = delete;
    BdrvChild& operator=(const BdrvChild&) = delete;

    const std::string& name() const { return name_; }  // "file", "backing", "root"
    BlockNode* node() const { return node_; }
    BlockNode* parent() const { return parent_; }  // nullptr for a backend's root
    // Who the parent is, for conflict messages: a node name or "block device".
    const std::string& parent_label() const { return parent_label_; }
    uint32_t role() const { return role_; }
    uint32_t perm() const { return perm_; }
    uint32_t shared() const { return shared_; }

    // Graph internals (graph.cc).
    void set_permissions(uint32_t perm, uint32_t shared) {
        perm_ = perm;
        shared_ = shared;
    }
    void set_node(BlockNode* node);  // moves the reference

  private:
    std::string name_;
    BlockNode* parent_;
    std::string parent_label_;
    BlockNode* node_;
    uint32_t role_;
    uint32_t perm_;
    uint32_t shared_;
};

}  // namespace coblock
