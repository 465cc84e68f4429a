#include "plt_binding.hpp"

#include <elf.h>
#include <link.h>

#include <atomic>
#include <cstdint>
#include <cstring>

#include "direct_route_entries.hpp"
#include "direct_routes.hpp"
#include "options.hpp"
#include "os/os.hpp"

// The slots' new target for free (direct_route_entries.hpp); hidden, never exported.
__asm__(ZHEAP_DIRECT_ROUTE_FREE_AFTER_PUBLISH("zheap_free_after_publish"));

extern "C" {
void zheap_free_after_publish(void*) noexcept;
// The exported entries' hidden aliases (direct_route_entries.hpp).
void* zheap_entry_malloc(std::size_t) noexcept;
void zheap_entry_free(void*) noexcept;
}

namespace zheap::shim::plt_binding {

namespace {

static_assert(sizeof(void*) == 8, "x86-64 relocations (Elf64_Rela) only");

struct Rebinding {
  const char* name;
  std::uintptr_t exported_entry;  // what a slot bound to zheap holds
  std::uintptr_t target;          // what it is to hold
};

// Where an object's segments lie once loaded.
class LoadedObject {
 public:
  explicit LoadedObject(const dl_phdr_info& info) noexcept : info_(info) {}

  // A dynamic-section address: glibc rewrites them in place to run-time addresses when it
  // loads an object whose dynamic section is writable, and leaves the others (read-only
  // dynamic sections, the vDSO's) as offsets from the load address.
  std::uintptr_t runtime(std::uintptr_t address) const noexcept {
    return address < info_.dlpi_addr ? info_.dlpi_addr + address : address;
  }

  const ElfW(Dyn)* dynamic() const noexcept {
    for (const ElfW(Phdr)& segment : segments())
      if (segment.p_type == PT_DYNAMIC) return reinterpret_cast<const ElfW(Dyn)*>(info_.dlpi_addr + segment.p_vaddr);
    return nullptr;
  }

  // Whether `address` lies in one of the object's executable segments: a lazily bound
  // slot not called yet still points at its PLT stub there.
  bool in_code(std::uintptr_t address) const noexcept {
    for (const ElfW(Phdr)& segment : segments()) {
      const std::uintptr_t begin = info_.dlpi_addr + segment.p_vaddr;
      if (segment.p_type == PT_LOAD && (segment.p_flags & PF_X) != 0 && address - begin < segment.p_memsz) return true;
    }
    return false;
  }

  // The pages the loader made read-only after relocating (PT_GNU_RELRO, its end rounded
  // down to a page as the loader rounds it); empty when none.
  void relro_pages(std::uintptr_t* begin, std::uintptr_t* end) const noexcept {
    *begin = *end = 0;
    const std::uintptr_t page = os::page_size();
    for (const ElfW(Phdr)& segment : segments()) {
      if (segment.p_type != PT_GNU_RELRO) continue;
      const std::uintptr_t start = info_.dlpi_addr + segment.p_vaddr;
      *begin = start & ~(page - 1);
      *end = (start + segment.p_memsz) & ~(page - 1);
    }
  }

 private:
  struct Segments {
    const ElfW(Phdr)* first;
    const ElfW(Phdr)* last;
    const ElfW(Phdr)* begin() const noexcept { return first; }
    const ElfW(Phdr)* end() const noexcept { return last; }
  };
  Segments segments() const noexcept { return {info_.dlpi_phdr, info_.dlpi_phdr + info_.dlpi_phnum}; }

  const dl_phdr_info& info_;
};

// What the dynamic section says of the object's PLT relocations.
struct PltRelocations {
  const ElfW(Rela)* entries = nullptr;
  std::size_t count = 0;
  const ElfW(Sym)* symbols = nullptr;
  const char* names = nullptr;
  bool binds_own_symbols_first = false;  // DT_SYMBOLIC

  bool usable() const noexcept { return entries != nullptr && symbols != nullptr && names != nullptr; }
};

PltRelocations read_plt_relocations(const LoadedObject& object, const ElfW(Dyn)* dynamic) noexcept {
  PltRelocations plt;
  bool rela = false;
  std::size_t bytes = 0;
  for (const ElfW(Dyn)* entry = dynamic; entry->d_tag != DT_NULL; ++entry) {
    switch (entry->d_tag) {
      case DT_JMPREL: plt.entries = reinterpret_cast<const ElfW(Rela)*>(object.runtime(entry->d_un.d_ptr)); break;
      case DT_PLTRELSZ: bytes = entry->d_un.d_val; break;
      case DT_PLTREL: rela = entry->d_un.d_val == DT_RELA; break;
      case DT_SYMTAB: plt.symbols = reinterpret_cast<const ElfW(Sym)*>(object.runtime(entry->d_un.d_ptr)); break;
      case DT_STRTAB: plt.names = reinterpret_cast<const char*>(object.runtime(entry->d_un.d_ptr)); break;
      case DT_SYMBOLIC: plt.binds_own_symbols_first = true; break;
      case DT_FLAGS:
        if ((entry->d_un.d_val & DF_SYMBOLIC) != 0) plt.binds_own_symbols_first = true;
        break;
      default: break;
    }
  }
  if (!rela) plt.entries = nullptr;
  plt.count = bytes / sizeof(ElfW(Rela));
  return plt;
}

// Writes `target` into `slot`, making its page writable for the moment when it is RELRO.
void write_slot(std::uintptr_t* slot, std::uintptr_t target, std::uintptr_t relro_begin, std::uintptr_t relro_end) noexcept {
  const auto address = reinterpret_cast<std::uintptr_t>(slot);
  if (address - relro_begin >= relro_end - relro_begin) {
    __atomic_store_n(slot, target, __ATOMIC_RELEASE);
    return;
  }
  const std::size_t page = os::page_size();
  void* const page_start = reinterpret_cast<void*>(address & ~(page - 1));
  if (!os::protect_read_write(page_start, page)) return;  // left as it was: still correct
  __atomic_store_n(slot, target, __ATOMIC_RELEASE);
  os::protect_read_only(page_start, page);
}

struct Plan {
  Rebinding rebindings[2];
  std::uintptr_t own_code;  // an address inside libzheap.so, to skip it
};

int bind_object(dl_phdr_info* info, std::size_t, void* data) noexcept {
  const Plan& plan = *static_cast<const Plan*>(data);
  const LoadedObject object(*info);
  if (object.in_code(plan.own_code)) return 0;  // libzheap.so itself calls neither
  const ElfW(Dyn)* dynamic = object.dynamic();
  if (dynamic == nullptr) return 0;
  const PltRelocations plt = read_plt_relocations(object, dynamic);
  if (!plt.usable()) return 0;
  std::uintptr_t relro_begin;
  std::uintptr_t relro_end;
  object.relro_pages(&relro_begin, &relro_end);
  for (std::size_t i = 0; i < plt.count; ++i) {
    const ElfW(Rela)& relocation = plt.entries[i];
    if (ELF64_R_TYPE(relocation.r_info) != R_X86_64_JUMP_SLOT) continue;
    const ElfW(Sym)& symbol = plt.symbols[ELF64_R_SYM(relocation.r_info)];
    const char* name = plt.names + symbol.st_name;
    for (const Rebinding& rebinding : plan.rebindings) {
      // The first letter first: a large program has thousands of PLT relocations, and
      // start-up pays for every call to strcmp (gdb, 59 objects: 0.7M instructions).
      if (name[0] != rebinding.name[0] || std::strcmp(name, rebinding.name) != 0) continue;
      auto* slot = reinterpret_cast<std::uintptr_t*>(info->dlpi_addr + relocation.r_offset);
      const std::uintptr_t bound = __atomic_load_n(slot, __ATOMIC_RELAXED);
      // Bound to zheap's entry: the loader chose zheap for it. Not bound yet: it would be
      // bound to zheap's entry unless the object binds its own symbols first, or the
      // function is its own.
      const bool unbound_import =
          object.in_code(bound) && symbol.st_shndx == SHN_UNDEF && !plt.binds_own_symbols_first;
      if (bound == rebinding.exported_entry || unbound_import) write_slot(slot, rebinding.target, relro_begin, relro_end);
    }
  }
  return 0;
}

}  // namespace

void bind_published_routes() noexcept {
  if (!options().bind_plt || !direct_routes::published()) return;
  // Once: two threads publishing together would both get here, and one could store into a
  // RELRO page the other has just made read-only again.
  static constinit std::atomic<bool> done{false};
  if (done.exchange(true, std::memory_order_acq_rel)) return;
  const Plan plan{
      .rebindings =
          {
              {"malloc", reinterpret_cast<std::uintptr_t>(&zheap_entry_malloc),
               reinterpret_cast<std::uintptr_t>(direct_routes::detail::malloc.load(std::memory_order_acquire))},
              {"free", reinterpret_cast<std::uintptr_t>(&zheap_entry_free),
               reinterpret_cast<std::uintptr_t>(&zheap_free_after_publish)},
          },
      .own_code = reinterpret_cast<std::uintptr_t>(&bind_published_routes),
  };
  dl_iterate_phdr(bind_object, const_cast<Plan*>(&plan));
}

}  // namespace zheap::shim::plt_binding
