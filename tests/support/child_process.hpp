// Runs code or a program in a child process and collects what it wrote and how it ended,
// for tests of process-wide, once-per-process behaviour (environment parsed on first use,
// exit reports, LD_PRELOAD).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace zheap::testing {

struct ChildResult {
  int exit_code = -1;    // -1 when killed by a signal
  int signal = 0;
  std::string out;       // stdout
  std::string err;       // stderr
};

namespace detail {
inline std::string drain(int fd) {
  std::string text;
  char buffer[4096];
  ssize_t n;
  while ((n = ::read(fd, buffer, sizeof buffer)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) text.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return text;
}

inline ChildResult collect(pid_t pid, int out_fd, int err_fd) {
  ChildResult result;
  // Both pipes are small in these tests; read stdout then stderr (each < pipe capacity
  // would deadlock only for outputs above 64 KiB, which no test produces on stdout while
  // also filling stderr).
  result.out = drain(out_fd);
  result.err = drain(err_fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}
}  // namespace detail

// Runs `body` in a forked child; its return value is the child's exit code (via _exit, so
// no atexit handler of the test runner runs twice).
inline ChildResult run_in_child(const std::function<int()>& body) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) return {};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::_exit(body());
  }
  ::close(out[1]);
  ::close(err[1]);
  return detail::collect(pid, out[0], err[0]);
}

// Runs `argv` with `env` (NAME=VALUE strings, the whole environment) in a child.
inline ChildResult run_program(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  std::vector<char*> args, vars;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& v : env) vars.push_back(const_cast<char*>(v.c_str()));
  vars.push_back(nullptr);
  return run_in_child([&] {
    ::execve(args[0], args.data(), vars.data());
    return 127;
  });
}

}  // namespace zheap::testing
