/* ctl.h - telling the threads of pifs-storaged to stop.
 *
 * The main thread publishes a topic on one inproc PUB socket; each thread
 * polls a SUB socket subscribed to its topic next to its work, so that a stop
 * wakes it at once instead of after a timeout. */
#ifndef PIFS_CTL_H
#define PIFS_CTL_H

#define PIFS_CTL_ENDPOINT "inproc://pifs-storaged-ctl"
#define PIFS_CTL_HEARTBEAT "heartbeat" /* stop the heartbeat */
#define PIFS_CTL_WORKERS "workers"     /* stop the chunk workers and the metadata service */

/* Bind the publisher in @zctx (borrowed). *@pub is closed with zmq_close.
 * Returns 0 or -errno. */
int pifs_ctl_bind(void *zctx, void **pub /* OUT */);

/* Connect a subscriber to @topic (borrowed). *@sub is closed with zmq_close.
 * Returns 0 or -errno. */
int pifs_ctl_subscribe(void *zctx, const char *topic, void **sub /* OUT */);

/* Publish @topic on @pub. Returns 0 or -errno. */
int pifs_ctl_publish(void *pub, const char *topic);

#endif
