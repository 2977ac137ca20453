// AFL++ persistent-mode main (built with afl-clang-fast++): the test case
// arrives in shared memory and the harness runs up to 10000 times per fork.
// With file arguments it replays them instead, to reproduce a crash with
// the instrumented, sanitized binary.
#include <unistd.h>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "fuzz/fuzz.h"

__AFL_FUZZ_INIT();

int main(int argc, char** argv) {
    if (argc > 1) {
        for (int i = 1; i < argc; ++i) {
            std::ifstream in(argv[i], std::ios::binary);
            std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                       std::istreambuf_iterator<char>());
            std::fprintf(stderr, "replaying %s (%zu bytes)\n", argv[i], bytes.size());
            LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
        }
        return 0;
    }
#ifdef __AFL_HAVE_MANUAL_CONTROL
    __AFL_INIT();
#endif
    unsigned char* buf = __AFL_FUZZ_TESTCASE_BUF;
    std::vector<uint8_t> copy;
    while (__AFL_LOOP(10000)) {
        size_t len = static_cast<size_t>(__AFL_FUZZ_TESTCASE_LEN);
        // An exact-size heap copy, so ASan sees reads past the input.
        copy.assign(buf, buf + len);
        copy.shrink_to_fit();
        LLVMFuzzerTestOneInput(copy.data(), copy.size());
    }
    return 0;
}
