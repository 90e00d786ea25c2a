/* SPDX-License-Identifier: Apache-2.0
 *
 * systemd readiness: the datagram reaches $NOTIFY_SOCKET (path and abstract forms); without it nothing is sent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/sd_notify.c" /* the daemon's own file: spiced is not in the library */

static void receive_on(const char *name, int abstract) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  snprintf(addr.sun_path, sizeof addr.sun_path, "%s", name);
  if (abstract) addr.sun_path[0] = '\0';
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  assert_true(fd >= 0);
  if (!abstract) unlink(name);
  assert_int_equal(bind(fd, (struct sockaddr *)&addr, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name))), 0);
  setenv("NOTIFY_SOCKET", name, 1);
  assert_int_equal(sp_sd_notify("READY=1"), 1);
  char buf[64] = {0};
  assert_int_equal(recv(fd, buf, sizeof buf - 1, 0), 7);
  assert_string_equal(buf, "READY=1");
  close(fd);
  if (!abstract) unlink(name);
}

static void test_path_socket(void **state) {
  char name[64];
  snprintf(name, sizeof name, "/tmp/sp_notify_%d", (int)getpid());
  receive_on(name, 0);
}

static void test_abstract_socket(void **state) {
  char name[64];
  snprintf(name, sizeof name, "@sp_notify_%d", (int)getpid());
  receive_on(name, 1);
}

static void test_not_under_systemd(void **state) {
  unsetenv("NOTIFY_SOCKET");
  assert_int_equal(sp_sd_notify("READY=1"), 0);
  setenv("NOTIFY_SOCKET", "relative/path", 1);
  assert_int_equal(sp_sd_notify("READY=1"), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_path_socket),
      cmocka_unit_test(test_abstract_socket),
      cmocka_unit_test(test_not_under_systemd),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
