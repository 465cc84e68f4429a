// A C++ translation unit for scripts/bench's "compile" workload: `g++ -O2 -c` of this
// file. It is never linked or run. It pulls in much of the standard library and
// instantiates templates over several types, so the compiler (cc1plus, one of the
// heaviest malloc users among everyday programs) builds and frees large numbers of
// trees and tables. Its content does not matter beyond that; keep it deterministic
// (no __DATE__/__TIME__) and free of warnings.
#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <deque>
#include <functional>
#include <iomanip>
#include <iostream>
#include <list>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

namespace compile_workload {

using Value = std::variant<long, double, std::string, std::vector<long>>;

struct Record {
  std::string name;
  std::map<std::string, Value> fields;
  std::optional<std::string> note;
  auto operator<=>(const Record& other) const { return name <=> other.name; }
  bool operator==(const Record& other) const { return name == other.name; }
};

std::string describe(const Value& value) {
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        std::ostringstream out;
        if constexpr (std::is_same_v<T, std::vector<long>>) {
          out << '[';
          for (long x : v) out << x << ',';
          out << ']';
        } else {
          out << std::setprecision(6) << v;
        }
        return out.str();
      },
      value);
}

template <class Key, class Mapped>
class Index {
 public:
  void add(const Key& key, Mapped value) { by_key_[key].push_back(std::move(value)); }
  std::size_t count(const Key& key) const {
    auto it = by_key_.find(key);
    return it == by_key_.end() ? 0 : it->second.size();
  }
  template <class Fn>
  void for_each(Fn&& fn) const {
    std::vector<Key> keys;
    for (const auto& entry : by_key_) keys.push_back(entry.first);
    std::sort(keys.begin(), keys.end());
    for (const Key& key : keys) fn(key, by_key_.at(key));
  }

 private:
  std::unordered_map<Key, std::vector<Mapped>> by_key_;
};

template <class T>
std::vector<T> merge_sorted(std::vector<std::vector<T>> runs) {
  std::vector<T> out;
  for (auto& run : runs) {
    std::sort(run.begin(), run.end());
    std::vector<T> merged;
    std::merge(out.begin(), out.end(), run.begin(), run.end(), std::back_inserter(merged));
    out = std::move(merged);
  }
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<std::string> tokens(const std::string& text) {
  std::vector<std::string> out;
  std::string current;
  for (char c : text) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') {
      current += c;
    } else if (!current.empty()) {
      out.push_back(std::move(current));
      current.clear();
    }
  }
  if (!current.empty()) out.push_back(std::move(current));
  return out;
}

std::map<std::string, std::size_t> histogram(const std::vector<std::string>& words) {
  std::map<std::string, std::size_t> counts;
  for (const auto& w : words) ++counts[w];
  return counts;
}

template <class Container>
std::string join(const Container& items, const std::string& separator) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += separator;
    if constexpr (std::is_convertible_v<decltype(item), std::string>) {
      out += item;
    } else {
      out += std::to_string(item);
    }
  }
  return out;
}

std::optional<long> parse_long(std::string_view text) {
  long value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

class Graph {
 public:
  void edge(int from, int to, double weight) { adjacency_[from].push_back({to, weight}); }
  std::map<int, double> shortest_from(int source) const {
    std::map<int, double> distance{{source, 0.0}};
    using Item = std::pair<double, int>;
    std::vector<Item> heap{{0.0, source}};
    std::set<int> done;
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), std::greater<>());
      auto [d, node] = heap.back();
      heap.pop_back();
      if (!done.insert(node).second) continue;
      auto it = adjacency_.find(node);
      if (it == adjacency_.end()) continue;
      for (auto [next, weight] : it->second) {
        double candidate = d + weight;
        auto known = distance.find(next);
        if (known == distance.end() || candidate < known->second) {
          distance[next] = candidate;
          heap.push_back({candidate, next});
          std::push_heap(heap.begin(), heap.end(), std::greater<>());
        }
      }
    }
    return distance;
  }

 private:
  std::unordered_map<int, std::vector<std::pair<int, double>>> adjacency_;
};

template <int N>
struct Unrolled {
  template <class F>
  static void run(F&& f) {
    Unrolled<N - 1>::run(f);
    f(std::integral_constant<int, N>{});
  }
};
template <>
struct Unrolled<0> {
  template <class F>
  static void run(F&&) {}
};

template <int I>
struct Stage {
  std::array<long, I + 1> data{};
  std::function<long(long)> step = [](long x) { return x * (I + 1) + I; };
  long apply(long seed) const {
    long x = seed;
    for (long d : data) x = step(x) ^ d;
    return x;
  }
};

template <int... Is>
long pipeline(std::integer_sequence<int, Is...>, long seed) {
  std::tuple<Stage<Is>...> stages;
  long x = seed;
  std::apply([&](auto&... stage) { ((x = stage.apply(x)), ...); }, stages);
  return x;
}

#define COMPILE_WORKLOAD_INSTANCE(Type, Name)                                  \
  std::size_t use_##Name(const std::vector<Type>& input) {                     \
    Index<Type, std::string> index;                                            \
    std::deque<Type> queue(input.begin(), input.end());                        \
    std::list<Type> list(input.begin(), input.end());                          \
    std::set<Type> unique(input.begin(), input.end());                         \
    std::unordered_set<Type> hashed(input.begin(), input.end());               \
    for (const Type& value : input) index.add(value, #Name);                   \
    auto merged = merge_sorted(std::vector<std::vector<Type>>{input, input});  \
    std::size_t total = merged.size() + queue.size() + list.size();            \
    index.for_each([&](const Type&, const std::vector<std::string>& names) {   \
      total += names.size();                                                   \
    });                                                                        \
    return total + unique.size() + hashed.size();                              \
  }

COMPILE_WORKLOAD_INSTANCE(int, int)
COMPILE_WORKLOAD_INSTANCE(std::string, string)

long everything(const std::string& text) {
  auto words = tokens(text);
  auto counts = histogram(words);
  std::vector<Record> records;
  for (const auto& [word, count] : counts) {
    Record record{word, {}, std::nullopt};
    record.fields["count"] = static_cast<long>(count);
    record.fields["ratio"] = static_cast<double>(count) / static_cast<double>(words.size());
    record.fields["word"] = word;
    record.fields["lengths"] = std::vector<long>{static_cast<long>(word.size())};
    if (auto number = parse_long(word)) record.note = "number " + std::to_string(*number);
    records.push_back(std::move(record));
  }
  std::sort(records.begin(), records.end());
  std::ostringstream out;
  for (const Record& record : records)
    for (const auto& [key, value] : record.fields) out << record.name << '.' << key << '=' << describe(value) << '\n';
  Graph graph;
  for (int i = 0; i < 64; ++i) graph.edge(i, (i * 7 + 3) % 64, 1.0 + i % 5);
  auto distances = graph.shortest_from(0);
  long total = static_cast<long>(out.str().size() + distances.size());
  Unrolled<12>::run([&](auto n) { total += decltype(n)::value * static_cast<long>(records.size()); });
  total += pipeline(std::make_integer_sequence<int, 12>{}, total);
  std::vector<int> ints(words.size());
  std::iota(ints.begin(), ints.end(), 0);
  total += static_cast<long>(use_int(ints) + use_string(words) + join(ints, ",").size() + join(words, " ").size());
  return total;
}

}  // namespace compile_workload

int compile_workload_main(int argc, char** argv) {
  std::string text;
  for (int i = 0; i < argc; ++i) text += argv[i], text += ' ';
  std::cout << compile_workload::everything(text) << '\n';
  return 0;
}
