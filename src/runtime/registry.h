/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SPICE_RUNTIME_REGISTRY_H
#define SPICE_RUNTIME_REGISTRY_H

#include <stddef.h>

#include "spice/accelerator.h"
#include "spice/connector.h"

/* The module for a `from:` scheme or an acceleration engine (case-insensitive), or NULL. Static storage. */
const sp_connector_module *sp_registry_connector(const char *name);
const sp_accelerator_module *sp_registry_accelerator(const char *name);
/* "file, postgres" — for error messages. */
void sp_registry_connector_names(char *buf, size_t n);
void sp_registry_accelerator_names(char *buf, size_t n);

#endif
