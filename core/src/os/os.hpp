// Every call zheap makes into the operating system, behind one header.
//
// Nothing here allocates, throws or takes a lock, so all of it may be called from inside
// malloc, before main and after static destructors. Failures are answered with nullptr /
// false; errno is whatever the system call left.
#pragma once

#include <cstddef>
#include <cstdint>

namespace zheap::os {

// The system page size (4096 on x86-64 Linux); read once, then cached.
std::size_t page_size() noexcept;

// Anonymous private read-write memory, zero-filled. `len` is rounded up to pages by the
// kernel; pass the same `len` to unmap. nullptr when the system refuses.
void* map(std::size_t len) noexcept;
// As map(), with the start aligned to `alignment` (a power of two, any size): maps
// len + alignment - page and trims both ends.
void* map_aligned(std::size_t len, std::size_t alignment) noexcept;
void unmap(void* p, std::size_t len) noexcept;
// mremap: grow or shrink a mapping made by map(); in place only unless `may_move`.
// nullptr when it cannot.
void* remap(void* p, std::size_t old_len, std::size_t new_len, bool may_move) noexcept;
// Gives the pages' physical memory back to the system; the range stays mapped and
// reads as zeros afterwards (MADV_DONTNEED).
void decommit(void* p, std::size_t len) noexcept;
// Faults the (read-write) pages in now, writable, in one system call instead of a page
// fault each as they are first written (MADV_POPULATE_WRITE, Linux 5.14). False when
// refused (older kernels: the pages are then faulted in as they are touched).
bool populate_write(void* p, std::size_t len) noexcept;
// Address space without memory: PROT_NONE, MAP_NORESERVE, so it costs no commit charge.
// Make parts usable with protect_read_write() ("commit") and give them back with
// uncommit(). nullptr when the system refuses (RLIMIT_AS, no room).
void* reserve(std::size_t len) noexcept;
// Returns committed pages inside a reserve() range to the kernel and makes them
// inaccessible again; the address range stays reserved. False when the kernel refuses.
bool uncommit(void* p, std::size_t len) noexcept;
// The largest reserve() the system grants, trying `max_len` and halving down to `min_len`
// (all powers of two). Sets *len to the size reserved; nullptr when even min_len fails.
void* reserve_largest(std::size_t max_len, std::size_t min_len, std::size_t* len) noexcept;
// Tells the kernel the pages' contents are no longer needed; it may take the memory when
// it runs short, until the pages are written again (MADV_FREE). False when refused.
bool discard_lazily(void* p, std::size_t len) noexcept;
// Asks for transparent huge pages over the range as it is used (MADV_HUGEPAGE; the kernel
// honours it where /sys/kernel/mm/transparent_hugepage/enabled is "madvise" or "always").
// False when refused (a kernel without THP).
bool advise_huge_pages(void* p, std::size_t len) noexcept;
// Page protection, for guard pages: no access / read-write; read-only, to give back a
// RELRO page its protection after the shim rebinds a call slot in it (plt_binding.cpp).
bool protect_none(void* p, std::size_t len) noexcept;
bool protect_read_write(void* p, std::size_t len) noexcept;
bool protect_read_only(void* p, std::size_t len) noexcept;

// Where the process's brk heap starts: the kernel's start_brk (/proc/self/stat, field 47),
// or, when /proc cannot be read, the current break. glibc's main arena grows up from
// there, and zheap never uses brk, so [initial_program_break(), current break) is glibc's.
std::uintptr_t initial_program_break() noexcept;

// Futex on a 32-bit word (process-private): wait sleeps while *word == expected (returns
// at once otherwise, or on a spurious wake-up); wake wakes up to `count` waiters.
void futex_wait(const void* word, std::uint32_t expected) noexcept;
void futex_wake(const void* word, int count) noexcept;

// A hint to the CPU inside a spin-wait loop (PAUSE on x86, YIELD on ARM).
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Copies `len` bytes at `src` into `dst` if every one of them is readable; false (and
// `dst` unspecified) when some are not mapped or not readable. A system call
// (process_vm_readv on the own process), never a fault: for inspecting a pointer that may
// point anywhere. Where seccomp forbids process_vm_readv it answers false for everything.
bool read_if_readable(void* dst, const void* src, std::size_t len) noexcept;

// The whole of a file whose size is not known beforehand (a /proc file), read into a
// mapping of its own: [data, data + size). Give it back with unmap(data, mapped).
struct FileContents {
  char* data = nullptr;
  std::size_t size = 0;
  std::size_t mapped = 0;
};
// false (nothing left mapped) when the file cannot be opened or read, or memory runs out.
bool read_whole_file(const char* path, FileContents* out) noexcept;

// One line of /proc/self/maps: [begin, end), its permissions, and its name (a path,
// "[stack]", "[heap]", "[vvar]", ...; empty for anonymous memory), not NUL-terminated.
struct MemoryMapping {
  std::uintptr_t begin = 0;
  std::uintptr_t end = 0;
  bool readable = false;
  bool writable = false;
  bool shared = false;  // 's' (MAP_SHARED), else 'p'
  const char* name = "";
  std::size_t name_length = 0;

  bool named(const char* text) const noexcept;         // the name is exactly `text`
  bool name_starts_with(const char* prefix) const noexcept;
};
// Parses the line of /proc/self/maps text starting at *cursor (before `end`) into *out and
// moves *cursor past it. false at the end of the text or on a line it cannot read.
bool next_memory_mapping(const char** cursor, const char* end, MemoryMapping* out) noexcept;

// Which pages of the own process hold data, from /proc/self/pagemap: a page that was never
// touched (or was given back) reads as zeros, so a scan for pointers may skip it. Opened
// once, closed by the destructor; every answer is "all hold data" when the file cannot be read.
class PageMap {
 public:
  PageMap() noexcept;
  ~PageMap();
  PageMap(const PageMap&) = delete;
  PageMap& operator=(const PageMap&) = delete;

  // Bit i set: page i of the `pages` (at most 64) from page-aligned `begin` is present in
  // memory or swapped out. Pages of a file mapping not yet faulted in read as the file's
  // bytes, not zeros, but hold nothing the process wrote: also clear.
  std::uint64_t pages_with_data(std::uintptr_t begin, std::size_t pages) noexcept;

 private:
  int fd_;
};

// The kernel's id of the calling thread.
int thread_id() noexcept;
int process_id() noexcept;

// The value of an environment variable, read from `environ` directly (libc's getenv may
// not be ready when the shim starts). nullptr when unset.
const char* getenv(const char* name) noexcept;
// False while `environ` is not yet set up (an allocation made by the dynamic loader before
// libc's initialisation): settings read now would all look unset.
bool environment_ready() noexcept;

// write(2) of the whole buffer, retrying short writes and EINTR; errno is preserved.
void write_all(int fd, const char* data, std::size_t len) noexcept;
inline void write_stderr(const char* data, std::size_t len) noexcept { write_all(2, data, len); }

// Gives the processor to another thread (sched_yield), for the rare spin-wait.
void yield() noexcept;

// True in a setuid/setgid (or otherwise privileged) program: getauxval(AT_SECURE). Such a
// program must not act on file names taken from its environment.
bool is_secure_execution() noexcept;

// Opens `path` for appending, creating it with mode 0640 (never world-writable) and
// refusing a symbolic link as the last component: O_WRONLY|O_CREAT|O_APPEND|O_NOFOLLOW|
// O_CLOEXEC. -1 on failure (errno set).
int open_for_append(const char* path) noexcept;
void close(int fd) noexcept;
// Moves `fd` to the lowest free descriptor >= `minimum` (close-on-exec), out of the range a
// program reuses after closing its own low descriptors; `fd` itself if that fails.
int move_descriptor_up(int fd, int minimum) noexcept;

// A whole regular file mapped read-only and private, for reading a configuration file
// without malloc (ZHEAP_SUPPRESSIONS). `data` is nullptr on failure (errno set); an empty
// file gives a non-null `data` of `size` 0 that must not be read. Give it back with
// unmap_file().
struct MappedFile {
  const char* data = nullptr;
  std::size_t size = 0;
};
MappedFile map_file(const char* path) noexcept;
void unmap_file(MappedFile file) noexcept;

// The path of the loaded object (executable or shared library) whose code holds
// `address`: the dynamic loader's name for a library, /proc/self/exe's target for the
// executable; nullptr when no object holds it. The string lives as long as the object
// stays loaded. No allocation, no lock; O(log objects).
const char* object_path_containing(std::uintptr_t address) noexcept;

// _exit(2): ends the process now, without atexit handlers, destructors or stdio flushing.
[[noreturn]] void exit_immediately(int status) noexcept;

// Fills `buffer` with random bytes from the kernel (getrandom); false on failure.
bool random_bytes(void* buffer, std::size_t len) noexcept;

// A monotonic clock in milliseconds, coarse (a few ms of resolution) and cheap: read
// from the vDSO without a system call. For deciding when cached memory has aged.
std::uint64_t monotonic_milliseconds() noexcept;

}  // namespace zheap::os
