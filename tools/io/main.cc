// coblock-io: a drop-in replacement for qemu-io. The command line, the image
// argument and the command loop follow qemu-io 7.2 (qemu-io.c main,
// command_loop, fetchline): -c commands first (stdin then never read), else
// "NAME> " prompts on stdout; exit status 1 if the image cannot be opened or
// any command failed. stdout stays block-buffered when it is not a terminal,
// exactly like qemu-io's stdio, because golden outputs record the order in
// which stdout and stderr lines interleave.
#include <getopt.h>
#include <poll.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "block/driver.h"
#include "coroutine/event_loop.h"
#include "tools/io/commands.h"
#include "tools/io/line_editor.h"
#include "tools/io/object.h"
#include "tools/io/open_image.h"
#include "tools/io/report.h"

#ifndef COBLOCK_VERSION
#define COBLOCK_VERSION "0.1.0"
#endif

namespace {

using namespace coblock;
using namespace coblock::io;

constexpr int kOptionObject = 256;
constexpr int kOptionImageOpts = 257;
constexpr int kMaxLine = 1024;  // qemu-io's MAXREADLINESZ (fgets buffer)

void usage(const char* name) {
    std::printf(
        "Usage: %s [OPTIONS]... [-c STRING]... [file]\n"
        "QEMU Disk exerciser\n"
        "\n"
        "  --object OBJECTDEF   define an object such as 'secret' for\n"
        "                       passwords and/or encryption keys\n"
        "  --image-opts         treat file as option string\n"
        "  -c, --cmd STRING     execute command with its arguments\n"
        "                       from the given string\n"
        "  -f, --format FMT     specifies the block driver to use\n"
        "  -r, --read-only      export read-only\n"
        "  -s, --snapshot       use snapshot file\n"
        "  -n, --nocache        disable host cache, short for -t none\n"
        "  -C, --copy-on-read   enable copy-on-read\n"
        "  -m, --misalign       misalign allocations for O_DIRECT\n"
        "  -k, --native-aio     use kernel AIO implementation\n"
        "                       (Linux only, prefer use of -i)\n"
        "  -i, --aio=MODE       use AIO mode (threads, native or io_uring)\n"
        "  -t, --cache=MODE     use the given cache mode for the image\n"
        "  -d, --discard=MODE   use the given discard mode for the image\n"
        "  -T, --trace [[enable=]<pattern>][,events=<file>][,file=<file>]\n"
        "                       specify tracing options\n"
        "                       see qemu-img(1) man page for full description\n"
        "  -U, --force-share    force shared permissions\n"
        "  -h, --help           display this help and exit\n"
        "  -V, --version        output version information and exit\n"
        "\n"
        "See '%s -c help' for information on available commands.\n"
        "\n"
        "See <https://qemu.org/contribute/report-a-bug> for how to report bugs.\n"
        "More information on the QEMU project at <https://qemu.org>.\n",
        name, name);
}

// Waits until stdin is readable while running the loop, so AIO completions
// print after the prompt as qemu-io's main_loop_wait makes them. Regular
// files and /dev/null cannot be polled by epoll but are always readable.
void wait_for_stdin(EventLoop& loop) {
    for (;;) {
        loop.poll(false);
        struct pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {loop.fd(), POLLIN, 0}};
        int64_t timeout_ns = loop.timeout_ns();
        int timeout_ms = timeout_ns < 0 ? -1 : static_cast<int>((timeout_ns + 999999) / 1000000);
        int n = ::poll(fds, 2, timeout_ms);
        if (n > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL))) return;
    }
}

// qemu-io's command_loop: returns whether any command failed.
bool command_loop(const std::vector<const char*>& commands) {
    bool failed = false;
    if (!commands.empty()) {
        for (size_t i = 0; !shell().quit && i < commands.size(); i++) {
            if (run_command_line(commands[i]) < 0) failed = true;
        }
        return failed;
    }
    EventLoop& loop = EventLoop::current();
    // By hand: line editing, history and completion (libedit).
    if (isatty(STDIN_FILENO)) return run_interactive_loop(loop);
    char line[kMaxLine];
    while (!shell().quit) {
        std::printf("%s> ", program_name());
        std::fflush(stdout);
        wait_for_stdin(loop);
        if (!std::fgets(line, sizeof(line), stdin)) break;
        size_t len = std::strlen(line);
        if (len && line[len - 1] == '\n') line[len - 1] = '\0';
        if (run_command_line(line) < 0) failed = true;
    }
    return failed;
}

}  // namespace

int main(int argc, char** argv) {
    set_program_name(argv[0]);
    // As qemu-io: a closed output pipe is an error, not a silent death.
    std::signal(SIGPIPE, SIG_IGN);
    block_layer_init();

    static const struct option kLongOptions[] = {
        {"help", no_argument, nullptr, 'h'},
        {"version", no_argument, nullptr, 'V'},
        {"cmd", required_argument, nullptr, 'c'},
        {"format", required_argument, nullptr, 'f'},
        {"read-only", no_argument, nullptr, 'r'},
        {"snapshot", no_argument, nullptr, 's'},
        {"nocache", no_argument, nullptr, 'n'},
        {"copy-on-read", no_argument, nullptr, 'C'},
        {"misalign", no_argument, nullptr, 'm'},
        {"native-aio", no_argument, nullptr, 'k'},
        {"aio", required_argument, nullptr, 'i'},
        {"discard", required_argument, nullptr, 'd'},
        {"cache", required_argument, nullptr, 't'},
        {"trace", required_argument, nullptr, 'T'},
        {"object", required_argument, nullptr, kOptionObject},
        {"image-opts", no_argument, nullptr, kOptionImageOpts},
        {"force-share", no_argument, nullptr, 'U'},
        {nullptr, 0, nullptr, 0},
    };
    OpenFlags flags = default_open_flags();
    std::vector<const char*> commands;
    const char* format = nullptr;
    bool force_share = false;
    bool snapshot = false;
    int c;
    // GNU getopt permutes: the filename may come before the options.
    while ((c = getopt_long(argc, argv, "hVc:d:f:rsnCmki:t:T:U", kLongOptions, nullptr)) != -1) {
        switch (c) {
            case 's':
                snapshot = true;
                break;
            case 'n':
                flags.cache_direct = true;
                flags.writethrough = false;
                break;
            case 'C':
                flags.copy_on_read = true;
                break;
            case 'd':
                if (std::strcmp(optarg, "off") && std::strcmp(optarg, "ignore") &&
                    std::strcmp(optarg, "on") && std::strcmp(optarg, "unmap")) {
                    error_report(std::string("Invalid discard option: ") + optarg);
                    return 1;
                }
                flags.discard = (!std::strcmp(optarg, "on") || !std::strcmp(optarg, "unmap"))
                                    ? DiscardMode::kUnmap
                                    : DiscardMode::kIgnore;
                break;
            case 'f':
                format = optarg;
                break;
            case 'c':
                commands.push_back(optarg);
                break;
            case 'r':
                flags.read_only = true;
                break;
            case 'm':
                shell().misalign = true;
                break;
            case 'k':
                flags.aio = AioMode::kNative;
                break;
            case 'i':
                if (!parse_aio_mode(optarg, flags.aio)) {
                    error_report(std::string("Invalid aio option: ") + optarg);
                    return 1;
                }
                break;
            case 't':
                if (!parse_cache_mode(optarg, flags)) {
                    error_report(std::string("Invalid cache option: ") + optarg);
                    return 1;
                }
                break;
            case 'T':
                break;  // tracing: accepted, no trace backend yet
            case 'V':
                std::printf("%s version " COBLOCK_VERSION
                            " (coblock)\n"
                            "Copyright (c) the coblock authors\n",
                            program_name());
                return 0;
            case 'h':
                usage(program_name());
                return 0;
            case 'U':
                force_share = true;
                break;
            case kOptionObject:
                switch (add_object(optarg)) {
                    case 0:
                        break;
                    case 2:
                        return 0;  // help was printed
                    default:
                        return 1;
                }
                break;
            case kOptionImageOpts:
                shell().image_opts = true;
                break;
            default:
                usage(program_name());
                return 1;
        }
    }
    if (argc - optind > 1) {
        usage(program_name());
        return 1;
    }
    if (format && shell().image_opts) {
        error_report("--image-opts and -f are mutually exclusive");
        return 1;
    }

    register_core_commands();
    register_io_commands();
    register_aio_commands();
    register_image_commands();
    register_open_commands();

    if (argc - optind == 1) {
        std::optional<qapi::OptionsTree> options;
        const char* name = argv[optind];
        if (shell().image_opts) {
            // --image-opts: a bare first element means file=...
            options = parse_image_options(argv[optind], "file");
            if (!options) return 1;
            name = nullptr;
        } else if (format) {
            options.emplace();
            options->set("driver", format);
        }
        if (open_image(name, flags, force_share, std::move(options), snapshot)) return 1;
    }

    bool failed = command_loop(commands);
    // Outstanding AIO completes (and reports) before the image closes; the
    // image closes before stdout is flushed at exit, as in qemu-io.
    if (shell().blk) shell().blk->drain();
    shell().blk.reset();
    return failed ? 1 : 0;
}
