/* route-api's REST resources under /api/v1. */
#ifndef ROUTE_API_API_H
#define ROUTE_API_API_H

#include <civetweb.h>

/* Adds the handlers to the service's civetweb server. */
void api_register(struct mg_context *http);

#endif
