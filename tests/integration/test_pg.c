/* test_pg.c -- the libpq helper against the real database: parameters stay values, errors
 * come back as NULL/-1, scripts report the failing line. Needs AEGIS_PG_DSN. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"

static PGconn *connect_or_fail(void)
{
	const char *dsn = getenv("AEGIS_PG_DSN");
	cr_assert(dsn && *dsn, "AEGIS_PG_DSN is not set; run under scripts/test.sh");
	PGconn *conn = pg_connect(dsn);
	cr_assert_not_null(conn);
	return conn;
}

Test(pg, parameters_are_values_never_sql)
{
	auto_pqfinish PGconn *conn = connect_or_fail();
	const char *hostile = "x'); DROP TABLE pg_test_victim; --";
	cr_assert_eq(pg_command(conn, "CREATE TEMP TABLE pg_test_victim (v text)"), 0);
	cr_assert_eq(pg_command(conn, "INSERT INTO pg_test_victim (v) VALUES ($1)", hostile), 0);
	auto_pqclear PGresult *res = pg_query(conn, "SELECT v, $1::int + $2::int FROM pg_test_victim",
					      "40", "2");
	cr_assert_not_null(res);
	cr_assert_eq(PQntuples(res), 1);
	cr_assert_str_eq(PQgetvalue(res, 0, 0), hostile);
	cr_assert_str_eq(PQgetvalue(res, 0, 1), "42");
}

Test(pg, null_parameter_is_sql_null)
{
	auto_pqfinish PGconn *conn = connect_or_fail();
	auto_pqclear PGresult *res = pg_query(conn, "SELECT $1::text IS NULL", NULL);
	cr_assert_not_null(res);
	cr_assert_str_eq(PQgetvalue(res, 0, 0), "t");
}

Test(pg, failing_statement_returns_null_and_connection_stays_usable)
{
	auto_pqfinish PGconn *conn = connect_or_fail();
	PGresult *bad = pg_query(conn, "SELECT no_such_column FROM pg_class");
	cr_assert_null(bad);
	cr_assert_eq(pg_command(conn, "SELECT 1/$1::int", "0"), -1);
	auto_pqclear PGresult *ok = pg_query(conn, "SELECT 1");
	cr_assert_not_null(ok);
}

Test(pg, script_error_names_the_line)
{
	auto_pqfinish PGconn *conn = connect_or_fail();
	char err[512] = "";
	cr_assert_eq(pg_run_script(conn, "SELECT 1;\nSELECT 2;\nSELECT nope FROM pg_class;\n", err,
				   sizeof err), -1);
	cr_assert(strstr(err, "line 3:"), "%s", err);
	cr_assert(strstr(err, "nope"), "%s", err);
	cr_assert_eq(pg_run_script(conn, "SELECT 1; SELECT 2;", err, sizeof err), 0);
}

Test(pg, unreachable_server_gives_null)
{
	cr_assert_null(pg_connect("host=127.0.0.1 port=1 connect_timeout=2"));
}
