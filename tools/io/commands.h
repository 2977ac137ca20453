// The coblock-io command table and shell state: each command has qemu-io
// 7.2's name, alias, argument bounds, flags, usage line and help text, and
// runs through the same dispatcher (qemu-io-cmds.c qemuio_command/command).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "block/backend.h"

namespace coblock::io {

// A handler gets argv with argv[0] the name as typed (an alias stays an
// alias: getopt's messages say "r: invalid option"). It returns 0 or a
// negative errno; any negative result makes the exit status 1.
struct CmdInfo;
using CmdHandler = int (*)(int argc, char** argv);

enum CmdFlag : unsigned {
    kCmdGlobal = 1u << 0,    // runs with or without an open image (help, quit)
    kCmdNoFileOk = 1u << 1,  // may run without an image (open, sleep)
};

// Write permission a command needs: refused on a read-only image with
// "Block node is read-only", as qemu-io's blk_set_perm refuses it.
enum CmdPerm : unsigned {
    kCmdPermNone = 0,
    kCmdPermWrite = 1u << 0,
};

struct CmdInfo {
    const char* name;
    const char* altname;  // one-letter alias or nullptr
    CmdHandler handler;
    int argmin;  // arguments after the name; -1 = no minimum
    int argmax;  // -1 = no maximum
    unsigned flags;
    unsigned perm;
    const char* args;  // usage after the name, nullptr when none
    const char* oneline;
    const char* help;  // extended help text (printed as is) or nullptr
};

// What every command acts on: the image (null when none is open), and
// whether the image was given as an option string (--image-opts).
struct Shell {
    std::unique_ptr<BlockBackend> blk;
    bool image_opts = false;
    bool quit = false;
    bool misalign = false;  // -m: buffers start 16 bytes past alignment
};
Shell& shell();

// Registers commands; main() calls each once before running commands.
void add_command(const CmdInfo& cmd);
void register_core_commands();   // help, quit, sleep, sigraise, abort, blkdebug ones
void register_io_commands();     // read, readv, write, writev
void register_aio_commands();    // aio_read, aio_write, aio_flush
void register_image_commands();  // info, map, alloc, length, truncate, discard, flush
void register_open_commands();   // open, close, reopen

// Runs one command line (split on single spaces, as qemu-io's breakline).
// Returns 0 or a negative errno.
int run_command_line(const std::string& line);

// "name args -- oneline" on stdout; returns -EINVAL (qemuio_command_usage).
int command_usage(const CmdInfo& cmd);
const CmdInfo* find_command(const char* name);
// The command names in table order (for tab completion).
std::vector<std::string> command_names();

// I/O buffers as qemu-io's qemu_io_alloc: `length` bytes filled with
// `pattern` (0xab for reads, 0xcd for writes), 4 KiB aligned unless -m.
class IoBuffer {
  public:
    IoBuffer(size_t length, int pattern);
    ~IoBuffer();
    IoBuffer(const IoBuffer&) = delete;
    IoBuffer& operator=(const IoBuffer&) = delete;
    uint8_t* data() { return data_; }
    size_t size() const { return length_; }

  private:
    uint8_t* base_ = nullptr;
    uint8_t* data_ = nullptr;
    size_t length_ = 0;
};

// The request size limit of QEMU's block layer (BDRV_REQUEST_MAX_BYTES).
constexpr int64_t kRequestMaxBytes = 2147483136;

// errno of a failed block-layer call, for strerror() in messages.
int status_errno(const Status& status);

}  // namespace coblock::io
