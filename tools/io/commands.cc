// The command dispatcher and the commands that need no image: help, quit,
// sleep, sigraise, abort and the blkdebug breakpoint commands. Follows qemu-io
// 7.2 qemu-io-cmds.c: a sorted table, breakline() splitting on single spaces,
// init_check_command() before the argument count, then getopt from scratch.
#include "tools/io/commands.h"

#include <getopt.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "block/child.h"
#include "block/debug_event.h"
#include "block/node.h"
#include "coroutine/event_loop.h"
#include "tools/io/cvtnum.h"
#include "tools/io/report.h"

namespace coblock::io {

namespace {

std::vector<CmdInfo>& table() {
    static std::vector<CmdInfo> commands;
    return commands;
}

constexpr size_t kMisalignOffset = 16;  // qemu-io's MISALIGN_OFFSET

// qemu-io's breakline: split on ' ' only, drop empty tokens. A TAB is part
// of a token (number parsing skips leading blanks anyway).
std::vector<std::string> breakline(const std::string& line) {
    std::vector<std::string> words;
    size_t start = 0;
    while (start <= line.size()) {
        size_t space = line.find(' ', start);
        if (space == std::string::npos) space = line.size();
        if (space > start) words.push_back(line.substr(start, space - start));
        start = space + 1;
    }
    return words;
}

bool init_check_command(const CmdInfo& cmd) {
    if (cmd.flags & kCmdGlobal) return true;
    if (!(cmd.flags & kCmdNoFileOk) && !shell().blk) {
        std::fprintf(stderr, "no file open, try 'help open'\n");
        return false;
    }
    return true;
}

int run_command(const CmdInfo& cmd, int argc, char** argv) {
    if (!init_check_command(cmd)) return -EINVAL;
    int args = argc - 1;
    if (args < cmd.argmin || (cmd.argmax != -1 && args > cmd.argmax)) {
        if (cmd.argmax == -1) {
            std::fprintf(stderr, "bad argument count %d to %s, expected at least %d arguments\n",
                         args, argv[0], cmd.argmin);
        } else if (cmd.argmin == cmd.argmax) {
            std::fprintf(stderr, "bad argument count %d to %s, expected %d arguments\n", args,
                         argv[0], cmd.argmin);
        } else {
            std::fprintf(stderr,
                         "bad argument count %d to %s, expected between %d and %d arguments\n",
                         args, argv[0], cmd.argmin, cmd.argmax);
        }
        return -EINVAL;
    }
    // qemu-io asks for the write permission per command; on a read-only
    // node the block layer refuses it with this message.
    if ((cmd.perm & kCmdPermWrite) && shell().blk && shell().blk->root() &&
        shell().blk->root()->read_only()) {
        error_report("Block node is read-only");
        return -EPERM;
    }
    // glibc: optind = 0 restarts getopt, including argument permutation.
    optind = 0;
    return cmd.handler(argc, argv);
}

// ---- help ----------------------------------------------------------------------

void help_oneline(const char* name, const CmdInfo& cmd) {
    if (name) {
        std::printf("%s ", name);
    } else {
        std::printf("%s ", cmd.name);
        if (cmd.altname) std::printf("(or %s) ", cmd.altname);
    }
    if (cmd.args) std::printf("%s ", cmd.args);
    std::printf("-- %s\n", cmd.oneline);
}

int help_f(int argc, char** argv) {
    if (argc < 2) {
        for (const CmdInfo& cmd : table())
            help_oneline(cmd.name, cmd);
        std::printf("\nUse 'help commandname' for extended help.\n");
        return 0;
    }
    const CmdInfo* cmd = find_command(argv[1]);
    if (!cmd) {
        std::printf("command %s not found\n", argv[1]);
        return -EINVAL;
    }
    help_oneline(argv[1], *cmd);
    if (cmd->help) std::fputs(cmd->help, stdout);
    return 0;
}

int quit_f(int, char**) {
    shell().quit = true;
    return 0;
}

// Runs the loop for the given time, so AIO completions print meanwhile.
int sleep_f(int, char** argv) {
    char* end;
    long ms = std::strtol(argv[1], &end, 0);
    if (ms < 0 || *end != '\0') {
        std::printf("%s is not a valid number\n", argv[1]);
        return -EINVAL;
    }
    EventLoop& loop = EventLoop::current();
    bool expired = false;
    Timer timer(loop, [&] { expired = true; });
    timer.arm_in(static_cast<int64_t>(ms) * 1000000);
    loop.run_until([&] { return expired; });
    return 0;
}

int sigraise_f(int, char** argv) {
    int64_t sig = cvtnum(argv[1]);
    if (sig < 0) {
        print_cvtnum_err(sig, argv[1]);
        return static_cast<int>(sig);
    }
    if (sig > NSIG) {
        std::printf("signal argument '%s' is too large to be a valid signal\n", argv[1]);
        return -EINVAL;
    }
    // raise() may kill us without flushing stdio: flush what qemu-io flushes.
    std::fflush(stdout);
    std::fflush(stderr);
    std::raise(static_cast<int>(sig));
    return 0;
}

[[noreturn]] int abort_f(int, char**) {
    std::abort();
}

// The blkdebug commands act on the first debug node below the root
// (block/debug_event.h); without one QEMU's bdrv_debug_* fail with ENOTSUP.
// Everything is printed on stdout, as qemu-io does.
BlockNode* debug_root() {
    return shell().blk ? shell().blk->root() : nullptr;
}

int break_f(int, char** argv) {
    Status s = debug_breakpoint(debug_root(), argv[1], argv[2]);
    if (!s.ok()) {
        std::printf("Could not set breakpoint: %s\n", std::strerror(status_errno(s)));
        return -status_errno(s);
    }
    return 0;
}

// QEMU 7.2 quirk: success only if a not-yet-hit breakpoint was deleted.
int remove_break_f(int, char** argv) {
    Status s = debug_remove_breakpoint(debug_root(), argv[1]);
    if (!s.ok()) {
        std::printf("Could not remove breakpoint %s: %s\n", argv[1],
                    std::strerror(status_errno(s)));
        return -status_errno(s);
    }
    return 0;
}

int resume_f(int, char** argv) {
    Status s = debug_resume(debug_root(), argv[1]);
    if (!s.ok()) {
        std::printf("Could not resume request: %s\n", std::strerror(status_errno(s)));
        return -status_errno(s);
    }
    return 0;
}

// Runs the loop until a request is suspended with the tag. Like qemu-io
// 7.2 this never returns if none ever is, even when no blkdebug node exists
// (qemu-io then waits in aio_poll until killed; outstanding AIO still
// completes and reports meanwhile).
int wait_break_f(int, char** argv) {
    BlockNode* root = debug_root();
    EventLoop& loop = EventLoop::current();
    while (!debug_is_suspended(root, argv[1]))
        loop.poll(true);
    return 0;
}

constexpr char kSigraiseHelp[] =
    "\n"
    " raises the given signal\n"
    "\n"
    " Example:\n"
    " 'sigraise 15' - raises SIGTERM\n"
    "\n"
    " Invokes raise(signal), where \"signal\" is the mandatory integer argument\n"
    " given to sigraise.\n"
    "\n";

}  // namespace

Shell& shell() {
    static Shell state;
    return state;
}

void add_command(const CmdInfo& cmd) {
    auto& commands = table();
    // Kept sorted by name: `help` lists commands in this order.
    auto at = std::lower_bound(
        commands.begin(), commands.end(), cmd,
        [](const CmdInfo& a, const CmdInfo& b) { return std::strcmp(a.name, b.name) < 0; });
    commands.insert(at, cmd);
}

void register_core_commands() {
    add_command({"help", "?", help_f, 0, 1, kCmdGlobal, 0, "[command]",
                 "help for one or all commands", nullptr});
    add_command({"quit", "q", quit_f, -1, -1, kCmdGlobal, 0, nullptr, "exit the program", nullptr});
    add_command({"sleep", nullptr, sleep_f, 1, 1, kCmdNoFileOk, 0, nullptr,
                 "waits for the given value in milliseconds", nullptr});
    add_command({"sigraise", nullptr, sigraise_f, 1, 1, kCmdNoFileOk, 0, "signal",
                 "raises a signal", kSigraiseHelp});
    add_command({"abort", nullptr, abort_f, 0, 0, kCmdNoFileOk, 0, nullptr,
                 "simulate a program crash using abort(3)", nullptr});
    add_command({"break", nullptr, break_f, 2, 2, 0, 0, "event tag",
                 "sets a breakpoint on event and tags the stopped request as tag", nullptr});
    add_command({"remove_break", nullptr, remove_break_f, 1, 1, 0, 0, "tag",
                 "remove a breakpoint by tag", nullptr});
    add_command({"resume", nullptr, resume_f, 1, 1, 0, 0, "tag",
                 "resumes the request tagged as tag", nullptr});
    add_command({"wait_break", nullptr, wait_break_f, 1, 1, 0, 0, "tag",
                 "waits for the suspension of a request", nullptr});
}

const CmdInfo* find_command(const char* name) {
    for (const CmdInfo& cmd : table()) {
        if (std::strcmp(cmd.name, name) == 0 ||
            (cmd.altname && std::strcmp(cmd.altname, name) == 0))
            return &cmd;
    }
    return nullptr;
}

std::vector<std::string> command_names() {
    std::vector<std::string> names;
    for (const CmdInfo& cmd : table())
        names.emplace_back(cmd.name);
    return names;
}

int command_usage(const CmdInfo& cmd) {
    std::printf("%s %s -- %s\n", cmd.name, cmd.args ? cmd.args : "(null)", cmd.oneline);
    return -EINVAL;
}

int run_command_line(const std::string& line) {
    std::vector<std::string> words = breakline(line);
    if (words.empty()) return 0;
    std::vector<char*> argv;
    for (std::string& w : words)
        argv.push_back(w.data());
    argv.push_back(nullptr);
    const CmdInfo* cmd = find_command(argv[0]);
    if (!cmd) {
        std::fprintf(stderr, "command \"%s\" not found\n", argv[0]);
        return -EINVAL;
    }
    return run_command(*cmd, static_cast<int>(words.size()), argv.data());
}

IoBuffer::IoBuffer(size_t length, int pattern) : length_(length) {
    size_t extra = shell().misalign ? kMisalignOffset : 0;
    void* p = nullptr;
    if (posix_memalign(&p, 4096, std::max<size_t>(length + extra, 1)) != 0) std::abort();
    base_ = static_cast<uint8_t*>(p);
    std::memset(base_, pattern, length + extra);
    data_ = base_ + extra;
}

IoBuffer::~IoBuffer() {
    std::free(base_);
}

int status_errno(const Status& status) {
    return status.ok() ? 0 : status.error().as_errno();
}

}  // namespace coblock::io
