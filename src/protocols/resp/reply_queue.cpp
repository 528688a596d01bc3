#include "protocols/resp/reply_queue.hpp"

namespace iomux::resp {

void ReplyQueue::reference(std::shared_ptr<const void> owner, std::string_view bytes) {
  if (bytes.empty()) return;
  refs_.push_back({text_.size(), std::move(owner), bytes});
  ref_bytes_ += bytes.size();
  text_only_ = false;
}

void ReplyQueue::produce(std::size_t limit) {
  // Each part adds at least one byte, so this ends.
  while (producer_ && size() < limit)
    if (producer_->produce(*this, limit - size())) producer_.reset();
  text_only_ = !producer_ && refs_.empty() && head_ == 0;
}

void ReplyQueue::compact() {
  if (head_ == text_.size() && next_ref_ == refs_.size()) {
    text_.clear();
    head_ = 0;
    refs_.clear();
    next_ref_ = 0;
    ref_taken_ = 0;
    // What a long reply needed goes with it: an idle connection keeps a few KiB at most.
    if (text_.capacity() > kKeptText) std::string().swap(text_);
    if (refs_.capacity() > 16) std::vector<Reference>().swap(refs_);
    text_only_ = !producer_;
    return;
  }
  // Only once the taken front is half of what is held, so that each byte moves at most about
  // once however the queue is taken.
  text_only_ = false;  // some of the text is taken, or references wait
  const bool text_front_large = head_ > 0 && head_ * 2 >= text_.size();
  const bool refs_front_large = next_ref_ > 0 && next_ref_ * 2 >= refs_.size();
  if (!text_front_large && !refs_front_large) return;
  // Every reference left goes out after the text taken so far (take() stops the text at the
  // next reference), so its position stays within what is kept.
  for (std::size_t i = next_ref_; i < refs_.size(); ++i) refs_[i].at -= head_;
  refs_.erase(refs_.begin(), refs_.begin() + static_cast<std::ptrdiff_t>(next_ref_));
  next_ref_ = 0;
  text_.erase(0, head_);
  head_ = 0;
  text_only_ = refs_.empty() && !producer_;
}

}  // namespace iomux::resp
