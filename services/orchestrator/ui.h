/* The dashboard's embedded files. */
#ifndef ORCH_UI_H
#define ORCH_UI_H

#include "tg/service.h"

/* ---- the dashboard's files (ui.c) -------------------------------------- */

/* civetweb handlers: ui_on_root answers "/" (the caller checked the path)
 * with a redirect to /ui/; ui_on_files serves /ui/ and the embedded ui/
 * files. GET and HEAD; otherwise the API's JSON 405, or 404 for no file. */
int ui_on_root(struct mg_connection *conn, void *data);
int ui_on_files(struct mg_connection *conn, void *data);

#endif
