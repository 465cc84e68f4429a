// Leaks of every kind, one scenario per run, for debug mode's leak report
// (tests/shim/check_leak_report.py), and clean scenarios that must report nothing.
// Each leaking allocation sits on a line marked
//   // leak: <scenario>[,<scenario>...] <Direct|Indirect> <bytes> <objects>
// in a noinline function; the report must have that paragraph, with a frame naming the
// function and this file's line. Scenarios without markers must report no leak.
//   leaks definite | indirect | reachable | thread | new | new_array | mixed
//         | clean_threads | clean_exceptions | clean_containers | clean_atexit | clean_dlopen
//         | clean_fork
#include <dlfcn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "opaque.hpp"

namespace {

using test_programs::no_tail_call;
using test_programs::opaque;
using test_programs::scrub_vector_registers;

// Zeroes the dead stack below main's frame, where a leaking function's frame was: a
// conservative scan at exit would otherwise find its stale copy of the leaked pointer
// (LeakSanitizer's tests do the same).
[[gnu::noinline]] void scrub_stack() {
  volatile char pad[64 << 10];
  for (std::size_t i = 0; i < sizeof pad; ++i) pad[i] = 0;
}

struct Node {
  Node* next;
  long payload[2];
};
static_assert(sizeof(Node) == 24);

struct Widget {
  long fields[5];
};
static_assert(sizeof(Widget) == 40);

void* volatile kept_for_life = nullptr;

[[gnu::noinline]] void leak_malloc() {
  opaque(std::malloc(100));  // leak: definite Direct 100 1
  no_tail_call();
}

[[gnu::noinline]] Node* make_chain(int length) {
  Node* chain = nullptr;
  for (int i = 0; i < length; ++i) chain = new Node{chain, {i, i}};  // leak: indirect Indirect 48 2
  return opaque(chain);
}

// Read at run time, so that the compiler cannot clone make_chain for a constant length
// and unroll its loop into two allocation sites.
int volatile chain_length = 2;

[[gnu::noinline]] void leak_list() {
  Node* chain = make_chain(chain_length);
  opaque(new Node{chain, {0, 0}});  // leak: indirect Direct 24 1
  no_tail_call();
}

[[gnu::noinline]] void keep_reachable() {
  kept_for_life = std::malloc(300);
  no_tail_call();
}

[[gnu::noinline]] void leak_in_thread() {
  opaque(std::malloc(64));  // leak: thread Direct 64 1
  scrub_vector_registers();  // the thread's end binds operator delete lazily (opaque.hpp)
  no_tail_call();
}

[[gnu::noinline]] void leak_new() {
  opaque(new Widget());  // leak: new,mixed Direct 40 1
  no_tail_call();
}

[[gnu::noinline]] void leak_new_array() {
  opaque(new int[50]);  // leak: new_array Direct 200 1
  no_tail_call();
}

[[gnu::noinline]] void mixed() {
  opaque(std::malloc(128));  // leak: mixed Direct 128 1
  no_tail_call();
  leak_new();
  keep_reachable();
}

// ---- clean: everything freed, or kept by a live pointer.

[[gnu::noinline]] void clean_threads() {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([t] {
      std::vector<std::string> strings;
      for (int i = 0; i < 1000; ++i) strings.push_back(std::to_string(i * t) + " some text past the SSO buffer");
      thread_local std::string per_thread(200, 'x');
      opaque(per_thread.data());
    });
  for (std::thread& thread : threads) thread.join();
  // A detached thread that is still alive at exit: what it holds is on its stack.
  static std::thread::id never_ends;
  std::thread([] {
    [[maybe_unused]] std::vector<int>* volatile held = new std::vector<int>(1000, 7);  // on this thread's stack only
    never_ends = std::this_thread::get_id();
    for (;;) pause();
  }).detach();
  while (never_ends == std::thread::id()) std::this_thread::yield();
}

[[gnu::noinline]] void clean_exceptions() {
  int caught = 0;
  for (int i = 0; i < 100; ++i) {
    try {
      throw std::runtime_error("a message long enough to be allocated on the heap " + std::to_string(i));
    } catch (const std::exception& e) {
      caught += e.what()[0] == 'a';
    }
  }
  if (caught != 100) std::abort();
}

std::map<std::string, std::vector<int>> global_map;

[[gnu::noinline]] void clean_containers() {
  std::unordered_map<int, std::string> local;
  for (int i = 0; i < 2000; ++i) local[i] = std::string(i % 50 + 20, 'y');
  for (int i = 0; i < 200; ++i) global_map["key number " + std::to_string(i)].assign(i + 1, i);
  auto shared = std::make_shared<std::vector<double>>(500, 1.5);
  std::weak_ptr<std::vector<double>> weak = shared;
  opaque(weak.lock().get());
}

char* freed_at_exit = nullptr;

[[gnu::noinline]] void clean_atexit() {
  freed_at_exit = static_cast<char*>(std::malloc(4096));
  std::atexit([] {
    std::free(freed_at_exit);
    freed_at_exit = nullptr;
  });
  static std::unique_ptr<Widget> destroyed_at_exit = std::make_unique<Widget>();  // a static destructor frees it
  opaque(destroyed_at_exit.get());
}

[[gnu::noinline]] void clean_dlopen() {
  // The loader's own memory for a loaded library (link map, scope lists, TLS) stays
  // reachable from its globals; one library kept open, one closed again.
  void* kept = dlopen("libm.so.6", RTLD_NOW);
  void* closed = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
  if (kept == nullptr) std::abort();
  opaque(dlsym(kept, "cos"));
  if (closed != nullptr) dlclose(closed);
}

[[gnu::noinline]] void clean_fork() {
  std::vector<std::string> before(100, std::string(100, 'b'));
  const pid_t child = fork();
  if (child == 0) {
    std::vector<std::string> in_child(100, std::string(100, 'c'));
    std::exit(0);  // runs the exit report in the child too: it must be clean as well
  }
  int status = 0;
  waitpid(child, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) std::abort();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: leaks SCENARIO\n");
    return 2;
  }
  const std::string_view scenario = argv[1];
  if (scenario == "definite") leak_malloc();
  else if (scenario == "indirect") leak_list();
  else if (scenario == "reachable") keep_reachable();
  else if (scenario == "thread") std::thread(leak_in_thread).join();
  else if (scenario == "new") leak_new();
  else if (scenario == "new_array") leak_new_array();
  else if (scenario == "mixed") mixed();
  else if (scenario == "clean_threads") clean_threads();
  else if (scenario == "clean_exceptions") clean_exceptions();
  else if (scenario == "clean_containers") clean_containers();
  else if (scenario == "clean_atexit") clean_atexit();
  else if (scenario == "clean_dlopen") clean_dlopen();
  else if (scenario == "clean_fork") clean_fork();
  else return 2;
  scrub_stack();
  std::printf("ran %s\n", argv[1]);
  return 0;
}
