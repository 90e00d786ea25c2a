/* SPDX-License-Identifier: Apache-2.0
 *
 * localpod datasets (`from: localpod:<parent>`) follow their parent: when the parent's refresh succeeds, each
 * accelerated child whose refresh_mode is full (as is the parent's) refreshes right after it, from the
 * parent's accelerated copy. A child that cannot load because its parent has not loaded yet waits for the
 * parent instead of retrying on its own (Spice: children load after parents).
 */
#ifndef SPICE_LOCALPOD_LINK_H
#define SPICE_LOCALPOD_LINK_H

#include "runtime/runtime_int.h"

/* Called by the refresh task of `ds` after each refresh, with its result; takes rt->ds_lock (read) and
 * rt->lock, so neither may be held by the caller. */
void sp__localpod_refreshed(sp_dataset *ds, int rc);

#endif
