/* SPDX-License-Identifier: Apache-2.0
 *
 * The module registry, expanded from modules.def (nginx's ngx_modules[] pattern).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "runtime/registry.h"

#define SP_CONNECTOR(n) extern const sp_connector_module sp_connector_##n;
#define SP_ACCELERATOR(n) extern const sp_accelerator_module sp_accelerator_##n;
#include "runtime/modules.def"
#undef SP_CONNECTOR
#undef SP_ACCELERATOR

#define SP_CONNECTOR(n) &sp_connector_##n,
#define SP_ACCELERATOR(n)
static const sp_connector_module *const connectors[] = {
#include "runtime/modules.def"
    NULL};
#undef SP_CONNECTOR
#undef SP_ACCELERATOR

#define SP_CONNECTOR(n)
#define SP_ACCELERATOR(n) &sp_accelerator_##n,
static const sp_accelerator_module *const accelerators[] = {
#include "runtime/modules.def"
    NULL};
#undef SP_CONNECTOR
#undef SP_ACCELERATOR

const sp_connector_module *sp_registry_connector(const char *name) {
  for (size_t i = 0; connectors[i]; i++)
    if (strcasecmp(connectors[i]->name, name) == 0) return connectors[i];
  return NULL;
}

const sp_accelerator_module *sp_registry_accelerator(const char *name) {
  for (size_t i = 0; accelerators[i]; i++)
    if (strcasecmp(accelerators[i]->name, name) == 0) return accelerators[i];
  return NULL;
}

void sp_registry_connector_names(char *buf, size_t n) {
  size_t o = 0;
  buf[0] = '\0';
  for (size_t i = 0; connectors[i] && o < n; i++)
    o += (size_t)snprintf(buf + o, n - o, "%s%s", i ? ", " : "", connectors[i]->name);
}

void sp_registry_accelerator_names(char *buf, size_t n) {
  size_t o = 0;
  buf[0] = '\0';
  for (size_t i = 0; accelerators[i] && o < n; i++)
    o += (size_t)snprintf(buf + o, n - o, "%s%s", i ? ", " : "", accelerators[i]->name);
}
