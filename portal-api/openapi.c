/* openapi.c -- portal-api/openapi.json embedded at build time with the assembler's .incbin
 * (the path is relative to the repository root, where make runs the compiler). */
#include "openapi.h"

__asm__(".section .rodata\n"
	".balign 16\n"
	".global aegis_openapi_start\n"
	"aegis_openapi_start:\n"
	".incbin \"portal-api/openapi.json\"\n"
	".global aegis_openapi_end\n"
	"aegis_openapi_end:\n"
	".byte 0\n"
	".previous\n");

extern const char aegis_openapi_start[], aegis_openapi_end[];

const char *openapi_document(size_t *len)
{
	*len = (size_t)(aegis_openapi_end - aegis_openapi_start);
	return aegis_openapi_start;
}
