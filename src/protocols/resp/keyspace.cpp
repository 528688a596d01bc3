#include "protocols/resp/keyspace.hpp"
#include "protocols/resp/steady_clock.hpp"

#include <algorithm>
#include <bit>
#include <cassert>

namespace iomux::resp {
namespace {

// What an entry costs beyond its key and value bytes: the hash node (key string, entry, next
// pointer, cached hash), a bucket pointer, and malloc's rounding and header.
constexpr std::int64_t kEntryOverhead = 128;
// A list element is a std::string in a deque block; a list, a deque with its map and a block.
constexpr std::int64_t kListElementOverhead = sizeof(std::string);
constexpr std::int64_t kListOverhead = 640;

static_assert(sizeof(std::size_t) == 8, "shard_index() takes the top 6 bits of a 64-bit hash");
static_assert(Keyspace::kShards == 64, "a Guard's shard mask has one bit per shard");

std::int64_t report_step_for(std::size_t max_memory) {
  // The shards' total may lag by kShards steps: keep that under 1/16 of the bound, and the
  // shared counter's cache line quiet (one update per 64 KiB of change at most).
  constexpr std::int64_t kLargestStep = 64 * 1024;
  if (max_memory == 0) return kLargestStep;
  const auto step = static_cast<std::int64_t>(max_memory / (Keyspace::kShards * 16));
  return std::clamp<std::int64_t>(step, 1, kLargestStep);
}

#ifndef NDEBUG
// Guards this thread holds. Debug builds check the rule a caller can break: a thread holding
// a Guard must not lock again, or two threads doing so in opposite orders deadlock.
thread_local int guards_held = 0;
#endif

std::uint64_t next_random(std::uint64_t& state) noexcept {
  // xorshift64: sampling needs spread, not quality.
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}

}  // namespace

Keyspace::Keyspace(KeyspaceOptions options)
    : clock_(options.clock ? std::move(options.clock) : steady_now),
      max_memory_(options.max_memory),
      report_step_(report_step_for(options.max_memory)) {
  for (std::size_t i = 0; i < kShards; ++i) shards_[i].random += i;  // distinct sequences
  if (options.active_expiry) expiry_thread_ = std::jthread([this](std::stop_token stop) { run_active_expiry(stop); });
}

Keyspace::~Keyspace() {
  if (expiry_thread_.joinable()) {
    expiry_thread_.request_stop();  // wakes the thread out of its wait
    expiry_thread_.join();
  }
}

std::int64_t Keyspace::now_ms() const {
  return clock_().count();
}

// --- locking -----------------------------------------------------------------------------

Keyspace::Guard Keyspace::lock(std::string_view key) {
  assert(guards_held == 0);  // not reentrant: see lock()'s comment
  const HashedKey hashed_key = hashed(key);
  const std::size_t index = shard_index(hashed_key.hash);
  shards_[index].mutex.lock();
  return Guard(*this, std::uint64_t{1} << index, hashed_key);
}

Keyspace::Guard Keyspace::lock(std::span<const std::string_view> keys, std::size_t step) {
  assert(step > 0);
  assert(guards_held == 0);
  std::uint64_t mask = 0;
  for (std::size_t i = 0; i < keys.size(); i += step) mask |= std::uint64_t{1} << shard_index(hashed(keys[i]).hash);
  // Ascending shard order: any two multi-key commands take their common locks in the same
  // order, so neither can hold one the other waits for while waiting for one it holds.
  for (std::uint64_t rest = mask; rest != 0; rest &= rest - 1) shards_[std::countr_zero(rest)].mutex.lock();
  return Guard(*this, mask, std::nullopt);
}

Keyspace::Guard::Guard(Keyspace& keyspace, std::uint64_t shard_mask, std::optional<HashedKey> key)
    : keyspace_(keyspace), shard_mask_(shard_mask), key_(key) {
#ifndef NDEBUG
  ++guards_held;
#endif
}

Keyspace::Guard::~Guard() {
#ifndef NDEBUG
  --guards_held;
#endif
  for (std::uint64_t rest = shard_mask_; rest != 0; rest &= rest - 1)
    keyspace_.shards_[std::countr_zero(rest)].mutex.unlock();
}

Keyspace::Slot Keyspace::Guard::slot(std::string_view key) {
  const bool same_key = key_ && key.data() == key_->key.data() && key.size() == key_->key.size();
  const HashedKey hashed_key = same_key ? *key_ : hashed(key);
  const std::size_t index = shard_index(hashed_key.hash);
  assert((shard_mask_ >> index) & 1);  // the key's shard is one this guard holds
  Shard& shard = keyspace_.shards_[index];
  return Slot(keyspace_, shard, key, keyspace_.find_live(shard, hashed_key));
}

// --- entries (shard lock held) ----------------------------------------------------------

Keyspace::Node* Keyspace::find_live(Shard& shard, const HashedKey& key) {
  auto it = shard.map.find(key);
  if (it == shard.map.end()) return nullptr;
  Node& node = *it;
  // Redis's rule: a key expires once the clock is past its expiry time, not at it. The clock
  // is read only for keys with a TTL, which keeps it off the path of most lookups.
  if (node.second.expires_at != kNoExpiry && now_ms() > node.second.expires_at) {
    erase(shard, node);
    return nullptr;
  }
  return &node;
}

Keyspace::Node* Keyspace::insert(Shard& shard, std::string_view key) {
  auto [it, inserted] = shard.map.emplace(std::piecewise_construct, std::forward_as_tuple(key), std::tuple<>());
  assert(inserted);
  adjust_bytes(shard, it->second, static_cast<std::int64_t>(key.size()) + kEntryOverhead);
  return &*it;
}

void Keyspace::erase(Shard& shard, Node& node) {
  clear_expiry(shard, node);
  report_bytes(shard, -static_cast<std::int64_t>(node.second.bytes));
  auto it = shard.map.find(std::string_view(node.first));
  assert(it != shard.map.end() && &*it == &node);
  shard.map.erase(it);
}

void Keyspace::set_expiry(Shard& shard, Node& node, std::int64_t at) {
  Entry& entry = node.second;
  entry.expires_at = at;
  if (entry.ttl_index == kNotInTtlIndex) {
    entry.ttl_index = static_cast<std::uint32_t>(shard.with_ttl.size());
    shard.with_ttl.push_back(&node);
  }
}

void Keyspace::clear_expiry(Shard& shard, Node& node) {
  Entry& entry = node.second;
  entry.expires_at = kNoExpiry;
  if (entry.ttl_index == kNotInTtlIndex) return;
  // Swap-remove: the index is a bag to sample from, its order means nothing.
  Node* last = shard.with_ttl.back();
  shard.with_ttl[entry.ttl_index] = last;
  last->second.ttl_index = entry.ttl_index;
  shard.with_ttl.pop_back();
  entry.ttl_index = kNotInTtlIndex;
}

void Keyspace::adjust_bytes(Shard& shard, Entry& entry, std::int64_t delta) {
  entry.bytes = static_cast<std::size_t>(static_cast<std::int64_t>(entry.bytes) + delta);
  report_bytes(shard, delta);
}

void Keyspace::report_bytes(Shard& shard, std::int64_t delta) {
  // Only this shard's lock holder writes `bytes`: a plain load and store, no atomic add.
  shard.bytes.store(shard.bytes.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  shard.unreported += delta;
  if (shard.unreported >= report_step_ || shard.unreported <= -report_step_) {
    used_estimate_.fetch_add(shard.unreported, std::memory_order_relaxed);
    shard.unreported = 0;
  }
}

// --- whole keyspace ----------------------------------------------------------------------

std::size_t Keyspace::used_memory() const noexcept {
  std::int64_t total = 0;
  for (const Shard& shard : shards_) total += shard.bytes.load(std::memory_order_relaxed);
  return static_cast<std::size_t>(std::max<std::int64_t>(total, 0));
}

Keyspace::Counts Keyspace::counts() const {
  Counts counts;
  for (const Shard& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    counts.keys += shard.map.size();
    counts.expires += shard.with_ttl.size();
  }
  return counts;
}

void Keyspace::flush() {
  assert(guards_held == 0);
  for (Shard& shard : shards_) shard.mutex.lock();  // ascending, as every Guard
  for (Shard& shard : shards_) {
    shard.map.clear();
    shard.with_ttl.clear();
    report_bytes(shard, -shard.bytes.load(std::memory_order_relaxed));
  }
  for (Shard& shard : shards_) shard.mutex.unlock();
}

// --- active expiry -----------------------------------------------------------------------

Keyspace::Sample Keyspace::sample_expired(Shard& shard, std::int64_t now) {
  std::lock_guard lock(shard.mutex);
  std::vector<Node*>& with_ttl = shard.with_ttl;
  Sample sample;
  auto check = [&](std::size_t index) {
    ++sample.sampled;
    Node& node = *with_ttl[index];
    if (now > node.second.expires_at) {
      erase(shard, node);  // moves the last of with_ttl to `index`
      ++sample.expired;
    }
  };
  if (with_ttl.size() <= kExpirySample) {
    // Few enough to check them all. Backwards, so that the element an erase moves into place
    // has been checked already.
    for (std::size_t i = with_ttl.size(); i-- > 0;) check(i);
  } else {
    for (std::size_t i = 0; i < kExpirySample && !with_ttl.empty(); ++i)
      check(next_random(shard.random) % with_ttl.size());
  }
  return sample;
}

std::size_t Keyspace::active_expire_cycle() {
  const std::int64_t start = now_ms();
  std::size_t removed = 0;
  for (std::size_t visited = 0; visited < kShards; ++visited) {
    Shard& shard = shards_[expiry_cursor_];
    for (;;) {
      const Sample sample = sample_expired(shard, now_ms());
      removed += sample.expired;
      // More than a quarter of the sample had expired: the shard likely holds many more, and
      // each round removes some, so go again (Redis's rule). Otherwise the rest can wait.
      if (sample.expired * 4 <= sample.sampled) break;
      // Out of time: resume with this shard next cycle.
      if (now_ms() - start > kExpiryBudget.count()) return removed;
    }
    expiry_cursor_ = (expiry_cursor_ + 1) % kShards;
  }
  return removed;
}

void Keyspace::run_active_expiry(std::stop_token stop) {
  std::unique_lock lock(expiry_mutex_);
  while (!stop.stop_requested()) {
    // Wakes at the period, or at once when the destructor asks the thread to stop.
    expiry_wakeup_.wait_for(lock, stop, kExpiryPeriod, [] { return false; });
    if (stop.stop_requested()) break;
    active_expire_cycle();
  }
}

// --- Slot --------------------------------------------------------------------------------

const std::string* Keyspace::Slot::string() const noexcept {
  return node_ ? std::get_if<std::string>(&node_->second.value) : nullptr;
}

const Keyspace::List* Keyspace::Slot::list() const noexcept {
  if (!node_) return nullptr;
  auto* list = std::get_if<std::unique_ptr<List>>(&node_->second.value);
  return list ? list->get() : nullptr;
}

std::optional<std::int64_t> Keyspace::Slot::expires_at() const noexcept {
  if (!node_ || node_->second.expires_at == kNoExpiry) return std::nullopt;
  return node_->second.expires_at;
}

void Keyspace::Slot::set_string(std::string_view value, bool keep_ttl) {
  if (!node_) node_ = keyspace_.insert(shard_, key_);
  Entry& entry = node_->second;
  if (auto* string = std::get_if<std::string>(&entry.value)) {
    string->assign(value);  // reuses the string's buffer when the value fits
  } else {
    entry.value.emplace<std::string>(value);
  }
  if (!keep_ttl) keyspace_.clear_expiry(shard_, *node_);
  const auto bytes = static_cast<std::int64_t>(key_.size() + value.size()) + kEntryOverhead;
  keyspace_.adjust_bytes(shard_, entry, bytes - static_cast<std::int64_t>(entry.bytes));
}

void Keyspace::Slot::append(std::string_view tail) {
  if (!node_) node_ = keyspace_.insert(shard_, key_);
  Entry& entry = node_->second;
  auto* string = std::get_if<std::string>(&entry.value);
  assert(string);
  string->append(tail);
  keyspace_.adjust_bytes(shard_, entry, static_cast<std::int64_t>(tail.size()));
}

void Keyspace::Slot::push(std::string_view value, End end) {
  if (!node_) {
    node_ = keyspace_.insert(shard_, key_);
    node_->second.value.emplace<std::unique_ptr<List>>(std::make_unique<List>());
    keyspace_.adjust_bytes(shard_, node_->second, kListOverhead);
  }
  Entry& entry = node_->second;
  auto* list = std::get_if<std::unique_ptr<List>>(&entry.value);
  assert(list);
  if (end == End::front) {
    (*list)->emplace_front(value);
  } else {
    (*list)->emplace_back(value);
  }
  keyspace_.adjust_bytes(shard_, entry, static_cast<std::int64_t>(value.size()) + kListElementOverhead);
}

std::string Keyspace::Slot::pop(End end) {
  assert(list() && !list()->empty());
  Entry& entry = node_->second;
  List& list = *std::get<std::unique_ptr<List>>(entry.value);
  std::string value;
  if (end == End::front) {
    value = std::move(list.front());
    list.pop_front();
  } else {
    value = std::move(list.back());
    list.pop_back();
  }
  keyspace_.adjust_bytes(shard_, entry, -(static_cast<std::int64_t>(value.size()) + kListElementOverhead));
  if (list.empty()) erase();  // Redis keeps no empty lists
  return value;
}

void Keyspace::Slot::set_expires_at(std::int64_t at) {
  assert(node_);
  keyspace_.set_expiry(shard_, *node_, at);
}

bool Keyspace::Slot::persist() {
  assert(node_);
  if (node_->second.expires_at == kNoExpiry) return false;
  keyspace_.clear_expiry(shard_, *node_);
  return true;
}

void Keyspace::Slot::erase() {
  assert(node_);
  keyspace_.erase(shard_, *node_);
  node_ = nullptr;
}

}  // namespace iomux::resp
