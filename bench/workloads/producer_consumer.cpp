// producer_consumer: blocks allocated on one thread and freed on another.
//
// Pairs of threads joined by a queue: the producer allocates messages (16-1024 bytes),
// fills them and pushes them; the consumer reads and frees them. Every free is a remote
// free, the case a thread-caching allocator must send back to the owner (or leak into
// its own cache). Messages travel in batches of 64 so that the queue's lock does not
// dominate the allocator's cost.
//
//   --threads=N    producer/consumer pairs (default 1; 2N threads run)
//   --messages=N   messages per run, split over the pairs (default 2000000)
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "workload.hpp"

namespace {

constexpr std::size_t kBatch = 64;
constexpr std::size_t kMaxQueuedBatches = 64;  // bounds the memory in flight

struct Message {
  std::size_t size;
  char payload[];  // `size` bytes follow
};

struct Batch {
  Message* messages[kBatch];
  std::size_t count = 0;
};

class Queue {
 public:
  void push(Batch batch) {
    std::unique_lock lock(mutex_);
    not_full_.wait(lock, [&] { return batches_.size() < kMaxQueuedBatches; });
    batches_.push_back(batch);
    not_empty_.notify_one();
  }
  // An empty batch means the producer is done.
  Batch pop() {
    std::unique_lock lock(mutex_);
    not_empty_.wait(lock, [&] { return !batches_.empty(); });
    Batch batch = batches_.front();
    batches_.pop_front();
    not_full_.notify_one();
    return batch;
  }

 private:
  std::mutex mutex_;
  std::condition_variable not_empty_, not_full_;
  std::deque<Batch> batches_;
};

void produce(Queue& queue, std::size_t messages, std::uint64_t seed) {
  workload::Random random(seed);
  Batch batch;
  for (std::size_t i = 0; i < messages; ++i) {
    std::size_t size = random.between(16, 1024);
    auto* message = static_cast<Message*>(workload::checked_malloc(sizeof(Message) + size));
    message->size = size;
    workload::fill(message->payload, size, i);
    batch.messages[batch.count++] = message;
    if (batch.count == kBatch) {
      queue.push(batch);
      batch.count = 0;
    }
  }
  if (batch.count > 0) queue.push(batch);
  queue.push(Batch{});
}

std::uint64_t consume(Queue& queue) {
  std::uint64_t checksum = 0;
  for (;;) {
    Batch batch = queue.pop();
    if (batch.count == 0) return checksum;
    for (std::size_t i = 0; i < batch.count; ++i) {
      checksum += workload::fold(batch.messages[i]->payload, batch.messages[i]->size);
      std::free(batch.messages[i]);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  workload::Args args(argc, argv);
  const int pairs = args.threads();
  const std::size_t messages = args.scaled(static_cast<std::size_t>(args.integer("messages", 2000000))) / pairs;
  const std::uint64_t seed = args.seed();
  args.finish();

  std::vector<Queue> queues(pairs);
  std::vector<std::uint64_t> checksums(pairs, 0);
  std::vector<std::thread> threads;
  for (int p = 0; p < pairs; ++p) {
    threads.emplace_back(produce, std::ref(queues[p]), messages, seed + p);
    threads.emplace_back([&, p] { checksums[p] = consume(queues[p]); });
  }
  for (std::thread& thread : threads) thread.join();

  std::uint64_t checksum = 0;
  for (std::uint64_t c : checksums) checksum += c;
  workload::print_checksum(checksum);
}
