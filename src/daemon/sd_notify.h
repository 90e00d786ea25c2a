/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SPICE_DAEMON_SD_NOTIFY_H
#define SPICE_DAEMON_SD_NOTIFY_H

/* Sends `state` (e.g. "READY=1") to systemd when run as a Type=notify service. Returns 1 when sent, 0 when
 * not under systemd, -1 on a socket error. */
int sp_sd_notify(const char *state);

#endif
