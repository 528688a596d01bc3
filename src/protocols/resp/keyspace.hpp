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
// Memory: the keyspace counts what it holds as the allocator sees it: every allocation's
// capacity rounded to malloc's chunks (hash nodes, keys, values, list blocks, the tables), not
// the sizes of the values last written. A value given to a reply (Slot::share_string(),
// Slot::read_list()) is never changed in place afterwards, and when the keyspace lets go of it
// while a reply still holds it, its bytes stay counted until the reply is done with it
// ("orphans", freed by the keyspace once it holds the last reference). Past max_memory,
// commands that add data are to be refused (over_memory_limit()); Redis does the same with
// maxmemory and its noeviction policy.
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

// A value's bytes as a reply may hold them after the shard lock is gone: `owner` keeps
// `bytes` alive and unchanged.
struct SharedBytes {
  std::shared_ptr<const void> owner;
  std::string_view bytes;
};

class Keyspace {
 public:
  using List = std::deque<std::string>;
  enum class End : std::uint8_t { front, back };

  // A list as the keyspace keeps it, shareable with replies that read it outside the shard lock
  // (a long LRANGE, elements popped on their way out).
  struct ListValue {
    List items;
    std::int64_t element_heap = 0;  // heap bytes of the elements' own buffers (long elements)
    // Replies reading `items` without the lock. While there are any, a change to the list is
    // made to a copy (the readers keep the old one). Taken under the shard lock, released with
    // release ordering by the reader when it is done, checked with acquire ordering.
    std::atomic<std::uint32_t> readers{0};
  };

  // A list's elements as a reply reads them after the shard lock is gone: unchanged while this
  // lives. Move-only.
  class ListReader {
   public:
    ListReader() noexcept = default;
    explicit ListReader(std::shared_ptr<ListValue> list) noexcept;
    ListReader(ListReader&& other) noexcept = default;
    ListReader& operator=(ListReader&& other) noexcept;
    ListReader(const ListReader&) = delete;
    ListReader& operator=(const ListReader&) = delete;
    ~ListReader();
    [[nodiscard]] const List& items() const noexcept { return list_->items; }
    explicit operator bool() const noexcept { return static_cast<bool>(list_); }

   private:
    void release() noexcept;
    std::shared_ptr<ListValue> list_;
  };

  // Values this short live inline in their entry (std::string's own buffer, libstdc++'s
  // small-string capacity); longer ones in a shared buffer that replies may reference.
  static constexpr std::size_t kInlineString = 15;

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

  // The bytes held, summed over the shards now (orphans included).
  [[nodiscard]] std::size_t used_memory() const noexcept;
  // used_memory() computed again from scratch, every entry and table measured as it is now,
  // under all the shard locks: what used_memory() must equal. For tests and the fuzzer.
  [[nodiscard]] std::size_t recount() const;
  // Frees the orphans no reply holds any more (the expiry thread does it every cycle).
  void sweep_orphans();
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
  // A string longer than kInlineString: one allocation holding the control block and the
  // bytes, shared with the replies that send them.
  struct Blob {
    std::shared_ptr<char[]> data;
    std::size_t size = 0;
    std::size_t capacity = 0;
  };
  using Value = std::variant<std::string, Blob, std::shared_ptr<ListValue>>;
  struct Entry {
    Value value;
    std::int64_t expires_at = kNoExpiry;       // on the keyspace clock
    std::size_t bytes = 0;                     // what this entry adds to used_memory()
    std::uint32_t ttl_index = kNotInTtlIndex;  // position in its shard's `with_ttl`
    // The blob was given to a reply: it must not change any more (a change replaces it).
    bool lent = false;
  };
  using Map = std::unordered_map<std::string, Entry, KeyHash, KeyEqual>;
  using Node = Map::value_type;  // stays put in memory until erased, unlike Map iterators

  // A value the keyspace let go of while a reply still held it: counted until freed.
  struct Orphan {
    std::shared_ptr<const void> value;
    std::int64_t bytes;
  };

  // alignas: shards are locked by different threads; they must not share cache lines.
  struct alignas(64) Shard {
    mutable std::mutex mutex;
    Map map;
    std::vector<Node*> with_ttl;  // the keys that have a TTL, for active expiry to sample
    std::vector<Orphan> orphans;
    std::size_t orphans_swept = 0;              // orphans left by the last sweep
    std::int64_t table_bytes = 0;               // the bucket array and the vectors above, as counted
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
  // Lets go of a value (replaced or erased): an orphan if a reply still holds it.
  void discard(Shard& shard, Value& value, bool lent);
  void add_orphan(Shard& shard, std::shared_ptr<const void> value, std::int64_t bytes);
  void sweep_orphans(Shard& shard);
  // Sets the entry's count to what it holds now / the shard's tables' count to theirs.
  void account(Shard& shard, Node& node);
  void account_tables(Shard& shard);
  static std::int64_t entry_bytes(const Node& node) noexcept;
  static Blob make_blob(std::size_t capacity);
  static std::int64_t table_bytes(const Shard& shard) noexcept;
  void set_expiry(Shard& shard, Node& node, std::int64_t at);
  void clear_expiry(Shard& shard, Node& node);
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
  // The bytes of the string the key holds; nullopt if it holds nothing or a list. Valid while
  // the guard lives and the key is not changed.
  [[nodiscard]] std::optional<std::string_view> string() const noexcept;
  // Whether the key holds a string that share_string() can give without a copy (one longer
  // than kInlineString).
  [[nodiscard]] bool string_is_shareable() const noexcept;
  // The string's bytes for a reply to send after the guard is gone, without a copy. From now
  // on a change to the key replaces its value instead of changing it. Precondition:
  // string_is_shareable().
  [[nodiscard]] SharedBytes share_string();
  // The list the key holds; nullptr if it holds nothing or a string.
  [[nodiscard]] const List* list() const noexcept;
  // The list for a reply to read after the guard is gone. Precondition: a list.
  [[nodiscard]] ListReader read_list();
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
  // Removes `count` elements (at most the list's length) from one end into a list of their
  // own, in the order they were popped, for a reply to send: counted by the keyspace until
  // the reply is done. The key goes with its last element. Precondition: a list, count > 0.
  ListReader pop_many(End end, std::size_t count);
  // Precondition for these three: exists().
  void set_expires_at(std::int64_t at);
  bool persist();  // drops the TTL; false if there was none
  void erase();

 private:
  friend class Keyspace::Guard;
  Slot(Keyspace& keyspace, Shard& shard, std::string_view key, Node* node) noexcept
      : keyspace_(keyspace), shard_(shard), key_(key), node_(node) {}
  // The list, ready to change: copied first if a reply is reading it.
  ListValue& writable_list();

  Keyspace& keyspace_;
  Shard& shard_;
  std::string_view key_;
  Node* node_;
};

// Inline: every GET, MGET and APPEND asks.
inline std::optional<std::string_view> Keyspace::Slot::string() const noexcept {
  if (!node_) return std::nullopt;
  const Value& value = node_->second.value;
  if (const auto* text = std::get_if<std::string>(&value)) return std::string_view(*text);
  if (const auto* blob = std::get_if<Blob>(&value)) return std::string_view(blob->data.get(), blob->size);
  return std::nullopt;
}

}  // namespace iomux::resp
