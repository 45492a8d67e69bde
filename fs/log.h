/* log.h - messages for operators, on stderr.
 * Every line: time, program, level, message. Thread-safe (one write per line). */
#ifndef PIFS_LOG_H
#define PIFS_LOG_H

enum pifs_log_level { PIFS_LOG_ERROR, PIFS_LOG_WARN, PIFS_LOG_INFO, PIFS_LOG_DEBUG };

/* Name the program (borrowed, must outlive logging) and the level to show. */
void pifs_log_init(const char *prog, enum pifs_log_level level);

/* "error", "warn", "info", "debug" -> level; returns -EINVAL otherwise. */
int pifs_log_parse_level(const char *s);

void pifs_log(enum pifs_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pifs_err(...) pifs_log(PIFS_LOG_ERROR, __VA_ARGS__)
#define pifs_warn(...) pifs_log(PIFS_LOG_WARN, __VA_ARGS__)
#define pifs_info(...) pifs_log(PIFS_LOG_INFO, __VA_ARGS__)
#define pifs_debug(...) pifs_log(PIFS_LOG_DEBUG, __VA_ARGS__)

#endif
