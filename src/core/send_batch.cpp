#include "core/send_batch.hpp"

#include <cstring>

#include "core/output_queue.hpp"

namespace iomux::detail {

SendBatch::SendBatch() : staging_(std::make_unique_for_overwrite<char[]>(kStagingSize)) {}

bool SendBatch::add_copy(std::string_view bytes) noexcept {
  if (bytes.empty()) return true;
  if (kStagingSize - staged_ < bytes.size()) return false;
  char* at = staging_.get() + staged_;
  std::memcpy(at, bytes.data(), bytes.size());
  staged_ += bytes.size();
  bytes_ += bytes.size();
  // Right after the previous copy: one iovec for both.
  if (count_ > 0 && kind_[count_ - 1] == Kind::staged &&
      static_cast<char*>(iov_[count_ - 1].iov_base) + iov_[count_ - 1].iov_len == at) {
    iov_[count_ - 1].iov_len += bytes.size();
    return true;
  }
  if (count_ == kMaxIov) {
    staged_ -= bytes.size();
    bytes_ -= bytes.size();
    return false;
  }
  iov_[count_] = {at, bytes.size()};
  kind_[count_] = Kind::staged;
  ++count_;
  return true;
}

bool SendBatch::add_owned(std::string&& bytes) {
  if (bytes.empty()) return true;
  if (count_ == kMaxIov) return false;
  if (bytes.size() < sizeof(std::string)) return add_copy(bytes);  // short: copying is cheaper
  owner_[count_] = static_cast<std::uint16_t>(strings_.size());
  strings_.push_back(std::move(bytes));
  owns_ = true;
  const std::string& s = strings_.back();
  iov_[count_] = {const_cast<char*>(s.data()), s.size()};
  kind_[count_] = Kind::owned_string;
  ++count_;
  bytes_ += s.size();
  return true;
}

bool SendBatch::add_owned(std::unique_ptr<char[]>& bytes, std::size_t size) {
  if (size == 0) return true;
  if (count_ == kMaxIov) return false;
  owner_[count_] = static_cast<std::uint16_t>(arrays_.size());
  iov_[count_] = {bytes.get(), size};
  arrays_.push_back(std::move(bytes));
  owns_ = true;
  kind_[count_] = Kind::owned_array;
  ++count_;
  bytes_ += size;
  return true;
}

bool SendBatch::add_shared(std::shared_ptr<const void>& owner, std::string_view bytes) {
  if (bytes.empty()) return true;
  if (count_ == kMaxIov) return false;
  owner_[count_] = static_cast<std::uint16_t>(shared_.size());
  shared_.push_back(std::move(owner));
  owns_ = true;
  iov_[count_] = {const_cast<char*>(bytes.data()), bytes.size()};
  kind_[count_] = Kind::shared;
  ++count_;
  bytes_ += bytes.size();
  return true;
}

void SendBatch::spill(std::size_t written, OutputQueue& queue) {
  for (std::size_t i = 0; i < count_; ++i) {
    const std::size_t len = iov_[i].iov_len;
    if (written >= len) {
      written -= len;
      continue;
    }
    const std::string_view rest(static_cast<const char*>(iov_[i].iov_base) + written, len - written);
    const bool whole = written == 0;
    written = 0;
    switch (kind_[i]) {
      case Kind::stable:
        queue.append_stable(rest);
        break;
      case Kind::transient:
      case Kind::staged:
        queue.append_copy(rest);
        break;
      case Kind::owned_string:
        if (whole) {
          queue.append_owned(std::move(strings_[owner_[i]]));
          kind_[i] = Kind::stable;  // the queue's now: not to be poisoned below
        } else {
          queue.append_copy(rest);
        }
        break;
      case Kind::owned_array:
        if (whole) {
          queue.append_owned(std::move(arrays_[owner_[i]]), len);
          kind_[i] = Kind::stable;
        } else {
          queue.append_copy(rest);
        }
        break;
      case Kind::shared:
        queue.append_shared(std::move(shared_[owner_[i]]), rest);
        break;
    }
  }
  clear();
}

void SendBatch::poison_storage() noexcept {
  for (std::size_t i = 0; i < count_; ++i)
    if (kind_[i] == Kind::staged || kind_[i] == Kind::owned_string || kind_[i] == Kind::owned_array)
      poison(iov_[i].iov_base, iov_[i].iov_len, kPoisonOutput);
}

void SendBatch::drop_owned() noexcept {
  strings_.clear();
  arrays_.clear();
  shared_.clear();
  owns_ = false;
}

}  // namespace iomux::detail
