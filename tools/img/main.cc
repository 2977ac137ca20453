// coblock-img: the image utility, command line compatible with qemu-img.
// Dispatches on the subcommand as QEMU 7.2 qemu-img.c main() does: global
// options (-h/--help, -V/--version) first, then "<command> [options]".
#include <getopt.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "block/driver.h"
#include "tools/img/commands.h"
#include "tools/img/options.h"

namespace {

struct Command {
    const char* name;
    int (*handler)(int argc, char** argv);
};

constexpr Command kCommands[] = {
    {"bench", coblock::img::img_bench},     {"check", coblock::img::img_check},
    {"compare", coblock::img::img_compare}, {"convert", coblock::img::img_convert},
    {"create", coblock::img::img_create},   {"info", coblock::img::img_info},
    {"map", coblock::img::img_map},         {"resize", coblock::img::img_resize},
};

}  // namespace

int main(int argc, char** argv) {
    using namespace coblock::img;
    set_program_name(argv[0]);
    // qemu-img ignores SIGPIPE so that a closed output pipe is an error, not
    // a silent death.
    std::signal(SIGPIPE, SIG_IGN);
    coblock::block_layer_init();

    if (argc < 2) error_exit("Not enough arguments");

    static const struct option kLongOptions[] = {
        {"help", no_argument, nullptr, 'h'},
        {"version", no_argument, nullptr, 'V'},
        {nullptr, 0, nullptr, 0},
    };
    // '+': stop at the command name; ':': report missing arguments ourselves.
    int c;
    while ((c = getopt_long(argc, argv, "+:hV", kLongOptions, nullptr)) != -1) {
        if (handle_shared_option(c, argv, nullptr)) continue;
        switch (c) {
            case 'V':
                std::fputs(version_string(), stdout);
                return EXIT_SUCCESS;
        }
    }
    if (optind >= argc) return EXIT_SUCCESS;  // only global options: as qemu-img

    const char* command = argv[optind];
    char** command_argv = argv + optind;
    const int command_argc = argc - optind;
    optind = 0;  // glibc: 0 restarts scanning (and permutation) from argv[1]
    for (const Command& cmd : kCommands) {
        if (std::strcmp(command, cmd.name) == 0) return cmd.handler(command_argc, command_argv);
    }
    error_exit(std::string("Command not found: ") + command);
}
