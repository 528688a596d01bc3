/* llhttp as Debian's node-llhttp ships it: llhttp.c (the state machine llparse generated), api.c
 * and http.c (the glue it calls for every callback and at the end of a head), unmodified, compiled
 * as one translation unit. Compiled apart, every callback point of the state machine is a call
 * into api.c, which then calls the user's callback or returns for an unset one: a dozen calls
 * per request that the compiler cannot inline across files. Together it can (callgrind, epoll,
 * wrk plain: 2,143 instructions per request apart, 1,919 together).
 *
 * llhttp.c declares the glue with `const unsigned char*` arguments and api.c and http.c define
 * it with `const char*`, which one translation unit does not accept: api.c's and http.c's
 * definitions are renamed (_glue), and the names llhttp.c calls are defined here to forward to
 * them, with its own signature. A llhttp that adds a callback does not compile here until the
 * callback is added to both lists. Built strict (LLHTTP_STRICT_MODE=1, set for the library). */
#include <llhttp.c>

#define llhttp__after_headers_complete llhttp__after_headers_complete_glue
#define llhttp__after_message_complete llhttp__after_message_complete_glue
#define llhttp__before_headers_complete llhttp__before_headers_complete_glue
#define llhttp__on_body llhttp__on_body_glue
#define llhttp__on_chunk_complete llhttp__on_chunk_complete_glue
#define llhttp__on_chunk_extension_name llhttp__on_chunk_extension_name_glue
#define llhttp__on_chunk_extension_name_complete llhttp__on_chunk_extension_name_complete_glue
#define llhttp__on_chunk_extension_value llhttp__on_chunk_extension_value_glue
#define llhttp__on_chunk_extension_value_complete llhttp__on_chunk_extension_value_complete_glue
#define llhttp__on_chunk_header llhttp__on_chunk_header_glue
#define llhttp__on_header_field llhttp__on_header_field_glue
#define llhttp__on_header_field_complete llhttp__on_header_field_complete_glue
#define llhttp__on_header_value llhttp__on_header_value_glue
#define llhttp__on_header_value_complete llhttp__on_header_value_complete_glue
#define llhttp__on_headers_complete llhttp__on_headers_complete_glue
#define llhttp__on_message_begin llhttp__on_message_begin_glue
#define llhttp__on_message_complete llhttp__on_message_complete_glue
#define llhttp__on_method llhttp__on_method_glue
#define llhttp__on_method_complete llhttp__on_method_complete_glue
#define llhttp__on_reset llhttp__on_reset_glue
#define llhttp__on_status llhttp__on_status_glue
#define llhttp__on_status_complete llhttp__on_status_complete_glue
#define llhttp__on_url llhttp__on_url_glue
#define llhttp__on_url_complete llhttp__on_url_complete_glue
#define llhttp__on_version llhttp__on_version_glue
#define llhttp__on_version_complete llhttp__on_version_complete_glue
#include <api.c>
#include <http.c>

#undef llhttp__after_headers_complete
#undef llhttp__after_message_complete
#undef llhttp__before_headers_complete
#undef llhttp__on_body
#undef llhttp__on_chunk_complete
#undef llhttp__on_chunk_extension_name
#undef llhttp__on_chunk_extension_name_complete
#undef llhttp__on_chunk_extension_value
#undef llhttp__on_chunk_extension_value_complete
#undef llhttp__on_chunk_header
#undef llhttp__on_header_field
#undef llhttp__on_header_field_complete
#undef llhttp__on_header_value
#undef llhttp__on_header_value_complete
#undef llhttp__on_headers_complete
#undef llhttp__on_message_begin
#undef llhttp__on_message_complete
#undef llhttp__on_method
#undef llhttp__on_method_complete
#undef llhttp__on_reset
#undef llhttp__on_status
#undef llhttp__on_status_complete
#undef llhttp__on_url
#undef llhttp__on_url_complete
#undef llhttp__on_version
#undef llhttp__on_version_complete

#define LLHTTP_GLUE(X)                 \
  X(after_headers_complete)            \
  X(after_message_complete)            \
  X(before_headers_complete)           \
  X(on_body)                           \
  X(on_chunk_complete)                 \
  X(on_chunk_extension_name)           \
  X(on_chunk_extension_name_complete)  \
  X(on_chunk_extension_value)          \
  X(on_chunk_extension_value_complete) \
  X(on_chunk_header)                   \
  X(on_header_field)                   \
  X(on_header_field_complete)          \
  X(on_header_value)                   \
  X(on_header_value_complete)          \
  X(on_headers_complete)               \
  X(on_message_begin)                  \
  X(on_message_complete)               \
  X(on_method)                         \
  X(on_method_complete)                \
  X(on_reset)                          \
  X(on_status)                         \
  X(on_status_complete)                \
  X(on_url)                            \
  X(on_url_complete)                   \
  X(on_version)                        \
  X(on_version_complete)

#define LLHTTP_FORWARD(name)                                                                     \
  int llhttp__##name(llhttp__internal_t* s, const unsigned char* p, const unsigned char* endp) { \
    return llhttp__##name##_glue(s, (const char*)p, (const char*)endp);                          \
  }
LLHTTP_GLUE(LLHTTP_FORWARD)
