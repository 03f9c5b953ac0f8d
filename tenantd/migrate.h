/* migrate.h -- brings a database's schema up to the migrations shipped with Aegis.
 *
 * Migrations are files NNNN_name.sql in one folder, applied in order of NNNN, each in its own
 * transaction, and recorded with the SHA-256 of its text in schema_migrations. Applied files
 * are immutable: if one has changed, vanished, or a new file sorts before an applied one, the
 * run is refused before anything is applied. A session advisory lock keeps two runners from
 * interleaving. Nothing returned needs freeing.
 */
#ifndef AEGIS_MIGRATE_H
#define AEGIS_MIGRATE_H

#include <libpq-fe.h>

struct migrate_result {
	int applied;   /* files applied by this run */
	int current;   /* files that were already applied */
};

/* Returns 0 when the schema is up to date, or -1 after logging why it is not (a refused
 * change, an unreadable file, or the failing migration with the server's message; the
 * failing migration is rolled back, those before it stay applied). */
int migrate_run(PGconn *conn, const char *dir, struct migrate_result *result)
	__attribute__((warn_unused_result));

#endif
