/* heartbeat.h - this node's heartbeat to the metadata leader.
 *
 * Every `heartbeat` of the config, the node sends NODE_HELLO with its space
 * and chunk figures and the progress of its heal, scrub and garbage
 * collection (sent with a metacall, which finds the leader among the
 * voters); the leader marks it up (and adds a node it does not know as
 * new) and answers with the map epoch. When that epoch is newer than the
 * node's map, the heartbeat fetches the map (MAP_GET), installs it for the
 * chunk workers, and starts a heal pass if the change needs one
 * (pifs_heal_urgent). A node that an operator removed from the map stops its
 * heartbeat, so that it does not come back as new by itself. */
#ifndef PIFS_HEARTBEAT_H
#define PIFS_HEARTBEAT_H

#include "storaged_i.h"

struct pifs_heartbeat;

/* Start the heartbeat of the daemon @d (borrowed; must outlive it). It stops
 * when PIFS_CTL_HEARTBEAT is published, and then clears
 * d->heartbeat_running. Returns 0 or -errno. */
int pifs_heartbeat_start(struct pifsd *d, struct pifs_heartbeat **out /* OUT */);

/* Wait for the heartbeat to stop, then free it. NULL-safe. */
void pifs_heartbeat_join(struct pifs_heartbeat *hb);

#endif
