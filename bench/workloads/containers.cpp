// containers: ordinary C++ that allocates through new/delete behind the standard
// containers.
//
// Builds a word index the way everyday C++ does: generated words in std::string (many
// beyond the small-string buffer), counted in std::map and std::unordered_map, grouped
// into std::vector<std::string>, joined and split again. Node-based containers make many
// small same-size allocations; vectors and strings grow by reallocation.
//
//   --words=N  words per round (default 150000)   --rounds=N  (default 3)
#include <algorithm>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "workload.hpp"

namespace {

std::string make_word(workload::Random& random) {
  // 3-40 letters: about half fit the small-string buffer, half go to the heap.
  std::size_t length = random.between(3, 40);
  std::string word;
  for (std::size_t i = 0; i < length; ++i) word.push_back(static_cast<char>('a' + random.below(26)));
  return word;
}

}  // namespace

int main(int argc, char** argv) {
  workload::Args args(argc, argv);
  const std::size_t words = args.scaled(static_cast<std::size_t>(args.integer("words", 150000)));
  const std::size_t rounds = static_cast<std::size_t>(args.integer("rounds", 3));
  workload::Random random(args.seed());
  args.finish();

  std::uint64_t checksum = 0;
  for (std::size_t round = 0; round < rounds; ++round) {
    // A vocabulary, so that words repeat and the maps count something.
    std::vector<std::string> vocabulary;
    for (std::size_t i = 0; i < words / 8 + 1; ++i) vocabulary.push_back(make_word(random));

    std::vector<std::string> text;
    for (std::size_t i = 0; i < words; ++i) text.push_back(vocabulary[random.below(vocabulary.size())]);

    std::map<std::string, int> ordered;
    std::unordered_map<std::string, std::vector<std::size_t>> positions;
    for (std::size_t i = 0; i < text.size(); ++i) {
      ++ordered[text[i]];
      positions[text[i]].push_back(i);
    }

    // Group by first letter, then join each group into one long string and split it again.
    std::map<char, std::vector<std::string>> by_letter;
    for (const auto& [word, count] : ordered) by_letter[word[0]].push_back(word + ":" + std::to_string(count));
    for (auto& [letter, group] : by_letter) {
      std::string joined;
      for (const std::string& entry : group) {
        joined += entry;
        joined += ' ';
      }
      std::vector<std::string> split;
      std::size_t start = 0;
      for (std::size_t space; (space = joined.find(' ', start)) != std::string::npos; start = space + 1)
        split.push_back(joined.substr(start, space - start));
      std::sort(split.begin(), split.end());
      checksum += split.size() * 131 + static_cast<unsigned char>(letter) + joined.size();
    }
    for (const auto& [word, where] : positions) checksum += where.size() * word.size() + where.front();
    checksum += ordered.size();
  }
  workload::print_checksum(checksum);
}
