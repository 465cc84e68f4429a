// The `zheap` command.
//
//   zheap run [--allocator MODE] [--set NAME=VALUE]... -- PROG [ARGS]
//   zheap options [--markdown]
//   zheap report FILE.json
//   zheap --help | --version
//
// `run` preloads libzheap.so (found beside this executable in a build tree, else in the
// install libdir baked in by meson), sets the ZHEAP_* variables after checking their values
// with the shim's own parsers, and execs PROG. Exit codes: PROG's own; 127 when PROG cannot
// be found, 126 when it cannot be run; 2 for a usage error; 1 when libzheap.so is missing.
// `report` renders a JSON Lines debug report as text (report_render.hpp); 2 for a bad file.
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <unistd.h>

#include <boost/program_options.hpp>

#include "options.hpp"
#include "options_text.hpp"
#include "report_render.hpp"
#include "zheap_config.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {

constexpr int exit_usage = 2;
constexpr int exit_no_library = 1;

const char* const overview =
    "zheap: run a program under the zheap allocators.\n"
    "\n"
    "Usage:\n"
    "  zheap run [--allocator MODE] [--set NAME=VALUE]... -- PROG [ARGS...]\n"
    "  zheap options [--markdown]\n"
    "  zheap report FILE.json\n"
    "  zheap --help | --version\n"
    "\n"
    "Commands:\n"
    "  run       preload libzheap.so into PROG with the given options\n"
    "  options   list every ZHEAP_* option with its default and meaning\n"
    "  report    print a saved JSON debug report (ZHEAP_REPORT_FORMAT=json) as text\n"
    "\n"
    "`zheap COMMAND --help` describes a command's options.\n";

struct UsageError {
  std::string message;
};

// libzheap.so for this zheap: ../shim/libzheap.so from a build tree, else the install
// libdir. nullopt with `tried` filled when neither exists.
std::optional<fs::path> find_library(std::vector<fs::path>& tried) {
  std::error_code error;
  const fs::path self = fs::read_symlink("/proc/self/exe", error);
  if (!error) tried.push_back(self.parent_path().parent_path() / "shim" / "libzheap.so");
  tried.push_back(fs::path(ZHEAP_INSTALL_LIBDIR) / "libzheap.so");
  for (const auto& candidate : tried) {
    if (fs::is_regular_file(candidate, error)) return fs::weakly_canonical(candidate, error);
  }
  return std::nullopt;
}

// "LIMIT=1G" -> {"ZHEAP_LIMIT", "1G"}, checked against the table and the option's parser.
std::pair<std::string, std::string> checked_setting(const std::string& setting) {
  const auto equals = setting.find('=');
  if (equals == std::string::npos) throw UsageError{"--set " + setting + ": expected NAME=VALUE"};
  const std::string name = setting.substr(0, equals);
  const std::string value = setting.substr(equals + 1);
  const std::size_t index = zheap::shim::find_option(name);
  if (index == zheap::shim::option_count) {
    std::string names;
    for (const auto& info : zheap::shim::option_table) names += (names.empty() ? "" : ", ") + std::string(info.name);
    throw UsageError{"--set " + setting + ": no option is called " + name + " (options: " + names + ")"};
  }
  const auto& info = zheap::shim::option_table[index];
  zheap::shim::Options scratch;
  if (!value.empty() && !zheap::shim::set_option(scratch, index, value)) {
    throw UsageError{"--set " + setting + ": \"" + value + "\" is not " + std::string(info.noun) +
                     " (accepted: " + std::string(info.accepted) + ")"};
  }
  return {std::string(info.variable), value};
}

int command_run(const std::vector<std::string>& args, const std::vector<std::string>& program) {
  po::options_description described("zheap run [--allocator MODE] [--set NAME=VALUE]... -- PROG [ARGS...]");
  std::string allocator_help = "the allocator: " +
                               std::string(zheap::shim::option_table[zheap::shim::find_option("ALLOCATOR")].accepted);
  described.add_options()
      ("help,h", "describe `zheap run`")
      ("allocator,a", po::value<std::string>()->value_name("MODE"), allocator_help.c_str())
      ("set,s", po::value<std::vector<std::string>>()->composing()->value_name("NAME=VALUE"),
       "set option ZHEAP_NAME (see `zheap options`); repeatable");
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(described).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << described << "\nPROG is looked up in PATH. ZHEAP_* variables already in the environment are\n"
                              "kept unless set here.\n";
    return 0;
  }
  if (program.empty()) throw UsageError{"run: no program given (zheap run [OPTIONS] -- PROG [ARGS...])"};

  std::vector<std::pair<std::string, std::string>> settings;
  if (vm.count("allocator")) settings.push_back(checked_setting("ALLOCATOR=" + vm["allocator"].as<std::string>()));
  if (vm.count("set")) {
    for (const auto& setting : vm["set"].as<std::vector<std::string>>()) settings.push_back(checked_setting(setting));
  }

  std::vector<fs::path> tried;
  const auto library = find_library(tried);
  if (!library) {
    std::cerr << "zheap: cannot find libzheap.so; looked at:";
    for (const auto& path : tried) std::cerr << ' ' << path.string();
    std::cerr << '\n';
    return exit_no_library;
  }

  std::string preload = library->string();
  if (const char* existing = std::getenv("LD_PRELOAD"); existing != nullptr && existing[0] != '\0') {
    preload += ':';
    preload += existing;
  }
  ::setenv("LD_PRELOAD", preload.c_str(), 1);
  for (const auto& [variable, value] : settings) ::setenv(variable.c_str(), value.c_str(), 1);

  std::vector<char*> argv;
  for (const auto& arg : program) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  ::execvp(argv[0], argv.data());
  const int error = errno;
  std::cerr << "zheap: cannot run " << program[0] << ": " << std::strerror(error) << '\n';
  return error == ENOENT ? 127 : 126;
}

int command_options(const std::vector<std::string>& args) {
  po::options_description described("zheap options [--markdown]");
  described.add_options()
      ("help,h", "describe `zheap options`")
      ("markdown", "print the table as Markdown (docs/OPTIONS.md)");
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(described).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << described;
    return 0;
  }
  if (vm.count("markdown")) {
    zheap::tool::write_options_markdown(std::cout);
  } else {
    zheap::tool::write_options_text(std::cout);
  }
  return 0;
}

int command_report(const std::vector<std::string>& args) {
  po::options_description described("zheap report FILE.json");
  described.add_options()
      ("help,h", "describe `zheap report`")
      ("file", po::value<std::string>()->value_name("FILE.json"), "the report");
  po::positional_options_description positional;
  positional.add("file", 1);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(described).positional(positional).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << described
              << "\nFILE.json is what debug mode writes with ZHEAP_REPORT_FORMAT=json (JSON Lines,\n"
                 "docs/REPORT.md); it is printed in the layout debug mode prints text in.\n";
    return 0;
  }
  if (!vm.count("file")) throw UsageError{"report: no file given (zheap report FILE.json)"};
  std::cout.flush();  // the report is written to the descriptor directly
  return zheap::tool::render_report_file(vm["file"].as<std::string>(), STDOUT_FILENO, std::cerr);
}

int run(int argc, char** argv) {
  // Everything after the first "--" is the program to run, never parsed here.
  std::vector<std::string> before, program;
  bool after_separator = false;
  for (int i = 1; i < argc; ++i) {
    if (!after_separator && std::strcmp(argv[i], "--") == 0) {
      after_separator = true;
      continue;
    }
    (after_separator ? program : before).push_back(argv[i]);
  }

  // The first word is the command; anything before a command is a global option.
  if (before.empty() || before.front().starts_with('-')) {
    po::options_description global("zheap");
    global.add_options()
        ("help,h", "show this help")
        ("version,V", "show the version");
    po::variables_map vm;
    po::store(po::command_line_parser(before).options(global).run(), vm);
    if (vm.count("version")) {
      std::cout << "zheap " ZHEAP_VERSION "\n";
      return 0;
    }
    if (vm.count("help")) {
      std::cout << overview << '\n' << global;
      return 0;
    }
    std::cerr << overview;
    return exit_usage;
  }

  const std::string command = before.front();
  const std::vector<std::string> rest(before.begin() + 1, before.end());
  if (command == "run") return command_run(rest, program);
  if (!program.empty()) throw UsageError{command + ": unexpected arguments after --"};
  if (command == "options") return command_options(rest);
  if (command == "report") return command_report(rest);
  throw UsageError{"unknown command \"" + command + "\" (commands: run, options, report)"};
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const UsageError& error) {
    std::cerr << "zheap: " << error.message << '\n';
  } catch (const po::error& error) {
    std::cerr << "zheap: " << error.what() << '\n';
  }
  std::cerr << "Try `zheap --help`.\n";
  return exit_usage;
}
