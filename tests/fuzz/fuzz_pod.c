/* SPDX-License-Identifier: Apache-2.0
 *
 * libFuzzer target for the spicepod loader: any bytes through sp_pod_parse, which must either fail with a
 * message or return a pod whose every string is readable and which frees cleanly. Build with
 *   clang -fsanitize=fuzzer,address,undefined -Iinclude -Isrc tests/fuzz/fuzz_pod.c <spicec lib> -lyaml -ljansson
 * and run with tests/fuzz/corpus/pod/ as the seed corpus.
 *
 * The pod "lives" in a folder that does not exist, so `sql_ref` and .env lookups find nothing and runs are
 * repeatable.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "spice/log.h"
#include "spice/pod.h"
#include "spice/secrets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Touches every string of the pod so that ASan sees a dangling or unterminated one. */
static size_t touch(const sp_pod *pod) {
  size_t n = strlen(pod->name) + strlen(pod->version) + strlen(pod->kind) + strlen(pod->json);
  for (size_t i = 0; i < pod->n_datasets; i++) {
    const sp_dataset_spec *d = &pod->datasets[i];
    n += strlen(d->name) + strlen(d->from) + strlen(d->connector) + strlen(d->path) + strlen(d->ready_state);
    n += strlen(d->acceleration.engine) + strlen(d->acceleration.on_zero_results);
    for (size_t j = 0; j < d->params.count; j++)
      n += strlen(d->params.items[j].key) + strlen(d->params.items[j].value);
  }
  for (size_t i = 0; i < pod->n_views; i++)
    n += strlen(pod->views[i].name) + strlen(pod->views[i].sql);
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sp_log_set_level(SP_LOG_ERROR); /* unknown-key warnings would drown the fuzzer's output */
  sp_secrets *secrets = NULL;
  if (sp_secrets_create("/nonexistent-spicec-fuzz", &secrets, NULL) != SP_OK) return 0;
  sp_pod *pod = NULL;
  sp_error err = {0};
  if (sp_pod_parse((const char *)data, size, "/nonexistent-spicec-fuzz/spicepod.yaml", secrets, &pod, &err) == SP_OK) {
    volatile size_t n = touch(pod);
    (void)n;
    sp_pod_free(pod);
  } else if (err.msg[0] == '\0') {
    __builtin_trap(); /* every failure explains itself */
  }
  sp_secrets_destroy(secrets);
  return 0;
}
