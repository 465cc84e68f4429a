// find_frame_rule(): a small DWARF CFA interpreter for the x86-64 rules worth caching.
// References: the DWARF 4 standard, section 6.4 (call frame information), and the LSB's
// .eh_frame description (CIE augmentations "zR", "zPLR", pointer encodings DW_EH_PE_*).
#include "debug/frame_rule.hpp"

#include <cstddef>
#include <cstring>

// libgcc exports this (GCC_3.0) but declares it in no installed header.
struct ZheapDwarfEhBases {
  void* tbase;
  void* dbase;
  void* func;
};
extern "C" const void* _Unwind_Find_FDE(void* pc, ZheapDwarfEhBases* bases);

namespace zheap::debug {
namespace {

// DWARF register numbers on x86-64 (System V psABI, figure 3.36).
constexpr std::uint64_t kRbp = 6;
constexpr std::uint64_t kRsp = 7;
constexpr std::uint64_t kReturnAddress = 16;

// A forward-only reader over CFI bytes with the DWARF variable-length encodings.
struct Reader {
  const std::uint8_t* at;
  const std::uint8_t* end;
  bool ok = true;

  bool more() const noexcept { return ok && at < end; }
  template <class T>
  T fixed() noexcept {
    if (end - at < static_cast<std::ptrdiff_t>(sizeof(T))) {
      ok = false;
      return 0;
    }
    T value;
    std::memcpy(&value, at, sizeof(T));
    at += sizeof(T);
    return value;
  }
  std::uint64_t uleb() noexcept {
    std::uint64_t value = 0;
    unsigned shift = 0;
    while (true) {
      if (at >= end || shift > 63) {
        ok = false;
        return 0;
      }
      const std::uint8_t byte = *at++;
      value |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
      shift += 7;
      if ((byte & 0x80) == 0) return value;
    }
  }
  std::int64_t sleb() noexcept {
    std::int64_t value = 0;
    unsigned shift = 0;
    std::uint8_t byte;
    do {
      if (at >= end || shift > 63) {
        ok = false;
        return 0;
      }
      byte = *at++;
      value |= static_cast<std::int64_t>(byte & 0x7f) << shift;
      shift += 7;
    } while (byte & 0x80);
    if (shift < 64 && (byte & 0x40)) value |= -(static_cast<std::int64_t>(1) << shift);
    return value;
  }
  void skip(std::uint64_t n) noexcept {
    if (static_cast<std::uint64_t>(end - at) < n) {
      ok = false;
      return;
    }
    at += n;
  }
  // A pointer in DW_EH_PE encoding `encoding`. Only the value's size matters to us for
  // pc_begin, pc_range and the personality (libgcc has decoded pc_begin already), except
  // for DW_CFA_set_loc, where the pc-relative form is resolved too.
  std::uint64_t encoded(std::uint8_t encoding) noexcept {
    if (encoding == 0xff) return 0;  // DW_EH_PE_omit
    const std::uint8_t* const field = at;
    std::uint64_t value;
    switch (encoding & 0x0f) {
      case 0x00: value = fixed<std::uint64_t>(); break;                       // absptr
      case 0x01: value = uleb(); break;                                      // uleb128
      case 0x02: value = fixed<std::uint16_t>(); break;                       // udata2
      case 0x03: value = fixed<std::uint32_t>(); break;                       // udata4
      case 0x04: value = fixed<std::uint64_t>(); break;                       // udata8
      case 0x09: value = static_cast<std::uint64_t>(sleb()); break;           // sleb128
      case 0x0a: value = static_cast<std::uint64_t>(fixed<std::int16_t>()); break;  // sdata2
      case 0x0b: value = static_cast<std::uint64_t>(fixed<std::int32_t>()); break;  // sdata4
      case 0x0c: value = fixed<std::uint64_t>(); break;                       // sdata8
      default: ok = false; return 0;
    }
    if ((encoding & 0x70) == 0x10) value += reinterpret_cast<std::uintptr_t>(field);  // pcrel
    return value;
  }
};

// The rule for one register column, as far as we follow it.
struct RegisterRule {
  enum class Kind : std::uint8_t { same, undefined, offset, unsupported } kind = Kind::same;
  std::int64_t offset = 0;  // for `offset`: saved at CFA + offset
};

struct Row {
  std::uint64_t cfa_register = kRsp;
  std::int64_t cfa_offset = 8;
  bool cfa_unsupported = false;  // DW_CFA_def_cfa_expression
  RegisterRule rbp;
  RegisterRule return_address;
};

struct Cie {
  std::uint64_t code_alignment = 1;
  std::int64_t data_alignment = -8;
  std::uint64_t return_address_register = kReturnAddress;
  std::uint8_t fde_encoding = 0;  // DW_EH_PE_absptr unless an 'R' says otherwise
  bool has_augmentation_data = false;
  bool signal_frame = false;
  const std::uint8_t* instructions = nullptr;
  const std::uint8_t* instructions_end = nullptr;
};

// Reads the length field of a CIE or FDE; on return `r.end` is the record's end.
bool enter_record(Reader& r) noexcept {
  std::uint64_t length = r.fixed<std::uint32_t>();
  if (length == 0xffffffffu) length = r.fixed<std::uint64_t>();  // 64-bit DWARF
  if (!r.ok || length == 0) return false;
  r.end = r.at + length;
  return true;
}

bool parse_cie(const std::uint8_t* cie_start, Cie* cie) noexcept {
  Reader r{cie_start, cie_start + 16};
  if (!enter_record(r)) return false;
  if (r.fixed<std::uint32_t>() != 0) return false;  // a CIE's id is 0 in .eh_frame
  const std::uint8_t version = r.fixed<std::uint8_t>();
  if (version != 1 && version != 3) return false;
  const char* augmentation = reinterpret_cast<const char*>(r.at);
  const std::size_t augmentation_len = strnlen(augmentation, static_cast<std::size_t>(r.end - r.at));
  r.skip(augmentation_len + 1);
  if (augmentation[0] != '\0' && augmentation[0] != 'z') return false;  // e.g. "eh": unknown layout
  cie->code_alignment = r.uleb();
  cie->data_alignment = r.sleb();
  cie->return_address_register = version == 1 ? r.fixed<std::uint8_t>() : r.uleb();
  if (augmentation[0] == 'z') {
    cie->has_augmentation_data = true;
    const std::uint64_t data_len = r.uleb();
    Reader data{r.at, r.at + data_len};
    r.skip(data_len);
    for (const char* a = augmentation + 1; *a != '\0'; ++a) {
      switch (*a) {
        case 'R': cie->fde_encoding = data.fixed<std::uint8_t>(); break;
        case 'L': data.fixed<std::uint8_t>(); break;
        case 'P': data.encoded(data.fixed<std::uint8_t>()); break;
        case 'S': cie->signal_frame = true; break;
        default: return false;  // an augmentation whose data we cannot skip
      }
    }
    if (!data.ok) return false;
  }
  cie->instructions = r.at;
  cie->instructions_end = r.end;
  return r.ok;
}

// Runs CFA instructions, starting at code address `location`, until the row that covers
// `target` is complete. `initial` is the row after the CIE's instructions (for
// DW_CFA_restore). false when an instruction is one we do not interpret.
bool run_cfa_program(Reader r, const Cie& cie, std::uintptr_t location, std::uintptr_t target, const Row& initial,
                     Row* row) noexcept {
  constexpr int kMaxRemembered = 8;
  Row remembered[kMaxRemembered];
  int remembered_count = 0;

  auto set_offset = [&](std::uint64_t reg, std::int64_t offset) {
    RegisterRule rule{RegisterRule::Kind::offset, offset};
    if (reg == kRbp) row->rbp = rule;
    if (reg == cie.return_address_register) row->return_address = rule;
  };
  auto set_kind = [&](std::uint64_t reg, RegisterRule::Kind kind) {
    if (reg == kRbp) row->rbp = RegisterRule{kind, 0};
    if (reg == cie.return_address_register) row->return_address = RegisterRule{kind, 0};
  };
  auto restore = [&](std::uint64_t reg) {
    if (reg == kRbp) row->rbp = initial.rbp;
    if (reg == cie.return_address_register) row->return_address = initial.return_address;
  };
  // Advancing past the target means the current row is the one that covers it.
  auto advance = [&](std::uint64_t delta) {
    location += delta * cie.code_alignment;
    return location <= target;
  };

  while (r.more()) {
    const std::uint8_t opcode = r.fixed<std::uint8_t>();
    const std::uint8_t operand = opcode & 0x3f;
    switch (opcode >> 6) {
      case 1:  // DW_CFA_advance_loc
        if (!advance(operand)) return true;
        continue;
      case 2:  // DW_CFA_offset
        set_offset(operand, static_cast<std::int64_t>(r.uleb()) * cie.data_alignment);
        continue;
      case 3:  // DW_CFA_restore
        restore(operand);
        continue;
      default: break;
    }
    switch (opcode) {
      case 0x00: break;  // DW_CFA_nop
      case 0x01: {       // DW_CFA_set_loc
        const std::uintptr_t new_location = r.encoded(cie.fde_encoding);
        if (new_location > target) return true;
        location = new_location;
        break;
      }
      case 0x02:
        if (!advance(r.fixed<std::uint8_t>())) return true;
        break;
      case 0x03:
        if (!advance(r.fixed<std::uint16_t>())) return true;
        break;
      case 0x04:
        if (!advance(r.fixed<std::uint32_t>())) return true;
        break;
      case 0x05: {  // DW_CFA_offset_extended
        const std::uint64_t reg = r.uleb();
        set_offset(reg, static_cast<std::int64_t>(r.uleb()) * cie.data_alignment);
        break;
      }
      case 0x06: restore(r.uleb()); break;                                // DW_CFA_restore_extended
      case 0x07: set_kind(r.uleb(), RegisterRule::Kind::undefined); break;  // DW_CFA_undefined
      case 0x08: set_kind(r.uleb(), RegisterRule::Kind::same); break;       // DW_CFA_same_value
      case 0x09: {                                                        // DW_CFA_register
        const std::uint64_t reg = r.uleb();
        r.uleb();
        set_kind(reg, RegisterRule::Kind::unsupported);
        break;
      }
      case 0x0a:  // DW_CFA_remember_state
        if (remembered_count == kMaxRemembered) return false;
        remembered[remembered_count++] = *row;
        break;
      case 0x0b:  // DW_CFA_restore_state: the CFA rule comes back too, as in libgcc
        if (remembered_count == 0) return false;
        *row = remembered[--remembered_count];
        break;
      case 0x0c:  // DW_CFA_def_cfa
        row->cfa_register = r.uleb();
        row->cfa_offset = static_cast<std::int64_t>(r.uleb());
        row->cfa_unsupported = false;
        break;
      case 0x0d: row->cfa_register = r.uleb(); break;                                 // DW_CFA_def_cfa_register
      case 0x0e: row->cfa_offset = static_cast<std::int64_t>(r.uleb()); break;        // DW_CFA_def_cfa_offset
      case 0x0f:                                                                      // DW_CFA_def_cfa_expression
        row->cfa_unsupported = true;
        r.skip(r.uleb());
        break;
      case 0x10: {  // DW_CFA_expression
        const std::uint64_t reg = r.uleb();
        r.skip(r.uleb());
        set_kind(reg, RegisterRule::Kind::unsupported);
        break;
      }
      case 0x11: {  // DW_CFA_offset_extended_sf
        const std::uint64_t reg = r.uleb();
        set_offset(reg, r.sleb() * cie.data_alignment);
        break;
      }
      case 0x12:  // DW_CFA_def_cfa_sf
        row->cfa_register = r.uleb();
        row->cfa_offset = r.sleb() * cie.data_alignment;
        row->cfa_unsupported = false;
        break;
      case 0x13: row->cfa_offset = r.sleb() * cie.data_alignment; break;  // DW_CFA_def_cfa_offset_sf
      case 0x14:                                                         // DW_CFA_val_offset
      case 0x15: {                                                       // DW_CFA_val_offset_sf
        const std::uint64_t reg = r.uleb();
        if (opcode == 0x14) r.uleb(); else r.sleb();
        set_kind(reg, RegisterRule::Kind::unsupported);
        break;
      }
      case 0x16: {  // DW_CFA_val_expression
        const std::uint64_t reg = r.uleb();
        r.skip(r.uleb());
        set_kind(reg, RegisterRule::Kind::unsupported);
        break;
      }
      case 0x2e: r.uleb(); break;  // DW_CFA_GNU_args_size: only matters when landing in a handler
      case 0x2f: {                 // DW_CFA_GNU_negative_offset_extended
        const std::uint64_t reg = r.uleb();
        set_offset(reg, -static_cast<std::int64_t>(r.uleb()) * cie.data_alignment);
        break;
      }
      default: return false;  // vendor opcodes (e.g. DW_CFA_GNU_window_save) and anything new
    }
  }
  return r.ok;
}

FrameRule general() noexcept {
  FrameRule rule;
  rule.kind = FrameRule::Kind::general;
  return rule;
}

}  // namespace

FrameRule find_frame_rule(std::uintptr_t return_address) noexcept {
  if (return_address == 0) return general();
  const std::uintptr_t target = return_address - 1;  // inside the call instruction
  ZheapDwarfEhBases bases{};
  const auto* fde = static_cast<const std::uint8_t*>(_Unwind_Find_FDE(reinterpret_cast<void*>(target), &bases));
  if (fde == nullptr) return general();

  Reader r{fde, fde + 16};
  if (!enter_record(r)) return general();
  const std::uint8_t* const cie_pointer_field = r.at;
  const std::uint32_t cie_offset = r.fixed<std::uint32_t>();
  if (cie_offset == 0) return general();  // that is a CIE, not an FDE
  Cie cie;
  if (!parse_cie(cie_pointer_field - cie_offset, &cie) || cie.signal_frame) return general();
  r.encoded(cie.fde_encoding);                       // pc_begin: libgcc decoded it into bases.func
  r.encoded(static_cast<std::uint8_t>(cie.fde_encoding & 0x0f));  // pc_range
  if (cie.has_augmentation_data) r.skip(r.uleb());
  if (!r.ok) return general();

  Row row;
  const std::uintptr_t function_start = reinterpret_cast<std::uintptr_t>(bases.func);
  // The CIE's initial instructions describe the row at the function's first instruction.
  if (!run_cfa_program(Reader{cie.instructions, cie.instructions_end}, cie, function_start, ~std::uintptr_t{0}, row,
                       &row))
    return general();
  const Row initial = row;
  if (!run_cfa_program(r, cie, function_start, target, initial, &row)) return general();

  if (row.return_address.kind == RegisterRule::Kind::undefined) {
    FrameRule end;
    end.kind = FrameRule::Kind::end_of_stack;
    return end;
  }
  if (row.cfa_unsupported || (row.cfa_register != kRsp && row.cfa_register != kRbp)) return general();
  if (row.return_address.kind != RegisterRule::Kind::offset || row.return_address.offset != -8) return general();
  if (row.rbp.kind != RegisterRule::Kind::same && row.rbp.kind != RegisterRule::Kind::undefined &&
      row.rbp.kind != RegisterRule::Kind::offset)
    return general();
  if (row.cfa_offset <= 0 || row.cfa_offset > INT32_MAX) return general();
  if (row.rbp.kind == RegisterRule::Kind::offset && (row.rbp.offset < INT16_MIN || row.rbp.offset > INT16_MAX))
    return general();

  FrameRule rule;
  rule.kind = FrameRule::Kind::step;
  rule.cfa_base = row.cfa_register == kRsp ? FrameRule::CfaBase::rsp : FrameRule::CfaBase::rbp;
  rule.cfa_offset = static_cast<std::int32_t>(row.cfa_offset);
  rule.rbp_saved = row.rbp.kind == RegisterRule::Kind::offset;
  rule.rbp_offset = static_cast<std::int32_t>(row.rbp.offset);
  return rule;
}

}  // namespace zheap::debug
