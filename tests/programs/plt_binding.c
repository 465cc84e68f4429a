// Where this program's own call slots (PLT, JUMP_SLOT relocations) for malloc and free
// point while it runs under the shim, read from its own dynamic section.
//
//   plt_binding bound [--stray]     both slots must have been moved past libzheap.so's
//                                   exported entries (shim/plt_binding.hpp: modes but
//                                   debug, no layer on)
//   plt_binding exported [--stray]  both must hold the exported entries (what dlsym finds)
//
// Either way the page holding each slot must be as the loader left it (read-only when it
// is RELRO: the build with -z now), and calls through the slots must still work; with
// --stray, a free of a pointer no allocator gave too (reported once by the shim, and
// ignored; not for libc mode, where glibc gets it and aborts, as it does without zheap).
// Exit status 0 when all holds, 1 with a line on stderr naming what did not.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

static void expect(int condition, const char* what) {
  if (!condition) {
    fprintf(stderr, "plt_binding: FAILED: %s\n", what);
    ++failures;
  }
}

struct slots {
  uintptr_t* malloc_slot;
  uintptr_t* free_slot;
};

static uintptr_t runtime_address(uintptr_t base, uintptr_t address) { return address < base ? base + address : address; }

// The first object dl_iterate_phdr reports is the program itself.
static int find_slots(struct dl_phdr_info* info, size_t size, void* data) {
  (void)size;
  struct slots* found = data;
  const ElfW(Dyn)* dynamic = NULL;
  for (int i = 0; i < info->dlpi_phnum; ++i)
    if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
      dynamic = (const ElfW(Dyn)*)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
  const ElfW(Rela)* relocations = NULL;
  size_t bytes = 0;
  const ElfW(Sym)* symbols = NULL;
  const char* names = NULL;
  for (; dynamic != NULL && dynamic->d_tag != DT_NULL; ++dynamic) {
    if (dynamic->d_tag == DT_JMPREL) relocations = (const ElfW(Rela)*)runtime_address(info->dlpi_addr, dynamic->d_un.d_ptr);
    if (dynamic->d_tag == DT_PLTRELSZ) bytes = dynamic->d_un.d_val;
    if (dynamic->d_tag == DT_SYMTAB) symbols = (const ElfW(Sym)*)runtime_address(info->dlpi_addr, dynamic->d_un.d_ptr);
    if (dynamic->d_tag == DT_STRTAB) names = (const char*)runtime_address(info->dlpi_addr, dynamic->d_un.d_ptr);
  }
  for (size_t i = 0; relocations != NULL && i < bytes / sizeof *relocations; ++i) {
    const char* name = names + symbols[ELF64_R_SYM(relocations[i].r_info)].st_name;
    uintptr_t* slot = (uintptr_t*)(info->dlpi_addr + relocations[i].r_offset);
    if (strcmp(name, "malloc") == 0) found->malloc_slot = slot;
    if (strcmp(name, "free") == 0) found->free_slot = slot;
  }
  return 1;
}

// The permissions /proc/self/maps shows for the page holding `address` ("r--p", ...).
static void page_permissions(const void* address, char out[5]) {
  strcpy(out, "????");
  FILE* maps = fopen("/proc/self/maps", "r");
  if (maps == NULL) return;
  char line[512];
  while (fgets(line, sizeof line, maps) != NULL) {
    unsigned long begin, end;
    char permissions[5];
    if (sscanf(line, "%lx-%lx %4s", &begin, &end, permissions) == 3 && (uintptr_t)address >= begin &&
        (uintptr_t)address < end) {
      memcpy(out, permissions, 5);
      break;
    }
  }
  fclose(maps);
}

static char never_allocated[64];

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3 || (strcmp(argv[1], "bound") != 0 && strcmp(argv[1], "exported") != 0) ||
      (argc == 3 && strcmp(argv[2], "--stray") != 0)) {
    fprintf(stderr, "usage: plt_binding bound|exported [--stray]\n");
    return 2;
  }
  const int stray = argc == 3;
  const int bound = strcmp(argv[1], "bound") == 0;

  // Calls through the slots: a lazily bound slot is resolved by its first call.
  char* volatile block = malloc(100);
  expect(block != NULL, "malloc(100) returned a block");
  memset(block, 1, 100);
  free(block);

  char permissions_before[5];
  struct slots slots = {NULL, NULL};
  dl_iterate_phdr(find_slots, &slots);
  expect(slots.malloc_slot != NULL && slots.free_slot != NULL, "the program has JUMP_SLOT relocations for malloc and free");
  if (slots.malloc_slot == NULL || slots.free_slot == NULL) return 1;
  page_permissions(slots.malloc_slot, permissions_before);

  const uintptr_t exported_malloc = (uintptr_t)dlsym(RTLD_DEFAULT, "malloc");
  const uintptr_t exported_free = (uintptr_t)dlsym(RTLD_DEFAULT, "free");
  Dl_info where;
  expect(dladdr((void*)exported_malloc, &where) != 0 && strstr(where.dli_fname, "libzheap") != NULL,
         "dlsym finds libzheap.so's malloc (the program runs under the shim)");
  if (bound) {
    expect(*slots.malloc_slot != exported_malloc, "the malloc slot was moved past the exported entry");
    expect(*slots.free_slot != exported_free, "the free slot was moved past the exported entry");
  } else {
    expect(*slots.malloc_slot == exported_malloc, "the malloc slot holds the exported entry");
    expect(*slots.free_slot == exported_free, "the free slot holds the exported entry");
  }

  // The slots' page keeps the loader's protection: not writable once it is RELRO.
  char permissions[5];
  page_permissions(slots.free_slot, permissions);
  printf("slot page: %s\n", permissions);
  expect(strcmp(permissions, permissions_before) == 0, "the slots' page protection did not change");
#ifdef EXPECT_RELRO
  expect(permissions[1] == '-', "the slots' page (RELRO, -z now) is not writable");
#endif

  // Still correct through the slots: many blocks, contents kept, null, and with --stray a
  // pointer no allocator gave.
  void* blocks[1000];
  for (int i = 0; i < 1000; ++i) {
    blocks[i] = malloc((size_t)(i % 200) + 1);
    expect(blocks[i] != NULL, "malloc in a loop");
    if (blocks[i] != NULL) memset(blocks[i], i & 0xff, (size_t)(i % 200) + 1);
  }
  for (int i = 0; i < 1000; ++i) {
    if (blocks[i] != NULL && ((unsigned char*)blocks[i])[i % 200] != (i & 0xff)) expect(0, "a block kept its contents");
    free(blocks[i]);
  }
  if (stray) free(never_allocated + 16);
  free(NULL);
  printf("plt_binding %s: %s\n", argv[1], failures == 0 ? "ok" : "FAILED");
  return failures == 0 ? 0 : 1;
}
