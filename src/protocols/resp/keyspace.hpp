// The data every connection shares: strings and lists by key, with TTLs and a memory bound.
//
// Thread rule: every public method is safe from any thread. Keys are spread over kShards
// shards by hash, each a mutex and a hash map, so server threads working on different keys
// rarely wait for each other, and every operation on one key happens under that key's shard
// lock: operations on a key are linearizable. A command touching several keys (MSET, MGET,
// DEL, EXISTS) locks all their shards first, always in ascending shard order so that two such
// commands cannot deadlock, which also makes MSET atomic.
//
// Use: lock the keys, then read and change them through Slots while the Guard lives.
//
//   Keyspace::Guard guard = keyspace.lock(key);
//   Keyspace::Slot slot = guard.slot(key);
//   if (const std::string* value = slot.string()) ...
//   slot.set_string("v");
//
// Expiry works as in Redis: a key past its TTL is removed when it is next looked up, and an
// active expiry thread (owned here, ticking every 100 ms) samples keys with a TTL to remove
// those nobody looks up. Times are milliseconds of a monotonic clock, injectable for tests.
//
// Memory: the keyspace counts the bytes it holds (keys, values and a per-entry overhead,
// an approximation of the allocator's view). Past max_memory, commands that add data are to
// be refused (over_memory_limit()); Redis does the same with maxmemory and its noeviction
// policy.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

namespace iomux::resp {

struct KeyspaceOptions {
  // Bytes (as used_memory() counts them) past which commands that add data are refused.
  // Redis's default is no bound; a server sharing its machine needs one, and 1 GiB is a
  // cache's worth without being a surprise on a small box. 0: no bound.
  std::size_t max_memory = std::size_t{1} << 30;
  // Run the active expiry thread. Off for tests and fuzzing, which call
  // active_expire_cycle() themselves.
  bool active_expiry = true;
  // Milliseconds of a monotonic clock; empty: std::chrono::steady_clock.
  std::function<std::chrono::milliseconds()> clock;
};

class Keyspace {
 public:
  using List = std::deque<std::string>;
  enum class End : std::uint8_t { front, back };

  static constexpr std::size_t kShards = 64;                      // one bit each in a Guard's 64-bit shard mask
  static constexpr std::size_t kExpirySample = 20;                // Redis's keys per sample
  static constexpr std::chrono::milliseconds kExpiryPeriod{100};  // Redis's hz 10
  // An active expiry cycle stops after this long (Redis: 25% of the period), so a burst of
  // expired keys cannot hold shards locked for long.
  static constexpr std::chrono::milliseconds kExpiryBudget{25};

  class Slot;
  class Guard;

  explicit Keyspace(KeyspaceOptions options = {});
  ~Keyspace();  // stops the expiry thread
  Keyspace(const Keyspace&) = delete;
  Keyspace& operator=(const Keyspace&) = delete;

  // Locks the shard of `key` / of every step-th key of `keys` (MSET: keys and values
  // alternate), in ascending shard order. Not reentrant: a thread holding a Guard must not
  // take another.
  [[nodiscard]] Guard lock(std::string_view key);
  [[nodiscard]] Guard lock(std::span<const std::string_view> keys, std::size_t step = 1);

  // Now on the keyspace's clock, in milliseconds: the time base of every TTL.
  [[nodiscard]] std::int64_t now_ms() const;

  // The bytes held, summed over the shards now.
  [[nodiscard]] std::size_t used_memory() const noexcept;
  [[nodiscard]] std::size_t max_memory() const noexcept { return max_memory_; }
  // Whether commands that add data must be refused. Cheap (one relaxed load): it reads a
  // total the shards update in steps of at most 1/16 of max_memory / kShards, so it may lag
  // used_memory() by up to 1/16 of max_memory.
  [[nodiscard]] bool over_memory_limit() const noexcept {
    return max_memory_ != 0 && used_estimate_.load(std::memory_order_relaxed) > static_cast<std::int64_t>(max_memory_);
  }

  struct Counts {
    std::size_t keys = 0;     // including expired keys not yet removed, as Redis's DBSIZE
    std::size_t expires = 0;  // keys with a TTL
  };
  [[nodiscard]] Counts counts() const;

  // Removes every key (FLUSHALL / FLUSHDB), atomically.
  void flush();

  // One round of active expiry over the shards: in each, sample kExpirySample keys with a TTL
  // and remove the expired ones, again while more than a quarter of a sample had expired, until
  // kExpiryBudget has passed. Returns how many keys it removed. Called by the expiry thread
  // every kExpiryPeriod; one caller at a time.
  std::size_t active_expire_cycle();

 private:
  static constexpr std::int64_t kNoExpiry = INT64_MIN;
  static constexpr std::uint32_t kNotInTtlIndex = UINT32_MAX;

  // A key with its hash, computed once per command: the shard is chosen by it and the map
  // looks the key up by it.
  struct HashedKey {
    std::string_view key;
    std::size_t hash;
  };
  struct KeyHash {
    using is_transparent = void;
    // Not noexcept, on purpose: libstdc++ then keeps each key's hash in its node (it does not
    // for a "fast" nothrow hasher), so lookups compare hashes first and never rehash stored
    // keys while walking a bucket.
    std::size_t operator()(std::string_view key) const { return std::hash<std::string_view>{}(key); }
    std::size_t operator()(const HashedKey& key) const noexcept { return key.hash; }
  };
  struct KeyEqual {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const noexcept { return a == b; }
    bool operator()(const HashedKey& a, std::string_view b) const noexcept { return a.key == b; }
    bool operator()(std::string_view a, const HashedKey& b) const noexcept { return a == b.key; }
  };
  struct Entry {
    std::variant<std::string, std::unique_ptr<List>> value;
    std::int64_t expires_at = kNoExpiry;       // on the keyspace clock
    std::size_t bytes = 0;                     // what this entry adds to used_memory()
    std::uint32_t ttl_index = kNotInTtlIndex;  // position in its shard's `with_ttl`
  };
  using Map = std::unordered_map<std::string, Entry, KeyHash, KeyEqual>;
  using Node = Map::value_type;  // stays put in memory until erased, unlike Map iterators

  // alignas: shards are locked by different threads; they must not share cache lines.
  struct alignas(64) Shard {
    mutable std::mutex mutex;
    Map map;
    std::vector<Node*> with_ttl;                // the keys that have a TTL, for active expiry to sample
    std::atomic<std::int64_t> bytes{0};         // written under `mutex`, read by used_memory()
    std::int64_t unreported = 0;                // bytes not yet added to used_estimate_
    std::uint64_t random = 0x9e3779b97f4a7c15;  // xorshift state for sampling
  };
  struct Sample {
    std::size_t sampled = 0;
    std::size_t expired = 0;
  };

  static std::size_t shard_index(std::size_t hash) noexcept { return hash >> (64 - 6); }
  static HashedKey hashed(std::string_view key) noexcept { return {key, std::hash<std::string_view>{}(key)}; }
  Node* find_live(Shard& shard, const HashedKey& key);
  Node* insert(Shard& shard, std::string_view key);
  void erase(Shard& shard, Node& node);
  void set_expiry(Shard& shard, Node& node, std::int64_t at);
  void clear_expiry(Shard& shard, Node& node);
  void adjust_bytes(Shard& shard, Entry& entry, std::int64_t delta);
  void report_bytes(Shard& shard, std::int64_t delta);
  Sample sample_expired(Shard& shard, std::int64_t now);
  void run_active_expiry(std::stop_token stop);

  std::function<std::chrono::milliseconds()> clock_;
  const std::size_t max_memory_;
  const std::int64_t report_step_;  // a shard adds to used_estimate_ in steps this large
  std::atomic<std::int64_t> used_estimate_{0};
  std::array<Shard, kShards> shards_;
  std::size_t expiry_cursor_ = 0;  // the shard the next active expiry cycle starts with

  // Last: the thread must stop before the shards it works on are destroyed.
  std::mutex expiry_mutex_;
  std::condition_variable_any expiry_wakeup_;
  std::jthread expiry_thread_;

  friend class Slot;
  friend class Guard;
};

// Holds the shard locks of some keys; unlocks them when destroyed.
class Keyspace::Guard {
 public:
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;
  ~Guard();

  // The key's entry, or its place if it does not exist (an expired key is removed first).
  // The key's shard must be one this guard holds. A Slot is valid while the guard lives and
  // no other Slot of the same key changes the key.
  [[nodiscard]] Slot slot(std::string_view key);

 private:
  friend class Keyspace;
  Guard(Keyspace& keyspace, std::uint64_t shard_mask, std::optional<HashedKey> key);

  Keyspace& keyspace_;
  std::uint64_t shard_mask_;
  // The key of a single-key guard and its hash, so that slot(key) need not hash it again.
  std::optional<HashedKey> key_;
};

// One key's entry under its shard lock: read it, change it. Every change keeps the memory
// count and the TTL index right; which changes drop a TTL is the caller's (the command's) call.
class Keyspace::Slot {
 public:
  [[nodiscard]] bool exists() const noexcept { return node_ != nullptr; }
  // The value if the key holds a string / a list; nullptr if it holds nothing or the other.
  [[nodiscard]] const std::string* string() const noexcept;
  [[nodiscard]] const List* list() const noexcept;
  // Absolute expiry on the keyspace clock, if the key has a TTL.
  [[nodiscard]] std::optional<std::int64_t> expires_at() const noexcept;

  // Makes the key hold `value`, whatever it held, keeping its TTL or not.
  void set_string(std::string_view value, bool keep_ttl);
  // Appends to the string the key holds, or creates it. Precondition: not a list.
  void append(std::string_view tail);
  // Adds `value` at one end of the list the key holds, or creates it. Precondition: not a string.
  void push(std::string_view value, End end);
  // Removes and returns the element at one end; the key goes with its last element.
  // Precondition: a list.
  std::string pop(End end);
  // Precondition for these three: exists().
  void set_expires_at(std::int64_t at);
  bool persist();  // drops the TTL; false if there was none
  void erase();

 private:
  friend class Keyspace::Guard;
  Slot(Keyspace& keyspace, Shard& shard, std::string_view key, Node* node) noexcept
      : keyspace_(keyspace), shard_(shard), key_(key), node_(node) {}

  Keyspace& keyspace_;
  Shard& shard_;
  std::string_view key_;
  Node* node_;
};

}  // namespace iomux::resp
