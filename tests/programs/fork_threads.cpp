// Forks 1000 times from a process whose 8 threads allocate and free without pause; each
// child allocates (malloc, new, a thread of its own) and exits. A lock held across fork
// would leave a child stuck: each child arms alarm(), so a deadlock ends it by SIGALRM
// and this program fails instead of hanging. Also posix_spawn and vfork+exec.
#include <malloc.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "check.hpp"

extern char** environ;

namespace {

std::atomic<bool> stop{false};

// Allocates without pause, mostly in LIFO order (so that the arena mode, which reuses
// only the latest block, stays small over a long run), sometimes replacing a held block.
void churn(unsigned seed) {
  std::vector<void*> held(64, nullptr);
  for (unsigned long i = 0; !stop.load(std::memory_order_relaxed); ++i) {
    seed = seed * 1103515245 + 12345;
    const std::size_t size = (seed >> 16) % 3000 + 1;
    void* p = malloc(size);
    std::memset(p, 1, size < 16 ? size : 16);  // within the block: debug mode checks
    free(p);
    delete new std::string(40, 'c');
    if (i % 1024 == 0) {
      const std::size_t slot = (seed >> 8) % held.size();
      free(held[slot]);
      held[slot] = malloc((seed >> 20) % 3000 + 1);
    }
    if (i % 64 == 0) std::this_thread::yield();  // leave the forking thread some CPU
  }
  for (void* p : held) free(p);
}

int child_work() {
  alarm(10);
  std::vector<void*> blocks;
  for (int i = 0; i < 100; ++i) {
    void* p = malloc(static_cast<std::size_t>(i) * 37 + 1);
    if (p == nullptr) return 2;
    std::memset(p, i, static_cast<std::size_t>(i) * 37 + 1);
    blocks.push_back(p);
  }
  for (void* p : blocks) free(p);
  std::thread([] { delete[] new char[1000]; }).join();
  return 0;
}

void spawn_true() {
  pid_t pid;
  char arg0[] = "true";
  char* argv[] = {arg0, nullptr};
  CHECK(posix_spawn(&pid, "/bin/true", nullptr, nullptr, argv, environ) == 0);
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  pid = vfork();
  if (pid == 0) {
    execve("/bin/true", argv, environ);
    _exit(127);
  }
  CHECK(pid > 0);
  CHECK(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

}  // namespace

int main(int argc, char** argv) {
  const int forks = argc > 1 ? std::atoi(argv[1]) : 1000;
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < 8; ++i) threads.emplace_back(churn, i + 1);
  for (int i = 0; i < forks; ++i) {
    const pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) _exit(child_work());
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "fork %d: child %s %d\n", i, WIFSIGNALED(status) ? "killed by signal" : "exited",
                   WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
      return 1;
    }
  }
  for (int i = 0; i < 20; ++i) spawn_true();
  stop = true;
  for (auto& t : threads) t.join();
  std::printf("fork_threads: ok\n");
  return 0;
}
