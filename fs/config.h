/* config.h - the cluster's one configuration file.
 *
 * The same INI file is copied to every node; each daemon is told which node
 * it is (pifs-storaged --node N). Example:
 *
 *   [cluster]
 *   replicas = 2          ; copies of every chunk
 *   chunk_size = 4M       ; K, M, G suffixes; a power of two, 64K..64M
 *   heartbeat = 1s        ; ms, s, m, h suffixes
 *   down_after = 5s       ; no heartbeat for this long: the node is down
 *   out_after = 10m       ; down for this long: its data is copied elsewhere
 *   reserve = 256M        ; a node with less free space refuses new chunks
 *   heal_interval = 60s   ; how often each node checks that its chunks are home
 *   heal_rate = 50M       ; bytes/s each node may copy for heal (0: no limit)
 *   scrub_interval = 168h ; how often each node re-reads every chunk (0: never)
 *   scrub_rate = 20M      ; bytes/s each node may read for scrub (0: no limit)
 *   gc_interval = 1h      ; how often each node deletes unreferenced chunks (0: never)
 *   gc_grace = 1h         ; a chunk written or re-written this recently is kept
 *   keys = /etc/pifs/keys ; the key directory (fs/keys.h)
 *   security = curve      ; or none: no keys, and anyone on the network may
 *                         ; read and destroy the data
 *
 *   [node 1]
 *   address = 192.168.1.11:7070
 *   data = /srv/pifs
 *   meta = yes            ; a metadata voter
 *   weight = 100          ; optional; default: the data disk's size in GiB
 *
 *   [client]
 *   cache = 64M           ; chunk cache of each mount
 *   timeout = 10s         ; how long one request waits for a node
 *
 * Errors name the file and line: "pifs.conf:7: unknown key 'adress' in [node 1]".
 * Pure but for reading the file: no locks, no globals. */
#ifndef PIFS_CONFIG_H
#define PIFS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PIFS_CONF_MAX_NODES 256

struct pifs_conf_node {
	uint32_t id;	 /* 1..2^31-1, from the section name */
	char addr[256];	 /* "host:port" */
	char data[1024]; /* the chunk store and, on voters, the metadata log */
	uint32_t weight; /* 0: the data disk's size in GiB, found at start */
	bool meta;
};

struct pifs_conf {
	uint32_t replicas;
	uint32_t chunk_size;
	uint32_t heartbeat_ms;
	uint32_t down_after_ms;
	uint64_t out_after_ms;
	uint64_t reserve_bytes;
	uint64_t cache_bytes;
	uint32_t timeout_ms;
	uint32_t heal_interval_ms;
	uint64_t heal_rate;	    /* bytes/s; 0: no limit */
	uint64_t scrub_interval_ms; /* 0: no scheduled scrub */
	uint64_t scrub_rate;	    /* bytes/s; 0: no limit */
	uint64_t gc_interval_ms;    /* 0: no scheduled garbage collection */
	uint64_t gc_grace_ms;	    /* at least a second */
	char keys_dir[1024];	    /* absolute */
	bool security_none;	    /* "security = none": plain TCP, no keys */
	size_t n_nodes;
	struct pifs_conf_node *nodes; /* owned; @n_nodes, in file order */
};

/* Fill @c with the defaults and no nodes. */
void pifs_conf_init(struct pifs_conf *c);

/* Free what @c owns. NULL-safe. */
void pifs_conf_fini(struct pifs_conf *c);

/* Read @path into @c (initialised, with no nodes). On an error @err (@errlen
 * bytes) gets a sentence naming the file and line and what to do, and @c is
 * back to the defaults with no nodes. Returns 0, -ENOENT or another -errno
 * from opening or reading the file, -ENOMEM, or -EINVAL for a bad line or a
 * bad whole (no node, two nodes with one id or one address, a node without
 * address or data, no metadata voter, replicas over the number of nodes,
 * down_after not over heartbeat, out_after under down_after). */
int pifs_conf_load(struct pifs_conf *c, const char *path, char *err, size_t errlen);

/* The node with @id, or NULL. Borrowed from @c. */
const struct pifs_conf_node *pifs_conf_node(const struct pifs_conf *c, uint32_t id);

/* The first metadata voter, or NULL. Borrowed from @c. */
const struct pifs_conf_node *pifs_conf_meta(const struct pifs_conf *c);

/* "host:port" or "[v6 address]:port" -> "tcp://" and @addr in @out (@cap
 * bytes). Returns 0, -EINVAL when @addr is not host:port with a port from 1
 * to 65535, or -ERANGE when @out is too small. */
int pifs_conf_endpoint(const char *addr, char *out, size_t cap);

/* "4M" -> 4194304; plain numbers are bytes. Returns 0 or -EINVAL. */
int pifs_conf_parse_size(const char *s, uint64_t *out /* OUT */);

/* "250ms", "5s", "10m", "1h" -> milliseconds; plain numbers are ms.
 * Returns 0 or -EINVAL. */
int pifs_conf_parse_duration(const char *s, uint64_t *out /* OUT */);

#endif
