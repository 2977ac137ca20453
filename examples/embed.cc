// Embedding coblock in an emulator written around callbacks and its own
// epoll loop: open an image, submit asynchronous writes and reads with
// completion callbacks, and drive coblock's loop from the emulator's epoll.
// Built by CI so the README's example stays true.
#include <sys/epoll.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "block/backend.h"

namespace {

struct Request {
    const char* what;
    bool done = false;
    int ret = 0;
};

// The emulator's completion: runs in coblock's loop, never inside submit.
void on_complete(void* opaque, int ret) {
    auto* req = static_cast<Request*>(opaque);
    req->done = true;
    req->ret = ret;
    std::printf("%s completed: %s\n", req->what, ret == 0 ? "ok" : std::strerror(-ret));
}

}  // namespace

int main(int argc, char** argv) {
    const char* image = argc > 1 ? argv[1] : "null-co://";
    coblock::qapi::OptionsTree options;
    if (argc <= 1) {  // the null protocol itself, as QEMU wants it named
        options.set("driver", "null-co");
        options.set("read-zeroes", "on");
    }
    auto blk = coblock::BlockBackend::open(image, options, coblock::OpenFlags{});
    if (!blk.ok()) {
        std::fprintf(stderr, "embed: %s\n", blk.error().message.c_str());
        return 1;
    }
    std::printf("opened %s: %llu bytes, driver %s\n", image,
                static_cast<unsigned long long>((*blk)->length()),
                (*blk)->root()->driver().name.c_str());

    // The emulator's own event loop watches coblock's fd.
    int emulator_epoll = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    epoll_ctl(emulator_epoll, EPOLL_CTL_ADD, (*blk)->loop().fd(), &ev);

    std::vector<char> out(4096, 'E'), in(4096);
    coblock::IoVector out_iov(out.data(), out.size()), in_iov(in.data(), in.size());
    Request write{"write"}, flush{"flush"}, read{"read"};
    (*blk)->aio_pwritev(0, &out_iov, on_complete, &write);
    (*blk)->aio_flush(on_complete, &flush);

    while (!(write.done && flush.done)) {
        // Rounded up: coblock's timers can be due in microseconds (the
        // thread pool's stall check), and rounding down would spin.
        const int64_t timeout_ns = (*blk)->loop().timeout_ns();
        epoll_event got;
        epoll_wait(emulator_epoll, &got, 1,
                   timeout_ns < 0 ? -1 : static_cast<int>((timeout_ns + 999999) / 1000000));
        (*blk)->loop().poll(false);  // dispatch coblock's completions
    }
    (*blk)->aio_preadv(0, &in_iov, on_complete, &read);
    while (!read.done) {
        epoll_event got;
        epoll_wait(emulator_epoll, &got, 1, 0);
        (*blk)->loop().poll(false);
    }
    close(emulator_epoll);
    return write.ret == 0 && flush.ret == 0 && read.ret == 0 ? 0 : 1;
}
