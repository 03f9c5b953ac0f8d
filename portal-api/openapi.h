/* openapi.h -- the OpenAPI 3 document of the API (portal-api/openapi.json), built into the
 * binary so the served document always describes the server that serves it. Read-only. */
#ifndef AEGIS_PORTAL_OPENAPI_H
#define AEGIS_PORTAL_OPENAPI_H

#include <stddef.h>

const char *openapi_document(size_t *len);

#endif
