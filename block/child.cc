// BdrvChild: an edge that holds a reference on its child.
#include "block/child.h"

#include "block/graph.h"
#include "block/node.h"

namespace coblock {

BdrvChild::BdrvChild(std::string name, BlockNode* parent, std::string parent_label,
                     BlockNode* child, uint32_t role, uint32_t perm, uint32_t shared)
    : name_(std::move(name)),
      parent_(parent),
      parent_label_(std::move(parent_label)),
      node_(child),
      role_(role),
      perm_(perm),
      shared_(shared) {
    node_ref(node_);
    node_->add_parent(this);
}

BdrvChild::~BdrvChild() {
    BlockNode* node = node_;
    node_->remove_parent(this);
    node_ = nullptr;
    // Our permissions no longer count (file locks are released with them).
    if (node->refcount_ > 1) (void)refresh_permissions(node);
    node_unref(node);
}

void BdrvChild::set_node(BlockNode* node) {
    node_ref(node);
    BlockNode* old = node_;
    old->remove_parent(this);
    node_ = node;
    node_->add_parent(this);
    if (old->refcount_ > 1) (void)refresh_permissions(old);
    node_unref(old);
}

}  // namespace coblock
