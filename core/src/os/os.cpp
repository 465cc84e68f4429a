// Linux implementation of os.hpp: thin wrappers over system calls.
#include "os/os.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>

#include <dlfcn.h>
#include <link.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

namespace zheap::os {

namespace {
constinit std::atomic<std::size_t> cached_page_size{0};
}

std::size_t page_size() noexcept {
  std::size_t size = cached_page_size.load(std::memory_order_relaxed);
  if (size == 0) {
    size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    cached_page_size.store(size, std::memory_order_relaxed);
  }
  return size;
}

void* map(std::size_t len) noexcept {
  void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void* map_aligned(std::size_t len, std::size_t alignment) noexcept {
  const std::size_t page = page_size();
  if (alignment <= page) return map(len);
  const std::size_t rounded = (len + page - 1) & ~(page - 1);
  const std::size_t oversized = rounded + alignment - page;
  if (oversized < rounded) return nullptr;  // overflow
  auto* raw = static_cast<char*>(map(oversized));
  if (raw == nullptr) return nullptr;
  const auto start = reinterpret_cast<std::uintptr_t>(raw);
  const std::uintptr_t aligned = (start + alignment - 1) & ~(alignment - 1);
  const std::size_t head = aligned - start;
  if (head != 0) unmap(raw, head);
  const std::size_t tail = oversized - head - rounded;
  if (tail != 0) unmap(reinterpret_cast<char*>(aligned) + rounded, tail);
  return reinterpret_cast<void*>(aligned);
}

void unmap(void* p, std::size_t len) noexcept { ::munmap(p, len); }

void* reserve(std::size_t len) noexcept {
  void* p = ::mmap(nullptr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void* reserve_largest(std::size_t max_len, std::size_t min_len, std::size_t* len) noexcept {
  for (std::size_t try_len = max_len; try_len >= min_len && try_len != 0; try_len /= 2) {
    if (void* p = reserve(try_len)) {
      *len = try_len;
      return p;
    }
  }
  return nullptr;
}

bool discard_lazily(void* p, std::size_t len) noexcept { return ::madvise(p, len, MADV_FREE) == 0; }

bool advise_huge_pages(void* p, std::size_t len) noexcept { return ::madvise(p, len, MADV_HUGEPAGE) == 0; }

bool uncommit(void* p, std::size_t len) noexcept {
  // Mapping fresh PROT_NONE pages over the range drops the old ones and their commit charge.
  void* q = ::mmap(p, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
  return q != MAP_FAILED;
}

void* remap(void* p, std::size_t old_len, std::size_t new_len, bool may_move) noexcept {
  void* q = ::mremap(p, old_len, new_len, may_move ? MREMAP_MAYMOVE : 0);
  return q == MAP_FAILED ? nullptr : q;
}

void decommit(void* p, std::size_t len) noexcept { ::madvise(p, len, MADV_DONTNEED); }

bool populate_write(void* p, std::size_t len) noexcept {
#ifdef MADV_POPULATE_WRITE
  return ::madvise(p, len, MADV_POPULATE_WRITE) == 0;
#else
  (void)p;
  (void)len;
  return false;
#endif
}

bool protect_none(void* p, std::size_t len) noexcept { return ::mprotect(p, len, PROT_NONE) == 0; }
bool protect_read_write(void* p, std::size_t len) noexcept {
  return ::mprotect(p, len, PROT_READ | PROT_WRITE) == 0;
}
bool protect_read_only(void* p, std::size_t len) noexcept { return ::mprotect(p, len, PROT_READ) == 0; }

std::uintptr_t initial_program_break() noexcept {
  const auto current_break = reinterpret_cast<std::uintptr_t>(::sbrk(0));
  const int fd = ::open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return current_break;
  char line[1024];
  const ssize_t n = ::read(fd, line, sizeof line - 1);
  ::close(fd);
  if (n <= 0) return current_break;
  line[n] = '\0';
  // Field 2, the command name, is in parentheses and may hold spaces: count from the last ')'.
  const char* cursor = std::strrchr(line, ')');
  if (cursor == nullptr) return current_break;
  constexpr int start_brk_field = 47;
  int field = 2;
  std::uintptr_t value = 0;
  for (++cursor; *cursor != '\0'; ++cursor) {
    if (*cursor == ' ') {
      if (field == start_brk_field) break;
      ++field;
    } else if (field == start_brk_field && *cursor >= '0' && *cursor <= '9') {
      value = value * 10 + static_cast<std::uintptr_t>(*cursor - '0');
    }
  }
  return value != 0 && value <= current_break ? value : current_break;
}

void futex_wait(const void* word, std::uint32_t expected) noexcept {
  const int saved_errno = errno;
  ::syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
  errno = saved_errno;
}

void futex_wake(const void* word, int count) noexcept {
  const int saved_errno = errno;
  ::syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, count, nullptr, nullptr, 0);
  errno = saved_errno;
}

bool read_if_readable(void* dst, const void* src, std::size_t len) noexcept {
  const int saved_errno = errno;
  const iovec local = {dst, len};
  const iovec remote = {const_cast<void*>(src), len};
  const ssize_t n = ::process_vm_readv(::getpid(), &local, 1, &remote, 1, 0);
  errno = saved_errno;
  return n == static_cast<ssize_t>(len);
}

bool read_whole_file(const char* path, FileContents* out) noexcept {
  *out = FileContents{};
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::size_t mapped = std::size_t{64} << 10;
  auto* data = static_cast<char*>(map(mapped));
  std::size_t size = 0;
  while (data != nullptr) {
    if (size == mapped) {
      auto* grown = static_cast<char*>(remap(data, mapped, mapped * 2, true));
      if (grown == nullptr) break;
      data = grown;
      mapped *= 2;
    }
    const ssize_t n = ::read(fd, data + size, mapped - size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      if (n < 0) break;
      *out = FileContents{data, size, mapped};
      return true;
    }
    size += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (data != nullptr) unmap(data, mapped);
  return false;
}

namespace {

// A hexadecimal number at *cursor, moved past it; false when there is none.
bool parse_hex(const char** cursor, const char* end, std::uintptr_t* value) noexcept {
  std::uintptr_t result = 0;
  const char* p = *cursor;
  for (; p < end; ++p) {
    const char c = *p;
    unsigned digit;
    if (c >= '0' && c <= '9') {
      digit = static_cast<unsigned>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<unsigned>(c - 'a' + 10);
    } else {
      break;
    }
    result = result << 4 | digit;
  }
  if (p == *cursor) return false;
  *cursor = p;
  *value = result;
  return true;
}

const char* skip_field(const char* p, const char* end) noexcept {
  while (p < end && *p != ' ' && *p != '\n') ++p;
  while (p < end && *p == ' ') ++p;
  return p;
}

}  // namespace

bool MemoryMapping::named(const char* text) const noexcept {
  return std::strlen(text) == name_length && std::memcmp(name, text, name_length) == 0;
}

bool MemoryMapping::name_starts_with(const char* prefix) const noexcept {
  const std::size_t length = std::strlen(prefix);
  return length <= name_length && std::memcmp(name, prefix, length) == 0;
}

// "begin-end perms offset dev inode   name\n", e.g.
// "7f1c2a000000-7f1c2a021000 rw-p 00000000 00:00 0   [heap]".
bool next_memory_mapping(const char** cursor, const char* end, MemoryMapping* out) noexcept {
  const char* p = *cursor;
  if (p >= end) return false;
  const char* line_end = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
  if (line_end == nullptr) line_end = end;
  *cursor = line_end < end ? line_end + 1 : end;
  MemoryMapping mapping;
  if (!parse_hex(&p, line_end, &mapping.begin) || p >= line_end || *p++ != '-' ||
      !parse_hex(&p, line_end, &mapping.end) || p + 5 > line_end || *p++ != ' ')
    return false;
  mapping.readable = p[0] == 'r';
  mapping.writable = p[1] == 'w';
  mapping.shared = p[3] == 's';
  p = skip_field(p, line_end);                    // perms
  for (int field = 0; field < 3; ++field) p = skip_field(p, line_end);  // offset, dev, inode
  mapping.name = p;
  mapping.name_length = static_cast<std::size_t>(line_end - p);
  *out = mapping;
  return true;
}

PageMap::PageMap() noexcept : fd_(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)) {}

PageMap::~PageMap() {
  if (fd_ >= 0) ::close(fd_);
}

std::uint64_t PageMap::pages_with_data(std::uintptr_t begin, std::size_t pages) noexcept {
  const std::uint64_t all = pages >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << pages) - 1;
  if (fd_ < 0 || pages == 0) return all;
  // One 64-bit entry per page: bit 63 present, bit 62 swapped (the frame number, which
  // needs privileges, is not used).
  std::uint64_t entries[64];
  const std::size_t count = pages > 64 ? 64 : pages;
  const auto offset = static_cast<off_t>(begin / page_size() * sizeof(std::uint64_t));
  const int saved_errno = errno;
  const ssize_t n = ::pread(fd_, entries, count * sizeof(std::uint64_t), offset);
  errno = saved_errno;
  if (n != static_cast<ssize_t>(count * sizeof(std::uint64_t))) return all;
  std::uint64_t bits = 0;
  for (std::size_t i = 0; i < count; ++i)
    if ((entries[i] >> 62) != 0) bits |= std::uint64_t{1} << i;
  return bits;
}

int thread_id() noexcept { return static_cast<int>(::syscall(SYS_gettid)); }
int process_id() noexcept { return static_cast<int>(::getpid()); }

const char* getenv(const char* name) noexcept {
  if (environ == nullptr || name == nullptr) return nullptr;
  const std::size_t name_len = std::strlen(name);
  for (char** entry = environ; *entry != nullptr; ++entry) {
    if (std::strncmp(*entry, name, name_len) == 0 && (*entry)[name_len] == '=') return *entry + name_len + 1;
  }
  return nullptr;
}

bool environment_ready() noexcept { return environ != nullptr; }

void write_all(int fd, const char* data, std::size_t len) noexcept {
  const int saved_errno = errno;
  while (len > 0) {
    const ssize_t n = ::write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    data += n;
    len -= static_cast<std::size_t>(n);
  }
  errno = saved_errno;
}

void yield() noexcept { ::sched_yield(); }

bool is_secure_execution() noexcept { return ::getauxval(AT_SECURE) != 0; }

int open_for_append(const char* path) noexcept {
  int fd;
  do {
    fd = ::open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0640);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

void close(int fd) noexcept {
  const int saved_errno = errno;
  ::close(fd);
  errno = saved_errno;
}

int move_descriptor_up(int fd, int minimum) noexcept {
  const int saved_errno = errno;
  const int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, minimum);
  if (moved >= 0) ::close(fd);
  errno = saved_errno;
  return moved >= 0 ? moved : fd;
}

std::uint64_t monotonic_milliseconds() noexcept {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  return static_cast<std::uint64_t>(now.tv_sec) * 1000 + static_cast<std::uint64_t>(now.tv_nsec) / 1000000;
}

MappedFile map_file(const char* path) noexcept {
  int fd;
  do {
    fd = ::open(path, O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return {};
  MappedFile file;
  struct stat status;
  if (::fstat(fd, &status) != 0) {
    // errno from fstat
  } else if (!S_ISREG(status.st_mode)) {
    errno = EINVAL;
  } else if (status.st_size == 0) {
    static constexpr char nothing[1] = {};
    file.data = nothing;  // mmap refuses a length of 0
  } else {
    void* p = ::mmap(nullptr, static_cast<std::size_t>(status.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (p != MAP_FAILED) {
      file.data = static_cast<const char*>(p);
      file.size = static_cast<std::size_t>(status.st_size);
    }
  }
  close(fd);
  return file;
}

void unmap_file(MappedFile file) noexcept {
  if (file.data != nullptr && file.size != 0) ::munmap(const_cast<char*>(file.data), file.size);
}

namespace {
// The executable's path (the loader names it ""), read once from /proc/self/exe.
constinit char executable_path[4096] = {};
constinit std::atomic<int> executable_path_state{0};  // 0 unread, 1 being read, 2 ready, 3 unreadable

const char* executable() noexcept {
  int state = executable_path_state.load(std::memory_order_acquire);
  if (state == 0 && executable_path_state.compare_exchange_strong(state, 1, std::memory_order_acquire)) {
    const ssize_t length = ::readlink("/proc/self/exe", executable_path, sizeof executable_path - 1);
    if (length > 0) executable_path[length] = '\0';
    state = length > 0 ? 2 : 3;
    executable_path_state.store(state, std::memory_order_release);
  }
  // Another thread reading it right now: the name the program was started by.
  return state == 2 ? executable_path : program_invocation_name;
}
}  // namespace

const char* object_path_containing(std::uintptr_t address) noexcept {
  // _dl_find_object (glibc 2.35), not dladdr: dladdr also looks for the nearest symbol,
  // scanning the object's whole dynamic symbol table, which made a leak report of g++'s
  // cc1plus (4000 stacks) take 30 s, nearly all of it in dladdr.
  dl_find_object found;
  if (address == 0 || ::_dl_find_object(reinterpret_cast<void*>(address), &found) != 0) return nullptr;
  const char* name = found.dlfo_link_map != nullptr ? found.dlfo_link_map->l_name : nullptr;
  if (name == nullptr || name[0] == '\0') return executable();
  return name;
}

void exit_immediately(int status) noexcept { ::_exit(status); }

bool random_bytes(void* buffer, std::size_t len) noexcept {
  auto* out = static_cast<char*>(buffer);
  while (len > 0) {
    const ssize_t n = ::getrandom(out, len, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    out += n;
    len -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace zheap::os
