// OFD byte-range locks that mirror a node's graph permissions onto its file,
// with QEMU's byte layout (block/file-posix.c raw_apply_lock_bytes,
// raw_check_lock_bytes), so coblock and QEMU refuse to both write one image.
#pragma once

#include <cstdint>
#include <string>

#include "formats/result.h"

namespace coblock {

// Layout (QEMU's RAW_LOCK_PERM_BASE / RAW_LOCK_SHARED_BASE): for permission
// bit i (block/types.h Permission, QEMU's BLK_PERM_* values) a shared OFD
// read lock on byte 100+i while the permission is held, and on byte 200+i
// while it is not shared. A conflict is detected by asking F_OFD_GETLK for
// a write lock on the opposite byte; locks of the same open file description
// never conflict with themselves, but those of another descriptor of this
// process do (two nodes on one file refuse each other like two processes).
class FileLocks {
  public:
    static constexpr int kPermBase = 100;
    static constexpr int kSharedBase = 200;

    // Moves the locks on `fd` to (perm, shared): takes the bytes the new
    // state needs on top of the old ones, checks that no other descriptor
    // conflicts, then releases what the new state no longer needs. On
    // failure the old state stays in force and the error carries QEMU's
    // text plus its hint line naming `filename`:
    //   Failed to get "write" lock            (another holder refuses to share)
    //   Failed to get shared "write" lock     (another holder has what we refuse)
    //   Is another process using the image [FILENAME]?
    Status update(int fd, uint32_t perm, uint32_t shared, const std::string& filename);

    // Takes the bytes of the current state on `fd` without checking (used
    // when a node reopens its file: the old descriptor, still holding the
    // same bytes, would conflict with the check).
    Status copy_to(int fd) const;

    // Releases every byte this object holds on `fd` (before closing it, or
    // when locking is switched off).
    void release(int fd);

    uint32_t locked_perm() const { return locked_perm_; }
    uint32_t locked_unshared() const { return locked_unshared_; }

    // One-shot lock for image creation (QEMU's raw_co_create): takes
    // (perm, ~shared) and checks; the caller releases with release_all().
    static Status lock_for_create(int fd, uint32_t perm, uint32_t shared,
                                  const std::string& filename);
    static void release_all(int fd);

  private:
    // Sets the held bytes to exactly (perm, unshared) when `drop` is true,
    // or adds them to what is held when false. Updates the bookkeeping as
    // each byte changes, so a failure midway leaves it truthful.
    Status apply(int fd, uint32_t perm, uint32_t unshared, bool drop);

    uint32_t locked_perm_ = 0;      // bits whose byte 100+i we hold
    uint32_t locked_unshared_ = 0;  // bits whose byte 200+i we hold
};

}  // namespace coblock
