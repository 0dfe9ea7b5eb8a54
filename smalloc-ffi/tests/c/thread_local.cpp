// C++ thread_local objects whose constructors and destructors allocate, in threads that come
// and go: the destructors run at thread exit, inside glibc's thread teardown.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

static std::atomic<int> destroyed{0};

struct PerThread {
    std::vector<std::string> strings;
    std::map<int, std::string> map;

    PerThread() {
        for (int i = 0; i < 100; i++) strings.emplace_back(50 + i, 'x');
    }

    ~PerThread() {
        std::vector<std::string> more;
        for (int i = 0; i < 100; i++) more.emplace_back(1000 + i, 'y');
        for (const auto &s : strings)
            if (s.find_first_not_of('x') != std::string::npos) std::abort();
        for (const auto &kv : map)
            if (kv.second.size() != static_cast<size_t>(kv.first) * 10) std::abort();
        destroyed++;
    }
};

thread_local PerThread per_thread;

int main() {
    const int rounds = 4, threads_per_round = 50;
    for (int round = 0; round < rounds; round++) {
        std::vector<std::thread> threads;
        for (int i = 0; i < threads_per_round; i++)
            threads.emplace_back([i] {
                per_thread.map[i] = std::string(i * 10, 'z');
                per_thread.strings.emplace_back(5, 'x');
            });
        for (auto &t : threads) t.join();
    }
    if (destroyed != rounds * threads_per_round) {
        std::printf("destroyed %d\n", destroyed.load());
        return 1;
    }
    std::printf("ok thread_local\n");
    return 0;
}
