#include "protocols/resp/keyspace.hpp"
#include "protocols/resp/steady_clock.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstring>
#include <utility>

namespace iomux::resp {
namespace {

// Memory as the allocator sees it. glibc's malloc gives a request of n bytes a chunk of n plus
// an 8-byte header, rounded up to 16 bytes, 32 at least; that is what each allocation below
// is counted as.
constexpr std::int64_t heap_chunk(std::size_t request) noexcept {
  return static_cast<std::int64_t>(request + 8 <= 32 ? 32 : (request + 8 + 15) & ~std::size_t{15});
}

static_assert(sizeof(std::string) == 32, "kInlineString is libstdc++'s small-string capacity");

// A std::string's own buffer, if it has one (longer than its small-string capacity).
std::int64_t string_heap(const std::string& s) noexcept {
  return s.capacity() > Keyspace::kInlineString ? heap_chunk(s.capacity() + 1) : 0;
}

// What an allocation through std::allocate_shared* asks for, found once by asking it: the
// control block's size is the library's business.
template <typename T>
struct RecordingAllocator {
  using value_type = T;
  static inline std::size_t last = 0;
  RecordingAllocator() noexcept = default;
  template <typename U>
  RecordingAllocator(const RecordingAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    last = n * sizeof(T);
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept { std::allocator<T>().deallocate(p, n); }
  bool operator==(const RecordingAllocator&) const noexcept { return true; }
};

// Bytes a blob of capacity c asks malloc for beyond c (control block, alignment).
std::size_t blob_overhead() {
  static const std::size_t overhead = [] {
    const auto probe = std::allocate_shared_for_overwrite<char[]>(RecordingAllocator<char>(), 1);
    return RecordingAllocator<char>::last - 1;
  }();
  return overhead;
}

// Bytes a list's std::make_shared asks malloc for (control block and ListValue).
std::size_t list_allocation() {
  static const std::size_t size = [] {
    const auto probe = std::allocate_shared<Keyspace::ListValue>(RecordingAllocator<Keyspace::ListValue>());
    return RecordingAllocator<Keyspace::ListValue>::last;
  }();
  return size;
}

// A std::deque<std::string>'s blocks and map, as libstdc++ lays them out: blocks of 512 bytes
// (16 strings), one more than the elements fill, and a map of block pointers at least 8 long.
std::int64_t deque_bytes(std::size_t elements) noexcept {
  constexpr std::size_t kPerBlock = 512 / sizeof(std::string);
  const std::size_t blocks = elements / kPerBlock + 1;
  return static_cast<std::int64_t>(blocks) * heap_chunk(512) +
         heap_chunk(sizeof(void*) * std::max<std::size_t>(8, blocks + 2));
}

std::int64_t list_bytes(const Keyspace::ListValue& list, std::int64_t element_heap) noexcept {
  return heap_chunk(list_allocation()) + deque_bytes(list.items.size()) + element_heap;
}

std::int64_t element_heap_of(const Keyspace::List& items) noexcept {
  std::int64_t heap = 0;
  for (const std::string& item : items) heap += string_heap(item);
  return heap;
}

// Redis's growth for a string that is appended to (sdsMakeRoomFor): double it while under
// 1 MiB, then 1 MiB more at a time, so that a run of APPENDs costs linear time.
std::size_t appended_capacity(std::size_t size) noexcept {
  constexpr std::size_t kMiB = 1024 * 1024;
  return size < kMiB ? size * 2 : size + kMiB;
}

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
  account(shard, *it);
  account_tables(shard);  // the bucket array may have grown
  return &*it;
}

void Keyspace::erase(Shard& shard, Node& node) {
  clear_expiry(shard, node);
  discard(shard, node.second.value, node.second.lent);
  report_bytes(shard, -static_cast<std::int64_t>(node.second.bytes));
  auto it = shard.map.find(std::string_view(node.first));
  assert(it != shard.map.end() && &*it == &node);
  shard.map.erase(it);
}

void Keyspace::discard(Shard& shard, Value& value, bool lent) {
  // A value no reply holds is freed with its entry's count; one a reply still holds stays
  // counted, as an orphan, until the reply is done with it. The use counts read here only
  // grow under this shard's lock (a reply gets its reference here), so a count of 1 is final.
  if (auto* blob = std::get_if<Blob>(&value)) {
    if (lent && blob->data.use_count() > 1)
      add_orphan(shard, std::move(blob->data), heap_chunk(blob->capacity + blob_overhead()));
  } else if (auto* list = std::get_if<std::shared_ptr<ListValue>>(&value)) {
    if (*list && list->use_count() > 1) {
      const std::int64_t bytes = list_bytes(**list, (*list)->element_heap);
      add_orphan(shard, std::move(*list), bytes);
    }
  }
  value.emplace<std::string>();
}

void Keyspace::add_orphan(Shard& shard, std::shared_ptr<const void> value, std::int64_t bytes) {
  // Amortized: sweep when the orphans have doubled since the last sweep left them.
  if (shard.orphans.size() >= 2 * std::max<std::size_t>(shard.orphans_swept, 8)) sweep_orphans(shard);
  shard.orphans.push_back({std::move(value), bytes});
  report_bytes(shard, bytes);
  account_tables(shard);
}

void Keyspace::sweep_orphans(Shard& shard) {
  std::vector<Orphan>& orphans = shard.orphans;
  for (std::size_t i = 0; i < orphans.size();) {
    // Only this list holds it: the reply is done, the bytes go (freed here, under the lock).
    if (orphans[i].value.use_count() == 1) {
      report_bytes(shard, -orphans[i].bytes);
      orphans[i] = std::move(orphans.back());
      orphans.pop_back();
    } else {
      ++i;
    }
  }
  shard.orphans_swept = orphans.size();
  if (orphans.empty()) std::vector<Orphan>().swap(orphans);
  account_tables(shard);
}

void Keyspace::set_expiry(Shard& shard, Node& node, std::int64_t at) {
  Entry& entry = node.second;
  entry.expires_at = at;
  if (entry.ttl_index == kNotInTtlIndex) {
    entry.ttl_index = static_cast<std::uint32_t>(shard.with_ttl.size());
    shard.with_ttl.push_back(&node);
    account_tables(shard);
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

std::int64_t Keyspace::entry_bytes(const Node& node) noexcept {
  // The hash node (next pointer, key, entry, cached hash), the key's buffer, the value's.
  constexpr std::int64_t kNode = heap_chunk(sizeof(void*) + sizeof(Map::value_type) + sizeof(std::size_t));
  std::int64_t bytes = kNode + string_heap(node.first);
  const Value& value = node.second.value;
  if (const auto* text = std::get_if<std::string>(&value)) {
    bytes += string_heap(*text);
  } else if (const auto* blob = std::get_if<Blob>(&value)) {
    bytes += heap_chunk(blob->capacity + blob_overhead());
  } else if (const auto& list = std::get<std::shared_ptr<ListValue>>(value)) {
    bytes += list_bytes(*list, list->element_heap);
  }
  return bytes;
}

std::int64_t Keyspace::table_bytes(const Shard& shard) noexcept {
  std::int64_t bytes = 0;
  // libstdc++ keeps a table of one bucket inside the map; larger ones are allocated.
  if (shard.map.bucket_count() > 1) bytes += heap_chunk(shard.map.bucket_count() * sizeof(void*));
  if (shard.with_ttl.capacity() > 0) bytes += heap_chunk(shard.with_ttl.capacity() * sizeof(Node*));
  if (shard.orphans.capacity() > 0) bytes += heap_chunk(shard.orphans.capacity() * sizeof(Orphan));
  return bytes;
}

void Keyspace::account(Shard& shard, Node& node) {
  const std::int64_t bytes = entry_bytes(node);
  const auto counted = static_cast<std::int64_t>(node.second.bytes);
  if (bytes == counted) return;
  node.second.bytes = static_cast<std::size_t>(bytes);
  report_bytes(shard, bytes - counted);
}

void Keyspace::account_tables(Shard& shard) {
  const std::int64_t bytes = table_bytes(shard);
  if (bytes == shard.table_bytes) return;
  report_bytes(shard, bytes - shard.table_bytes);
  shard.table_bytes = bytes;
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

std::size_t Keyspace::recount() const {
  assert(guards_held == 0);
  for (const Shard& shard : shards_) shard.mutex.lock();  // ascending, as every Guard
  std::int64_t total = 0;
  for (const Shard& shard : shards_) {
    total += table_bytes(shard);
    for (const Orphan& orphan : shard.orphans) total += orphan.bytes;
    for (const Node& node : shard.map) {
      // As entry_bytes(), but nothing taken from what was counted along the way.
      constexpr std::int64_t kNode = heap_chunk(sizeof(void*) + sizeof(Map::value_type) + sizeof(std::size_t));
      total += kNode + string_heap(node.first);
      const Value& value = node.second.value;
      if (const auto* text = std::get_if<std::string>(&value)) {
        total += string_heap(*text);
      } else if (const auto* blob = std::get_if<Blob>(&value)) {
        total += heap_chunk(blob->capacity + blob_overhead());
      } else if (const auto& list = std::get<std::shared_ptr<ListValue>>(value)) {
        total += list_bytes(*list, element_heap_of(list->items));
      }
    }
  }
  for (const Shard& shard : shards_) shard.mutex.unlock();
  return static_cast<std::size_t>(total);
}

void Keyspace::sweep_orphans() {
  for (Shard& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    if (!shard.orphans.empty()) sweep_orphans(shard);
  }
}

void Keyspace::flush() {
  assert(guards_held == 0);
  for (Shard& shard : shards_) shard.mutex.lock();  // ascending, as every Guard
  for (Shard& shard : shards_) {
    for (Node& node : shard.map) discard(shard, node.second.value, node.second.lent);
    // Everything goes, the tables too, as Redis frees its dictionaries.
    Map().swap(shard.map);
    std::vector<Node*>().swap(shard.with_ttl);
    std::int64_t orphans = 0;
    for (const Orphan& orphan : shard.orphans) orphans += orphan.bytes;
    shard.table_bytes = table_bytes(shard);
    report_bytes(shard, shard.table_bytes + orphans - shard.bytes.load(std::memory_order_relaxed));
  }
  for (Shard& shard : shards_) shard.mutex.unlock();
}

// --- active expiry -----------------------------------------------------------------------

Keyspace::Sample Keyspace::sample_expired(Shard& shard, std::int64_t now) {
  std::lock_guard lock(shard.mutex);
  if (!shard.orphans.empty()) sweep_orphans(shard);  // replies done with them since last time
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

// --- ListReader --------------------------------------------------------------------------

Keyspace::ListReader::ListReader(std::shared_ptr<ListValue> list) noexcept : list_(std::move(list)) {
  // Under the shard lock, which orders it before any later check of `readers`.
  if (list_) list_->readers.fetch_add(1, std::memory_order_relaxed);
}

Keyspace::ListReader& Keyspace::ListReader::operator=(ListReader&& other) noexcept {
  if (this != &other) {
    release();
    list_ = std::move(other.list_);
  }
  return *this;
}

Keyspace::ListReader::~ListReader() {
  release();
}

void Keyspace::ListReader::release() noexcept {
  if (!list_) return;
  // Release: every read of the elements happens before a writer that sees 0 changes them.
  list_->readers.fetch_sub(1, std::memory_order_release);
  list_.reset();
}

// --- Slot --------------------------------------------------------------------------------

bool Keyspace::Slot::string_is_shareable() const noexcept {
  return node_ && std::holds_alternative<Blob>(node_->second.value);
}

SharedBytes Keyspace::Slot::share_string() {
  assert(string_is_shareable());
  Entry& entry = node_->second;
  const Blob& blob = std::get<Blob>(entry.value);
  entry.lent = true;
  return {blob.data, std::string_view(blob.data.get(), blob.size)};
}

const Keyspace::List* Keyspace::Slot::list() const noexcept {
  if (!node_) return nullptr;
  const auto* list = std::get_if<std::shared_ptr<ListValue>>(&node_->second.value);
  return list ? &(*list)->items : nullptr;
}

Keyspace::ListReader Keyspace::Slot::read_list() {
  assert(list());
  return ListReader(std::get<std::shared_ptr<ListValue>>(node_->second.value));
}

std::optional<std::int64_t> Keyspace::Slot::expires_at() const noexcept {
  if (!node_ || node_->second.expires_at == kNoExpiry) return std::nullopt;
  return node_->second.expires_at;
}

Keyspace::Blob Keyspace::make_blob(std::size_t capacity) {
  return {std::make_shared_for_overwrite<char[]>(capacity), 0, capacity};
}

void Keyspace::Slot::set_string(std::string_view value, bool keep_ttl) {
  if (!node_) node_ = keyspace_.insert(shard_, key_);
  Entry& entry = node_->second;
  if (value.size() <= kInlineString) {
    if (auto* text = std::get_if<std::string>(&entry.value)) {
      // Within the small-string buffer: no allocation, and nothing to count again.
      assert(text->capacity() <= kInlineString);
      text->assign(value);
      if (!keep_ttl) keyspace_.clear_expiry(shard_, *node_);
      return;
    } else {
      keyspace_.discard(shard_, entry.value, entry.lent);
      entry.value.emplace<std::string>(value);
    }
  } else if (auto* blob = std::get_if<Blob>(&entry.value);
             blob && !entry.lent && blob->capacity >= value.size() && blob->capacity / 2 <= value.size()) {
    // The same buffer, when no reply holds it and at most half of it would go unused: a
    // small value must not keep a large value's memory.
    std::memcpy(blob->data.get(), value.data(), value.size());
    blob->size = value.size();
  } else {
    Blob fresh = Keyspace::make_blob(value.size());
    std::memcpy(fresh.data.get(), value.data(), value.size());
    fresh.size = value.size();
    keyspace_.discard(shard_, entry.value, entry.lent);
    entry.value = std::move(fresh);
  }
  entry.lent = false;
  if (!keep_ttl) keyspace_.clear_expiry(shard_, *node_);
  keyspace_.account(shard_, *node_);
}

void Keyspace::Slot::append(std::string_view tail) {
  if (!node_) node_ = keyspace_.insert(shard_, key_);
  Entry& entry = node_->second;
  assert(!std::holds_alternative<std::shared_ptr<ListValue>>(entry.value));
  const std::string_view current = *string();
  const std::size_t size = current.size() + tail.size();
  auto* blob = std::get_if<Blob>(&entry.value);
  if (size <= kInlineString) {
    std::get<std::string>(entry.value).append(tail);
  } else if (blob && !entry.lent && blob->capacity >= size) {
    std::memcpy(blob->data.get() + blob->size, tail.data(), tail.size());
    blob->size = size;
  } else {
    Blob fresh = Keyspace::make_blob(appended_capacity(size));
    std::memcpy(fresh.data.get(), current.data(), current.size());
    std::memcpy(fresh.data.get() + current.size(), tail.data(), tail.size());
    fresh.size = size;
    keyspace_.discard(shard_, entry.value, entry.lent);
    entry.value = std::move(fresh);
    entry.lent = false;
  }
  keyspace_.account(shard_, *node_);
}

Keyspace::ListValue& Keyspace::Slot::writable_list() {
  Entry& entry = node_->second;
  auto& list = std::get<std::shared_ptr<ListValue>>(entry.value);
  // Acquire: pairs with a reader's release, so its reads of the elements are over before they
  // change. With a reader still at it, change a copy; the reader keeps the old list.
  if (list->readers.load(std::memory_order_acquire) != 0) {
    auto copy = std::make_shared<ListValue>();
    copy->items = list->items;
    copy->element_heap = element_heap_of(copy->items);
    keyspace_.discard(shard_, entry.value, false);
    entry.value = std::move(copy);
  }
  return *std::get<std::shared_ptr<ListValue>>(entry.value);
}

void Keyspace::Slot::push(std::string_view value, End end) {
  if (!node_) {
    node_ = keyspace_.insert(shard_, key_);
    node_->second.value = std::make_shared<ListValue>();
  }
  assert(list());
  ListValue& list = writable_list();
  const std::string& added = end == End::front ? list.items.emplace_front(value) : list.items.emplace_back(value);
  list.element_heap += string_heap(added);
  keyspace_.account(shard_, *node_);
}

std::string Keyspace::Slot::pop(End end) {
  assert(list() && !list()->empty());
  ListValue& list = writable_list();
  std::string& taken = end == End::front ? list.items.front() : list.items.back();
  list.element_heap -= string_heap(taken);
  std::string value = std::move(taken);
  if (end == End::front) {
    list.items.pop_front();
  } else {
    list.items.pop_back();
  }
  if (list.items.empty()) {
    erase();  // Redis keeps no empty lists
  } else {
    keyspace_.account(shard_, *node_);
  }
  return value;
}

Keyspace::ListReader Keyspace::Slot::pop_many(End end, std::size_t count) {
  assert(list() && !list()->empty() && count > 0);
  ListValue& list = writable_list();
  auto popped = std::make_shared<ListValue>();
  count = std::min(count, list.items.size());
  for (std::size_t i = 0; i < count; ++i) {
    std::string& taken = end == End::front ? list.items.front() : list.items.back();
    const std::int64_t heap = string_heap(taken);
    list.element_heap -= heap;
    popped->element_heap += heap;
    popped->items.push_back(std::move(taken));
    if (end == End::front) {
      list.items.pop_front();
    } else {
      list.items.pop_back();
    }
  }
  ListReader reader(popped);
  const std::int64_t bytes = list_bytes(*popped, popped->element_heap);
  keyspace_.add_orphan(shard_, std::move(popped), bytes);
  if (list.items.empty()) {
    erase();
  } else {
    keyspace_.account(shard_, *node_);
  }
  return reader;
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
