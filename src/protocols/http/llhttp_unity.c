/* llhttp as Debian's node-llhttp ships it: llhttp.c (the state machine llparse generated), api.c
 * and http.c, unmodified, compiled as one translation unit, with the functions the state machine
 * calls for each event defined here. Compiled apart, every event is a call into api.c, which
 * loads the settings and calls the user's callback or returns for an unset one: a dozen calls
 * per request that the compiler cannot inline across files (callgrind, epoll, wrk plain: 2,143
 * instructions per request apart, 1,919 together). Defined here, the events the request parser
 * reads call it directly (llhttp_binding.h) and the others inline to nothing (1,843).
 *
 * llhttp.c declares the event functions with `const unsigned char*` arguments and api.c and
 * http.c define them with `const char*`, which one translation unit does not accept: api.c's
 * and http.c's definitions are renamed (_glue); http.c's decisions are forwarded to with
 * llhttp.c's signature, api.c's settings-driven callbacks are left unused. A llhttp that adds an
 * event does not link until the event is added below. Built strict (LLHTTP_STRICT_MODE=1, set
 * for the library). */
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

#include "protocols/http/llhttp_binding.h"

/* http.c's decisions between events, as llhttp defines them. */
#define LLHTTP_DECISIONS(X) \
  X(after_headers_complete) \
  X(after_message_complete) \
  X(before_headers_complete)

#define LLHTTP_FORWARD(name)                                                                     \
  int llhttp__##name(llhttp__internal_t* s, const unsigned char* p, const unsigned char* endp) { \
    return llhttp__##name##_glue(s, (const char*)p, (const char*)endp);                          \
  }
LLHTTP_DECISIONS(LLHTTP_FORWARD)

/* The events the request parser reads (llhttp_binding.h). */
#define LLHTTP_SPAN(name)                                                                        \
  int llhttp__##name(llhttp__internal_t* s, const unsigned char* p, const unsigned char* endp) { \
    return iomux_http_##name(s, (const char*)p, (const char*)endp);                              \
  }
LLHTTP_SPAN(on_url)
LLHTTP_SPAN(on_header_field)
LLHTTP_SPAN(on_header_value)
LLHTTP_SPAN(on_body)

int llhttp__on_version_complete(llhttp__internal_t* s, const unsigned char* p, const unsigned char* endp) {
  (void)endp;
  return iomux_http_on_version_complete(s, (const char*)p);
}

int llhttp__on_headers_complete(llhttp__internal_t* s, const unsigned char* p, const unsigned char* endp) {
  (void)p;
  (void)endp;
  return iomux_http_on_headers_complete(s);
}

int llhttp__on_chunk_header(llhttp__internal_t* s, const unsigned char* p, const unsigned char* endp) {
  (void)p;
  (void)endp;
  return iomux_http_on_chunk_header(s);
}

/* Stop right after the body, so that a pipelined request behind it stays unread. */
int llhttp__on_message_complete(llhttp__internal_t* s, const unsigned char* p, const unsigned char* endp) {
  (void)s;
  (void)p;
  (void)endp;
  return HPE_PAUSED;
}

/* The events it does not read: nothing to do, which the compiler sees (they inline to nothing). */
#define LLHTTP_IGNORE(name)                                                                      \
  int llhttp__##name(llhttp__internal_t* s, const unsigned char* p, const unsigned char* endp) { \
    (void)s;                                                                                     \
    (void)p;                                                                                     \
    (void)endp;                                                                                  \
    return 0;                                                                                    \
  }
LLHTTP_IGNORE(on_chunk_complete)
LLHTTP_IGNORE(on_chunk_extension_name)
LLHTTP_IGNORE(on_chunk_extension_name_complete)
LLHTTP_IGNORE(on_chunk_extension_value)
LLHTTP_IGNORE(on_chunk_extension_value_complete)
LLHTTP_IGNORE(on_header_field_complete)
LLHTTP_IGNORE(on_header_value_complete)
LLHTTP_IGNORE(on_message_begin)
LLHTTP_IGNORE(on_method)
LLHTTP_IGNORE(on_method_complete)
LLHTTP_IGNORE(on_reset)
LLHTTP_IGNORE(on_status)
LLHTTP_IGNORE(on_status_complete)
LLHTTP_IGNORE(on_url_complete)
LLHTTP_IGNORE(on_version)
