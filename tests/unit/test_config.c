/* test_config.c - the configuration file: values, defaults, and errors that
 * name their line and say what to do. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char dir[64];
static char path[96];

static void make_dir(void)
{
	strcpy(dir, "/tmp/pifs-test-config-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/pifs.conf", dir);
}

static void remove_dir(void)
{
	unlink(path);
	rmdir(dir);
}

TestSuite(config, .init = make_dir, .fini = remove_dir);

/* Write @text as the configuration file and load it into @c. */
static int load(struct pifs_conf *c, const char *text, char *err, size_t errlen)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	cr_assert_eq(fputs(text, f) >= 0, 1);
	cr_assert_eq(fclose(f), 0);
	pifs_conf_init(c);
	return pifs_conf_load(c, path, err, errlen);
}

/* Load @text, expect -EINVAL and a message that starts with "path:@line: "
 * (or "path: " for @line 0) and contains @what, and check that @c went back
 * to the defaults. */
static void expect_error(const char *text, int line, const char *what)
{
	struct pifs_conf c;
	char err[512], want[160];

	cr_assert_eq(load(&c, text, err, sizeof(err)), -EINVAL, "accepted:\n%s", text);
	if (line)
		snprintf(want, sizeof(want), "%s:%d: ", path, line);
	else
		snprintf(want, sizeof(want), "%s: ", path);
	cr_assert_eq(strncmp(err, want, strlen(want)), 0, "got \"%s\"\nwanted \"%s...\"", err,
		     want);
	cr_assert_not_null(strstr(err, what), "got \"%s\"\nwanted \"%s\"", err, what);
	cr_assert_eq(c.n_nodes, 0);
	cr_assert_null(c.nodes);
	cr_assert_eq(c.replicas, 2);
	pifs_conf_fini(&c);
}

/* A valid node section, for files that test something else. */
#define NODE1 "[node 1]\naddress = 10.0.0.1:7070\ndata = /srv/pifs\nmeta = yes\n"

Test(config, loads_a_full_file)
{
	static const char text[] = "; the test cluster\n"
				   "[cluster]\n"
				   "replicas = 3          ; copies\n"
				   "chunk_size = 1M\n"
				   "heartbeat = 500ms\n"
				   "down_after = 3s\n"
				   "out_after = 1h\n"
				   "reserve = 1G\n"
				   "heal_interval = 30s\n"
				   "heal_rate = 10M\n"
				   "scrub_interval = 24h\n"
				   "scrub_rate = 0\n"
				   "gc_interval = 30m\n"
				   "gc_grace = 2h\n"
				   "\n"
				   "# nodes\n"
				   "[node 1]\n"
				   "\taddress = 192.168.1.11:7070\n"
				   "\tdata = /srv/pifs\n"
				   "\tmeta = yes\n"
				   "\tweight = 100\n"
				   "[node 22]\n"
				   "address = [fd00::22]:7070\n"
				   "data = /mnt/usb/pifs\n"
				   "meta = False\n"
				   "[ node  300 ]\n"
				   "address = pi3.local:7071\n"
				   "data = /data\n"
				   "meta = 1\n"
				   "[client]\n"
				   "cache = 128M\n"
				   "timeout = 2m\n";
	const struct pifs_conf_node *n;
	struct pifs_conf c;
	char err[256];

	cr_assert_eq(load(&c, text, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(c.replicas, 3);
	cr_assert_eq(c.chunk_size, 1u << 20);
	cr_assert_eq(c.heartbeat_ms, 500);
	cr_assert_eq(c.down_after_ms, 3000);
	cr_assert_eq(c.out_after_ms, 3600000);
	cr_assert_eq(c.reserve_bytes, 1ull << 30);
	cr_assert_eq(c.heal_interval_ms, 30000);
	cr_assert_eq(c.heal_rate, 10ull << 20);
	cr_assert_eq(c.scrub_interval_ms, 24ull * 3600000);
	cr_assert_eq(c.scrub_rate, 0);
	cr_assert_eq(c.gc_interval_ms, 30ull * 60000);
	cr_assert_eq(c.gc_grace_ms, 2ull * 3600000);
	cr_assert_eq(c.cache_bytes, 128ull << 20);
	cr_assert_eq(c.timeout_ms, 120000);
	cr_assert_eq(c.n_nodes, 3);
	cr_assert_eq(c.nodes[0].id, 1);
	cr_assert_str_eq(c.nodes[0].addr, "192.168.1.11:7070");
	cr_assert_str_eq(c.nodes[0].data, "/srv/pifs");
	cr_assert(c.nodes[0].meta);
	cr_assert_eq(c.nodes[0].weight, 100);
	cr_assert_eq(c.nodes[1].id, 22);
	cr_assert_str_eq(c.nodes[1].addr, "[fd00::22]:7070");
	cr_assert_not(c.nodes[1].meta);
	cr_assert_eq(c.nodes[1].weight, 0);
	cr_assert_eq(c.nodes[2].id, 300);
	cr_assert(c.nodes[2].meta);
	n = pifs_conf_node(&c, 22);
	cr_assert_eq(n, &c.nodes[1]);
	cr_assert_null(pifs_conf_node(&c, 2));
	cr_assert_eq(pifs_conf_meta(&c), &c.nodes[0]);
	pifs_conf_fini(&c);
	cr_assert_null(c.nodes);
	cr_assert_eq(c.n_nodes, 0);
	pifs_conf_fini(NULL);
}

Test(config, fills_in_the_defaults)
{
	struct pifs_conf c;
	char err[256];

	cr_assert_eq(load(&c, "[cluster]\nreplicas = 1\n" NODE1, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(c.replicas, 1);
	cr_assert_eq(c.chunk_size, 4u << 20);
	cr_assert_eq(c.heartbeat_ms, 1000);
	cr_assert_eq(c.down_after_ms, 5000);
	cr_assert_eq(c.out_after_ms, 600000);
	cr_assert_eq(c.reserve_bytes, 256ull << 20);
	cr_assert_eq(c.heal_interval_ms, 60000);
	cr_assert_eq(c.heal_rate, 50ull << 20);
	cr_assert_eq(c.scrub_interval_ms, 7ull * 24 * 3600000);
	cr_assert_eq(c.scrub_rate, 20ull << 20);
	cr_assert_eq(c.gc_interval_ms, 3600000);
	cr_assert_eq(c.gc_grace_ms, 3600000);
	cr_assert_eq(c.cache_bytes, 64ull << 20);
	cr_assert_eq(c.timeout_ms, 10000);
	pifs_conf_fini(&c);
	pifs_conf_init(&c);
	cr_assert_eq(c.replicas, 2);
	cr_assert_null(pifs_conf_meta(&c));
}

Test(config, zero_turns_off_the_scheduled_scrub_and_gc_and_the_copy_limits)
{
	struct pifs_conf c;
	char err[256];

	cr_assert_eq(load(&c,
			  "[cluster]\nreplicas = 1\nheal_rate = 0\nscrub_interval = 0\n"
			  "scrub_rate = 0\ngc_interval = 0\n" NODE1,
			  err, sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(c.heal_rate, 0);
	cr_assert_eq(c.scrub_interval_ms, 0);
	cr_assert_eq(c.scrub_rate, 0);
	cr_assert_eq(c.gc_interval_ms, 0);
	pifs_conf_fini(&c);
}

Test(config, reads_crlf_lines_and_a_byte_order_mark)
{
	struct pifs_conf c;
	char err[256];

	cr_assert_eq(load(&c,
			  "\xef\xbb\xbf[cluster]\r\nreplicas = 1\r\n[node 5]\r\n"
			  "address = a:1\r\ndata = /d\r\nmeta = yes\r\n",
			  err, sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(c.replicas, 1);
	cr_assert_str_eq(c.nodes[0].addr, "a:1");
	cr_assert_str_eq(c.nodes[0].data, "/d");
	pifs_conf_fini(&c);
}

Test(config, names_an_unknown_key_and_lists_the_right_ones)
{
	expect_error("[cluster]\n"
		     "replicas = 1\n"
		     "\n"
		     "[node 1]\n"
		     "data = /srv/pifs\n"
		     "meta = yes\n"
		     "adress = 10.0.0.1:7070\n",
		     7, "unknown key 'adress' in [node 1] (keys: address, data, meta, weight)");
	expect_error("[cluster]\nreplica = 1\n", 2,
		     "unknown key 'replica' in [cluster] (keys: replicas, chunk_size, heartbeat, "
		     "down_after, out_after, reserve, heal_interval, heal_rate, scrub_interval, "
		     "scrub_rate, gc_interval, gc_grace, keys, security)");
	expect_error(NODE1 "[client]\ncache_size = 1M\n", 6,
		     "unknown key 'cache_size' in [client] (keys: cache, timeout)");
}

Test(config, keys_and_security)
{
	struct pifs_conf c;
	char err[512];

	cr_assert_eq(load(&c, "[cluster]\nreplicas = 1\n" NODE1, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(c.keys_dir, "/etc/pifs/keys");
	cr_assert_not(c.security_none, "CURVE unless the file says otherwise");
	pifs_conf_fini(&c);
	cr_assert_eq(load(&c, "[cluster]\nreplicas = 1\nkeys = /srv/keys\nsecurity = none\n" NODE1,
			  err, sizeof(err)),
		     0, "%s", err);
	cr_assert_str_eq(c.keys_dir, "/srv/keys");
	cr_assert(c.security_none);
	pifs_conf_fini(&c);
	expect_error("[cluster]\nsecurity = off\n" NODE1, 2,
		     "bad security 'off' in [cluster]: security must be curve (the default");
	expect_error("[cluster]\nkeys = keys\n" NODE1, 2, "bad keys 'keys' in [cluster]");
}

Test(config, names_an_unknown_section)
{
	expect_error(NODE1 "\n[nodes 2]\naddress = a:1\n", 6,
		     "unknown section [nodes 2] (sections: [cluster], [node N], [client])");
	expect_error("[Cluster]\n" NODE1, 1, "unknown section [Cluster]");
	expect_error(
	    "[abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz]\n", 1,
	    "unknown section [abcdefghijklmnopqrstuvwxyzabcdef...]");
}

Test(config, refuses_a_bad_node_id)
{
	expect_error(NODE1 "[node 0]\n", 5, "bad node id in [node 0]");
	expect_error(
	    NODE1 "[node 2147483648]\n", 5,
	    "bad node id in [node 2147483648]: write [node N] with N a whole number from 1 "
	    "to 2147483647");
	expect_error("[node]\n", 1, "bad node id in [node]");
	expect_error("[node x]\n", 1, "bad node id in [node x]");
	expect_error("[node -1]\n", 1, "bad node id in [node -1]");
}

Test(config, takes_the_highest_node_id)
{
	struct pifs_conf c;
	char err[256];

	cr_assert_eq(load(&c,
			  "[cluster]\nreplicas = 1\n[node 2147483647]\naddress = a:1\n"
			  "data = /d\nmeta = yes\n",
			  err, sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(c.nodes[0].id, 2147483647u);
	pifs_conf_fini(&c);
}

Test(config, says_what_a_value_must_be)
{
	expect_error("[cluster]\nreplicas = 0\n" NODE1, 2,
		     "bad replicas '0' in [cluster]: replicas must be a whole number from 1 to 8");
	expect_error("[cluster]\nreplicas = 9\n" NODE1, 2, "replicas must be a whole number");
	expect_error("[cluster]\nreplicas = two\n" NODE1, 2, "bad replicas 'two'");
	expect_error("[cluster]\nchunk_size = 3M\n" NODE1, 2,
		     "bad chunk_size '3M' in [cluster]: chunk_size must be a power of two "
		     "between 64K and 64M");
	expect_error("[cluster]\nchunk_size = 32K\n" NODE1, 2, "chunk_size must be a power of two");
	expect_error("[cluster]\nchunk_size = 128M\n" NODE1, 2,
		     "chunk_size must be a power of two");
	expect_error("[cluster]\nheartbeat = fast\n" NODE1, 2, "heartbeat must be a duration");
	expect_error("[cluster]\nheartbeat = 0\n" NODE1, 2, "heartbeat must be a duration");
	expect_error("[cluster]\ndown_after = 50d\n" NODE1, 2, "down_after must be a duration");
	expect_error("[cluster]\nreserve = lots\n" NODE1, 2, "reserve must be a size");
	expect_error("[cluster]\nheal_interval = 50ms\n" NODE1, 2,
		     "bad heal_interval '50ms' in [cluster]: heal_interval must be a duration "
		     "from 100ms to 49 days");
	expect_error("[cluster]\nheal_rate = fast\n" NODE1, 2,
		     "heal_rate must be bytes per second, such as 50M, or 0 for no limit");
	expect_error("[cluster]\nscrub_interval = weekly\n" NODE1, 2,
		     "scrub_interval must be a duration such as 168h (a week), or 0");
	expect_error("[cluster]\nscrub_rate = -1\n" NODE1, 2,
		     "scrub_rate must be bytes per second");
	expect_error("[cluster]\ngc_interval = hourly\n" NODE1, 2,
		     "bad gc_interval 'hourly' in [cluster]: gc_interval must be a duration such "
		     "as 1h, or 0");
	expect_error("[cluster]\ngc_grace = 500ms\n" NODE1, 2,
		     "bad gc_grace '500ms' in [cluster]: gc_grace must be a duration of at least "
		     "1s");
	expect_error("[cluster]\ngc_grace = 0\n" NODE1, 2, "gc_grace must be a duration");
	expect_error("[client]\ntimeout = 1.5s\n" NODE1, 2, "timeout must be a duration");
	expect_error("[client]\ncache = \n" NODE1, 2, "bad cache '' in [client]");
	expect_error("[node 1]\nmeta = maybe\n", 2,
		     "bad meta 'maybe' in [node 1]: meta must be yes or no");
	expect_error("[node 1]\nweight = 0\n", 2,
		     "weight must be a whole number from 1 to 4294967295 (leave it out");
	expect_error("[node 1]\nweight = 4294967296\n", 2, "bad weight");
	expect_error("[node 1]\naddress = 10.0.0.1\n", 2, "address must be host:port");
	expect_error("[node 1]\naddress = fd00::1:7070\n", 2, "address must be host:port");
	expect_error("[node 1]\ndata = srv/pifs\n", 2, "data must be an absolute path");
}

Test(config, refuses_a_key_outside_any_section)
{
	expect_error("replicas = 1\n" NODE1, 1,
		     "'replicas' is outside any section: put it under [cluster], [node N] or "
		     "[client]");
}

Test(config, refuses_a_key_set_twice)
{
	expect_error("[cluster]\nreplicas = 1\nreplicas = 1\n" NODE1, 3,
		     "'replicas' is set twice in [cluster] (first on line 2): keep one");
	/* Indentation never continues a value: the second line is its own key. */
	expect_error(NODE1 "  meta = no\n", 5, "'meta' is set twice in [node 1] (first on line 4)");
}

Test(config, refuses_a_section_given_twice)
{
	expect_error("[client]\ncache = 1M\n" NODE1 "[client]\ntimeout = 1s\n", 7,
		     "[client] appears twice (first on line 1): merge them");
}

Test(config, refuses_two_nodes_with_one_id)
{
	expect_error(NODE1 "\n[node 1]\naddress = 10.0.0.2:7070\n", 6,
		     "node 1 is defined twice (first on line 1): give each node its own id");
}

Test(config, refuses_two_nodes_with_one_address)
{
	expect_error(NODE1 "[node 2]\ndata = /srv/pifs\naddress = 10.0.0.1:7070\n", 7,
		     "node 2 has the same address as node 1 (line 2): give each node its own "
		     "host:port");
}

Test(config, names_the_section_of_a_node_without_address_or_data)
{
	expect_error(NODE1 "\n[node 2]\ndata = /srv/pifs\n[node 3]\naddress = a:1\n", 6,
		     "[node 2] has no address: add 'address = host:port'");
	expect_error(NODE1 "[node 2]\naddress = a:1\n", 5,
		     "[node 2] has no data directory: add 'data = /path/to/store'");
	expect_error(NODE1 "[node 2]\n", 5, "[node 2] has no address");
}

Test(config, needs_a_node)
{
	expect_error("[cluster]\nreplicas = 1\n", 0,
		     "no [node N] section: add one for each storage node");
	expect_error("", 0, "no [node N] section");
}

Test(config, needs_a_metadata_voter)
{
	expect_error("[node 1]\naddress = a:1\ndata = /d\nmeta = no\n[node 2]\naddress = b:1\n"
		     "data = /d\n",
		     0, "no node has 'meta = yes': make one node");
}

Test(config, needs_as_many_nodes_as_replicas)
{
	expect_error(NODE1, 0,
		     "replicas is 2 (the default) but only 1 node is configured: add nodes or set "
		     "a lower 'replicas' in [cluster]");
	expect_error("[cluster]\n\nreplicas = 3\n" NODE1 "[node 2]\naddress = b:1\ndata = /d\n", 3,
		     "replicas is 3 but only 2 nodes are configured");
}

Test(config, needs_down_after_over_heartbeat_and_out_after_over_down_after)
{
	expect_error("[cluster]\nreplicas = 1\nheartbeat = 5s\n" NODE1, 3,
		     "down_after (5000 ms) must be longer than heartbeat (5000 ms)");
	expect_error("[cluster]\nreplicas = 1\ndown_after = 1s\nheartbeat = 2s\n" NODE1, 3,
		     "down_after (1000 ms) must be longer than heartbeat (2000 ms)");
	expect_error("[cluster]\nreplicas = 1\nout_after = 4s\n" NODE1, 3,
		     "out_after (4000 ms) must not be shorter than down_after (5000 ms)");
}

Test(config, names_a_line_that_is_not_ini)
{
	expect_error(
	    NODE1 "this is not a setting\n", 5,
	    "cannot read this line: write 'key = value', a [section] header, or a comment");
	expect_error(NODE1 "[node 2\n", 5, "section header without ']'");
}

Test(config, names_a_line_too_long)
{
	char text[512];

	snprintf(text, sizeof(text), NODE1 "[client]\n; %0300d\n", 0);
	expect_error(text, 6, "line is longer than");
}

Test(config, reports_the_first_error_in_the_file)
{
	expect_error(NODE1 "not ini\n[cluster]\nreplicas = 0\n", 5, "cannot read this line");
	expect_error(NODE1 "[cluster]\nreplicas = 0\nnot ini\n", 6, "bad replicas '0'");
	expect_error("[bad]\n" NODE1 "not ini\n", 1, "unknown section [bad]");
}

Test(config, says_when_the_file_cannot_be_opened)
{
	struct pifs_conf c;
	char err[512];

	pifs_conf_init(&c);
	cr_assert_eq(pifs_conf_load(&c, path, err, sizeof(err)), -ENOENT);
	cr_assert_not_null(strstr(err, path), "%s", err);
	cr_assert_not_null(strstr(err, "cannot open the configuration file"), "%s", err);
	cr_assert_eq(pifs_conf_load(&c, dir, err, sizeof(err)), -EISDIR, "%s", err);
	cr_assert_not_null(strstr(err, "cannot read the configuration file"), "%s", err);
	/* A NULL or tiny error buffer is not written past. */
	cr_assert_eq(pifs_conf_load(&c, path, NULL, 0), -ENOENT);
	err[1] = 'x';
	cr_assert_eq(pifs_conf_load(&c, path, err, 1), -ENOENT);
	cr_assert_eq(err[0], '\0');
	cr_assert_eq(err[1], 'x');
}

Test(config, parses_sizes)
{
	static const struct {
		const char *s;
		uint64_t v;
	} ok[] = {
	    {"0", 0},		{"4096", 4096},
	    {"64K", 65536},	{"64k", 65536},
	    {"4M", 4u << 20},	{"1G", 1ull << 30},
	    {"3g", 3ull << 30}, {"17179869183G", 17179869183ull << 30},
	};
	static const char *const bad[] = {"",	  "M",	  "4X",		  "-1",
					  " 4M",  "4M ",  "4MB",	  "4 M",
					  "0x10", "1.5G", "17179869184G", "18446744073709551616"};
	uint64_t v;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(pifs_conf_parse_size(ok[i].s, &v), 0, "%s", ok[i].s);
		cr_assert_eq(v, ok[i].v, "%s", ok[i].s);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(pifs_conf_parse_size(bad[i], &v), -EINVAL, "'%s'", bad[i]);
}

Test(config, parses_durations)
{
	static const struct {
		const char *s;
		uint64_t v;
	} ok[] = {
	    {"250ms", 250}, {"7", 7}, {"5s", 5000}, {"10m", 600000}, {"1h", 3600000}, {"0s", 0},
	};
	static const char *const bad[] = {
	    "", "s", "5x", "1.5s", "5 s", "5S", "-1s", "5sec", "18446744073709551615s"};
	uint64_t v;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(pifs_conf_parse_duration(ok[i].s, &v), 0, "%s", ok[i].s);
		cr_assert_eq(v, ok[i].v, "%s", ok[i].s);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(pifs_conf_parse_duration(bad[i], &v), -EINVAL, "'%s'", bad[i]);
}

Test(config, parses_booleans)
{
	static const char *const yes[] = {"yes", "Yes", "true", "TRUE", "1"};
	static const char *const no[] = {"no", "NO", "false", "False", "0"};
	struct pifs_conf c;
	char text[256], err[256];
	size_t i;

	for (i = 0; i < 5; i++) {
		snprintf(text, sizeof(text),
			 "[cluster]\nreplicas = 1\n[node 1]\naddress = a:1\ndata = /d\nmeta = %s\n",
			 yes[i]);
		cr_assert_eq(load(&c, text, err, sizeof(err)), 0, "%s", err);
		cr_assert(c.nodes[0].meta, "%s", yes[i]);
		pifs_conf_fini(&c);
		snprintf(text, sizeof(text),
			 NODE1 "[node 2]\naddress = b:1\ndata = /d\nmeta = %s\n", no[i]);
		cr_assert_eq(load(&c, text, err, sizeof(err)), 0, "%s", err);
		cr_assert_not(c.nodes[1].meta, "%s", no[i]);
		pifs_conf_fini(&c);
	}
}

Test(config, makes_zeromq_endpoints)
{
	char out[64];

	cr_assert_eq(pifs_conf_endpoint("192.168.1.11:7070", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "tcp://192.168.1.11:7070");
	cr_assert_eq(pifs_conf_endpoint("pi1.local:1", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "tcp://pi1.local:1");
	cr_assert_eq(pifs_conf_endpoint("[::1]:7000", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "tcp://[::1]:7000");
	cr_assert_eq(pifs_conf_endpoint("127.0.0.1:65535", out, sizeof(out)), 0);
}

Test(config, refuses_an_endpoint_without_a_port)
{
	static const char *const bad[] = {
	    "host",   "host:",	    ":7000",	  "::1:7000",	"[::1]",   "[::1]7000", "[]:7000",
	    "host:0", "host:65536", "host:7000x", "ho st:7000", "host:-1", ""};
	char out[64];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(pifs_conf_endpoint(bad[i], out, sizeof(out)), -EINVAL, "'%s'", bad[i]);
}

Test(config, refuses_an_endpoint_that_does_not_fit)
{
	char out[16];

	cr_assert_eq(pifs_conf_endpoint("a.example:7000", out, sizeof(out)), -ERANGE);
	cr_assert_eq(pifs_conf_endpoint("a:7000", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "tcp://a:7000");
}
