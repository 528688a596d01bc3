/* The request parser's llhttp callbacks, bound at compile time: llhttp_unity.c defines the
 * functions llhttp's state machine calls for each event to call these directly, and the events
 * the parser does not read to do nothing. llhttp_settings_t is not used: through it, every
 * event (a dozen per request, most of them unread) costs a load of the settings, a test and an
 * indirect call, and a span's callback does not learn where its span ends.
 *
 * Each is given positions as llhttp's state machine has them: a span's callback its piece
 * [at, end), an event the position of the byte after it. Return values are llhttp's: 0 to go
 * on, HPE_PAUSED to stop after this event, anything else an error (HPE_USER from a span). */
#pragma once

#include <llhttp.h>

#ifdef __cplusplus
extern "C" {
#endif

int iomux_http_on_url(llhttp_t* parser, const char* at, const char* end);
/* `at`: the byte after the version's minor digit. */
int iomux_http_on_version_complete(llhttp_t* parser, const char* at);
int iomux_http_on_header_field(llhttp_t* parser, const char* at, const char* end);
int iomux_http_on_header_value(llhttp_t* parser, const char* at, const char* end);
int iomux_http_on_headers_complete(llhttp_t* parser);
int iomux_http_on_body(llhttp_t* parser, const char* at, const char* end);
int iomux_http_on_chunk_header(llhttp_t* parser);

#ifdef __cplusplus
}
#endif
