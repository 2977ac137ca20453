// libedit's callback interface (rl_callback_handler_install) rather than
// readline(): stdin is only read when poll() says it is readable, so the
// event loop keeps running between keystrokes, as qemu-io's own readline
// does. Each command runs inside the line handler; the next prompt is
// printed after its output.
#include "tools/io/line_editor.h"

#include <poll.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <editline/readline.h>

#include "tools/io/commands.h"
#include "tools/io/report.h"

namespace coblock::io {

namespace {

bool g_failed = false;
bool g_done = false;
bool g_line_done = false;

void on_line(char* line) {
    g_line_done = true;
    if (!line) {  // ^D on an empty line
        std::printf("\n");
        g_done = true;
        return;
    }
    if (*line) add_history(line);
    if (run_command_line(line) < 0) g_failed = true;
    std::free(line);
    std::fflush(stdout);
    std::fflush(stderr);
    if (shell().quit) g_done = true;
}

// Completes the first word with the command names (aliases are one letter
// and need no completion); later words get no completion. libedit 3.1 here
// inserts a unique match without the trailing space readline would add.
char* command_generator(const char* text, int state) {
    static std::vector<std::string> names;
    static size_t next = 0;
    if (state == 0) {
        names = command_names();
        next = 0;
    }
    const size_t len = std::strlen(text);
    while (next < names.size()) {
        const std::string& name = names[next++];
        if (name.compare(0, len, text) == 0) return strdup(name.c_str());
    }
    return nullptr;
}

char** complete(const char* text, int start, int) {
    rl_attempted_completion_over = 1;  // no filename completion fallback
    if (start != 0) return nullptr;
    return rl_completion_matches(text, command_generator);
}

}  // namespace

bool run_interactive_loop(EventLoop& loop) {
    const std::string prompt = std::string(program_name()) + "> ";
    rl_readline_name = program_name();
    rl_attempted_completion_function = complete;
    rl_callback_handler_install(prompt.c_str(), on_line);
    while (!g_done) {
        loop.poll(false);
        struct pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {loop.fd(), POLLIN, 0}};
        int64_t timeout_ns = loop.timeout_ns();
        int timeout_ms = timeout_ns < 0 ? -1 : static_cast<int>((timeout_ns + 999999) / 1000000);
        int n = ::poll(fds, 2, timeout_ms);
        if (n > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) rl_callback_read_char();
        // libedit does not prompt again by itself after a line: installing
        // the handler anew prints the prompt (after the command's output).
        if (g_line_done && !g_done) {
            g_line_done = false;
            rl_callback_handler_remove();
            rl_callback_handler_install(prompt.c_str(), on_line);
        }
        if (n > 0 && (fds[0].revents & (POLLHUP | POLLERR | POLLNVAL)) &&
            !(fds[0].revents & POLLIN))
            break;
    }
    rl_callback_handler_remove();
    return g_failed;
}

}  // namespace coblock::io
