/* SPDX-License-Identifier: Apache-2.0
 *
 * Opening and closing module instances (connector.h): the runtime, the accelerators that read through a
 * connector of their own (postgres) and the tests all make instances the same way.
 */
#include <stdio.h>
#include <stdlib.h>

#include "spice/connector.h"

int sp_connector_instance_open(const sp_connector_module *m, const sp_dataset_spec *spec, sp_params *params,
                               struct sp_engine *engine, sp_connector **out, sp_error *err) {
  sp_connector *c = calloc(1, m->instance_size);
  if (c == NULL) {
    sp_params_free(params);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  c->module = m;
  c->dataset = spec;
  c->params = *params;
  *params = (sp_params){0};
  c->engine = engine;
  int rc = m->open(c, err);
  if (rc != SP_OK) {
    sp_params_free(&c->params);
    free(c);
    return rc;
  }
  *out = c;
  return SP_OK;
}

int sp_connector_instance_create(const sp_connector_module *m, const sp_dataset_spec *spec, const sp_params *raw,
                                 sp_secrets *secrets, struct sp_engine *engine, sp_connector **out, sp_error *err) {
  char what[300];
  sp_params params = {0};
  snprintf(what, sizeof what, "dataset \"%s\"", spec->name);
  SP_TRY(sp_params_validate(m->params, m->prefix, raw, secrets, what, &params, err));
  return sp_connector_instance_open(m, spec, &params, engine, out, err);
}

void sp_connector_instance_close(sp_connector *c) {
  if (c == NULL) return;
  c->module->close(c);
  sp_params_free(&c->params);
  free(c);
}
