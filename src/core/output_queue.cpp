#include "core/output_queue.hpp"

#include <algorithm>
#include <cassert>
#include <utility>

#include "core/poison.hpp"

namespace iomux::detail {
namespace {

// Does `s` keep its characters inside the object (the small-string buffer)? Such bytes move
// when the segment moves, so they cannot back a send in flight.
bool stored_inline(const std::string& s) noexcept {
  const auto* object = reinterpret_cast<const char*>(&s);
  return s.data() >= object && s.data() < object + sizeof s;
}

}  // namespace

OutputQueue::~OutputQueue() {
  if constexpr (kPoisonFreed)
    for (std::size_t i = head_; i < segments_.size(); ++i) release(segments_[i]);
}

std::size_t OutputQueue::Segment::storage() const noexcept {
  switch (kind) {
    case Kind::copy:
      return copy.capacity();
    case Kind::owned_string:
      return string.capacity();
    case Kind::owned_array:
      return size;      // what is left; the whole array is freed at the end
    case Kind::shared:  // counted per owner (hold_shared)
    default:
      return 0;
  }
}

OutputQueue::Segment& OutputQueue::push(Kind kind) {
  Segment& s = segments_.emplace_back();
  s.kind = kind;
  return s;
}

OutputQueue::Segment* OutputQueue::appendable_copy() noexcept {
  if (empty()) return nullptr;
  Segment& tail = segments_.back();
  const std::size_t tail_index = segments_.size() - 1 - head_;
  if (tail.kind != Kind::copy || tail_index < frozen_) return nullptr;
  return &tail;
}

void OutputQueue::append_copy(std::string_view bytes) {
  if (bytes.empty()) return;
  Segment* tail = appendable_copy();
  if (!tail) tail = &push(Kind::copy);
  held_ -= tail->copy.capacity();
  tail->copy.append(bytes);
  held_ += tail->copy.capacity();
  bytes_ += bytes.size();
}

void OutputQueue::prepend_copy(std::string_view bytes) {
  if (bytes.empty()) return;
  if (head_ == 0) {
    segments_.emplace(segments_.begin());
  } else {
    --head_;
  }
  Segment& s = segments_[head_];
  s = Segment{};
  s.kind = Kind::copy;
  s.copy.append(bytes);
  held_ += s.copy.capacity();
  bytes_ += bytes.size();
}

void OutputQueue::append_stable(std::string_view bytes) {
  if (bytes.empty()) return;
  Segment& s = push(Kind::stable);
  s.data = bytes.data();
  s.size = bytes.size();
  bytes_ += bytes.size();
}

void OutputQueue::append_transient(std::string_view bytes) {
  if (bytes.empty()) return;
  Segment& s = push(Kind::transient);
  s.data = bytes.data();
  s.size = bytes.size();
  bytes_ += bytes.size();
  ++transients_;
}

void OutputQueue::append_owned(std::string&& bytes) {
  if (bytes.empty()) return;
  if (stored_inline(bytes)) {
    append_copy(bytes);
    return;
  }
  Segment& s = push(Kind::owned_string);
  s.string = std::move(bytes);
  s.data = s.string.data();
  s.size = s.string.size();
  held_ += s.string.capacity();
  bytes_ += s.size;
}

void OutputQueue::append_owned(std::unique_ptr<char[]> bytes, std::size_t size) {
  if (size == 0) return;
  Segment& s = push(Kind::owned_array);
  s.array = std::move(bytes);
  s.data = s.array.get();
  s.size = size;
  held_ += size;
  bytes_ += size;
}

void OutputQueue::append_shared(std::shared_ptr<const void> owner, std::string_view bytes) {
  if (bytes.empty()) return;
  Segment& s = push(Kind::shared);
  s.owner = std::move(owner);
  s.data = bytes.data();
  s.size = bytes.size();
  bytes_ += bytes.size();
  hold_shared(s);
}

void OutputQueue::hold_shared(const Segment& s) {
  if (!shared_) shared_ = std::make_unique<std::unordered_map<const void*, SharedRef>>();
  SharedRef& ref = (*shared_)[s.owner.get()];
  if (ref.segments++ == 0) {
    ref.counted = s.size;
    held_ += s.size;
  }
}

void OutputQueue::drop_shared(const Segment& s) noexcept {
  auto it = shared_->find(s.owner.get());
  assert(it != shared_->end());
  if (--it->second.segments == 0) {
    held_ -= it->second.counted;
    shared_->erase(it);
  }
}

void OutputQueue::release(Segment& s) noexcept {
  switch (s.kind) {
    case Kind::copy:
      poison(s.copy.peek(), s.copy.readable(), kPoisonOutput);
      break;
    case Kind::owned_string:
      poison(s.string.data(), s.string.size(), kPoisonOutput);
      break;
    case Kind::owned_array:
      poison(s.data, s.size, kPoisonOutput);
      break;
    case Kind::shared:
      drop_shared(s);  // not ours to poison: the owner may be referenced elsewhere
      break;
    default:
      break;
  }
  held_ -= s.storage();
  if (s.kind == Kind::deferred) --unfilled_;
  if (s.kind == Kind::transient) --transients_;
  s = Segment{};
}

std::uint64_t OutputQueue::append_deferred() {
  Segment& s = push(Kind::deferred);
  s.deferred_id = next_deferred_++;
  ++unfilled_;
  return s.deferred_id;
}

bool OutputQueue::fill_deferred(std::uint64_t id, std::string&& bytes) {
  // Linear: at most max_deferred places are unfilled, and the one filled is usually near the
  // front.
  auto it = std::find_if(segments_.begin() + static_cast<std::ptrdiff_t>(head_), segments_.end(),
                         [id](const Segment& s) { return s.kind == Kind::deferred && s.deferred_id == id; });
  if (it == segments_.end()) return false;
  Segment& s = *it;
  --unfilled_;
  if (bytes.empty() || stored_inline(bytes)) {
    s.kind = Kind::copy;
    s.copy.append(bytes);
    held_ += s.copy.capacity();
  } else {
    s.kind = Kind::owned_string;
    s.string = std::move(bytes);
    s.data = s.string.data();
    s.size = s.string.size();
    held_ += s.string.capacity();
  }
  bytes_ += s.unsent().size();
  // A filled place that holds nothing is spent; at the front it can go at once.
  while (!empty() && segments_[head_].kind != Kind::deferred && segments_[head_].unsent().empty()) pop_front();
  return true;
}

void OutputQueue::persist_transients() {
  if (transients_ == 0) return;
  transients_ = 0;
  for (std::size_t i = head_; i < segments_.size(); ++i) {
    Segment& s = segments_[i];
    if (s.kind != Kind::transient) continue;
    s.kind = Kind::copy;
    s.copy.append(std::string_view(s.data, s.size));
    held_ += s.copy.capacity();
    s.data = nullptr;
    s.size = 0;
  }
}

std::string_view OutputQueue::lone_transient() const noexcept {
  if (segments_.size() - head_ != 1 || segments_[head_].kind != Kind::transient) return {};
  return segments_[head_].unsent();
}

void OutputQueue::drop_lone_transient() noexcept {
  assert(!lone_transient().empty());
  bytes_ -= segments_[head_].size;
  pop_front();
}

bool OutputQueue::blocked() const noexcept {
  return !empty() && segments_[head_].kind == Kind::deferred;
}

std::size_t OutputQueue::gather(std::span<iovec> iov) const noexcept {
  std::size_t n = 0;
  for (std::size_t i = head_; i < segments_.size() && n < iov.size(); ++i) {
    const Segment& s = segments_[i];
    if (s.kind == Kind::deferred) break;
    const std::string_view bytes = s.unsent();
    if (bytes.empty()) continue;
    iov[n++] = {const_cast<char*>(bytes.data()), bytes.size()};
  }
  return n;
}

void OutputQueue::consume(std::size_t n) noexcept {
  assert(n <= bytes_);
  bytes_ -= n;
  while (n > 0 && !empty()) {
    Segment& s = segments_[head_];
    assert(s.kind != Kind::deferred);
    const std::size_t left = s.unsent().size();
    if (n < left) {
      if (s.kind == Kind::copy) {
        s.copy.consume(n);
      } else {
        s.data += n;
        s.size -= n;
        if (s.kind == Kind::owned_array) held_ -= n;
      }
      return;
    }
    n -= left;
    pop_front();
  }
  // Filled-but-empty places at the front are spent too.
  while (!empty() && segments_[head_].kind != Kind::deferred && segments_[head_].unsent().empty()) pop_front();
}

void OutputQueue::pop_front() noexcept {
  release(segments_[head_]);
  ++head_;
  if (frozen_ > 0) --frozen_;
  if (head_ == segments_.size()) {
    segments_.clear();
    head_ = 0;
  } else if (head_ >= 16 && head_ * 2 >= segments_.size()) {
    // Reclaim the spent prefix now and then, so a long-lived backlog does not only grow.
    segments_.erase(segments_.begin(), segments_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
}

void OutputQueue::clear() noexcept {
  // Everything behind the frozen front goes; the front stays for the send in flight, which
  // references nothing past the first deferred place (gather() stops there).
  std::size_t keep = head_;
  while (keep < head_ + frozen_ && segments_[keep].kind != Kind::deferred) {
    assert(segments_[keep].kind != Kind::transient);  // persisted before any send
    ++keep;
  }
  for (std::size_t i = keep; i < segments_.size(); ++i) release(segments_[i]);
  segments_.resize(keep);
  segments_.erase(segments_.begin(), segments_.begin() + static_cast<std::ptrdiff_t>(head_));
  frozen_ = keep - head_;
  head_ = 0;
  bytes_ = unfilled_ = transients_ = 0;
}

void OutputQueue::release_if_empty() noexcept {
  if (!empty()) return;
  std::vector<Segment>().swap(segments_);
  head_ = 0;
}

}  // namespace iomux::detail
