// OFD lock bytes for graph permissions, as QEMU's file-posix.c
// (raw_apply_lock_bytes, raw_check_lock_bytes, raw_handle_perm_lock).
#include "drivers/file/file_locks.h"

#include <fcntl.h>

#include <cerrno>

#include "block/types.h"

namespace coblock {

namespace {

constexpr int kPermBits = 4;  // consistent read, write, write unchanged, resize

struct flock make_flock(short type, int byte) {
    struct flock fl = {};
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = byte;
    fl.l_len = 1;
    fl.l_pid = 0;  // required by F_OFD_*
    return fl;
}

int lock_byte(int fd, int byte) {
    struct flock fl = make_flock(F_RDLCK, byte);
    return fcntl(fd, F_OFD_SETLK, &fl) == -1 ? errno : 0;
}

int unlock_byte(int fd, int byte) {
    struct flock fl = make_flock(F_UNLCK, byte);
    return fcntl(fd, F_OFD_SETLK, &fl) == -1 ? errno : 0;
}

// True when another open file description holds `byte` (QEMU's
// qemu_lock_fd_test with exclusive=true). A failing fcntl counts as a
// conflict, as it does in QEMU.
bool byte_is_taken(int fd, int byte) {
    struct flock fl = make_flock(F_WRLCK, byte);
    if (fcntl(fd, F_OFD_GETLK, &fl) == -1) return true;
    return fl.l_type != F_UNLCK;
}

Error lock_error(std::string message, const std::string& filename) {
    // QEMU appends the hint on its own line; our tools print the message
    // as it is, so the two lines come out the same.
    return make_error(ErrorKind::kPermission,
                      message + "\nIs another process using the image [" + filename + "]?");
}

// QEMU's check: for each perm we need, nobody may hold "not shared" on it;
// for each perm we do not share, nobody may hold it.
Status check_conflicts(int fd, uint32_t perm, uint32_t shared, const std::string& filename) {
    for (int i = 0; i < kPermBits; ++i) {
        const uint32_t bit = 1u << i;
        if ((perm & bit) && byte_is_taken(fd, FileLocks::kSharedBase + i))
            return lock_error("Failed to get \"" + permission_names(bit) + "\" lock", filename);
    }
    for (int i = 0; i < kPermBits; ++i) {
        const uint32_t bit = 1u << i;
        if (!(shared & bit) && byte_is_taken(fd, FileLocks::kPermBase + i))
            return lock_error("Failed to get shared \"" + permission_names(bit) + "\" lock",
                              filename);
    }
    return {};
}

}  // namespace

Status FileLocks::apply(int fd, uint32_t perm, uint32_t unshared, bool drop) {
    struct Set {
        int base;
        uint32_t want;
        uint32_t* held;
    } sets[] = {{kPermBase, perm, &locked_perm_}, {kSharedBase, unshared, &locked_unshared_}};
    for (Set& set : sets) {
        for (int i = 0; i < kPermBits; ++i) {
            const uint32_t bit = 1u << i;
            const int byte = set.base + i;
            if ((set.want & bit) && !(*set.held & bit)) {
                if (int err = lock_byte(fd, byte))
                    return errno_error(err, "Failed to lock byte " + std::to_string(byte));
                *set.held |= bit;
            } else if (drop && (*set.held & bit) && !(set.want & bit)) {
                if (int err = unlock_byte(fd, byte))
                    return errno_error(err, "Failed to unlock byte " + std::to_string(byte));
                *set.held &= ~bit;
            }
        }
    }
    return {};
}

Status FileLocks::update(int fd, uint32_t perm, uint32_t shared, const std::string& filename) {
    perm &= kPermAll;
    const uint32_t unshared = ~shared & kPermAll;
    const uint32_t old_perm = locked_perm_;
    const uint32_t old_unshared = locked_unshared_;
    // Prepare: hold old and new together while checking, so there is no
    // moment in which neither state is visible to other processes.
    Status status = apply(fd, old_perm | perm, old_unshared | unshared, false);
    if (status.ok()) status = check_conflicts(fd, perm, shared, filename);
    if (!status.ok()) {
        (void)apply(fd, old_perm, old_unshared, true);  // abort: back to the old bytes
        return status;
    }
    return apply(fd, perm, unshared, true);  // commit: drop what is no longer needed
}

Status FileLocks::copy_to(int fd) const {
    FileLocks copy;
    return copy.apply(fd, locked_perm_, locked_unshared_, false);
}

void FileLocks::release(int fd) {
    (void)apply(fd, 0, 0, true);
}

Status FileLocks::lock_for_create(int fd, uint32_t perm, uint32_t shared,
                                  const std::string& filename) {
    FileLocks locks;
    TRY(locks.apply(fd, perm & kPermAll, ~shared & kPermAll, false));
    return check_conflicts(fd, perm, shared, filename);
}

void FileLocks::release_all(int fd) {
    FileLocks all;
    all.locked_perm_ = kPermAll;
    all.locked_unshared_ = kPermAll;
    all.release(fd);
}

}  // namespace coblock
