/* SPDX-License-Identifier: Apache-2.0
 *
 * Change data capture for the postgres connector (`refresh_mode: changes`) by PostgreSQL's own logical
 * replication: a publication and a pgoutput slot named spice_<dataset>, a full load pushed as an OVERWRITE,
 * then every committed change pushed as SP_UPDATE_CHANGES batches. The two functions are the connector's
 * supports_streaming / stream_updates methods (connector.h).
 */
#ifndef SPICE_PG_CDC_H
#define SPICE_PG_CDC_H

#include <stdbool.h>

#include "spice/connector.h"

bool sp_pg_cdc_supported(sp_connector *self);
/* Blocks until *sink->stop (SP_ECANCELED) or an error (the runtime starts it again with backoff). */
int sp_pg_cdc_stream(sp_connector *self, sp_update_sink *sink, sp_error *err);

#endif
