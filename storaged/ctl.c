/* ctl.c - telling the threads of pifs-storaged to stop. */
#include "ctl.h"

#include <errno.h>
#include <string.h>
#include <zmq.h>

int pifs_ctl_bind(void *zctx, void **pub)
{
	int zero = 0, rc = 0;
	void *s = zmq_socket(zctx, ZMQ_PUB);

	if (!s)
		return -errno;
	if (zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ||
	    zmq_bind(s, PIFS_CTL_ENDPOINT) < 0) {
		rc = -errno;
		zmq_close(s);
		return rc;
	}
	*pub = s;
	return 0;
}

int pifs_ctl_subscribe(void *zctx, const char *topic, void **sub)
{
	int zero = 0, rc = 0;
	void *s = zmq_socket(zctx, ZMQ_SUB);

	if (!s)
		return -errno;
	if (zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ||
	    zmq_setsockopt(s, ZMQ_SUBSCRIBE, topic, strlen(topic)) < 0 ||
	    zmq_connect(s, PIFS_CTL_ENDPOINT) < 0) {
		rc = -errno;
		zmq_close(s);
		return rc;
	}
	*sub = s;
	return 0;
}

int pifs_ctl_publish(void *pub, const char *topic)
{
	return zmq_send(pub, topic, strlen(topic), 0) < 0 ? -errno : 0;
}
