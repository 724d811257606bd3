package testenv

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestPostgresFreshDatabase checks that each call gets its own empty
// database, and that the database is gone once its test ends.
func TestPostgresFreshDatabase(t *testing.T) {
	t.Parallel()
	Postgres(t) // skip or fail here, not in the subtest
	var urls []string
	var leftOpen []*pgx.Conn
	defer func() {
		for _, c := range leftOpen {
			c.Close(context.Background()) // already terminated by the drop
		}
	}()
	for _, name := range []string{"first", "second"} {
		t.Run(name, func(t *testing.T) {
			u := Postgres(t)
			urls = append(urls, u)
			conn, err := pgx.Connect(t.Context(), u)
			if err != nil {
				t.Fatalf("connect to the new database: %v", err)
			}
			defer conn.Close(context.Background())
			var db string
			var tables int
			err = conn.QueryRow(t.Context(), `SELECT current_database(),
				(SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public')`).Scan(&db, &tables)
			if err != nil {
				t.Fatalf("query: %v", err)
			}
			if !strings.HasPrefix(db, postgresDBPrefix) || tables != 0 {
				t.Errorf("database %q with %d tables, want %s… and empty", db, tables, postgresDBPrefix)
			}
			if _, err := conn.Exec(t.Context(), "CREATE TABLE t (x int)"); err != nil {
				t.Errorf("create table: %v", err)
			}
			// Left connected on purpose: the drop must force it out.
			c, err := pgx.Connect(context.Background(), u)
			if err != nil {
				t.Fatalf("second connection: %v", err)
			}
			leftOpen = append(leftOpen, c)
		})
	}
	if len(urls) != 2 || urls[0] == urls[1] {
		t.Fatalf("URLs %q, want two different ones", urls)
	}
	admin, _ := postgresAdmin()
	conn, err := pgx.ConnectConfig(t.Context(), admin)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	for _, u := range urls {
		cfg, err := pgx.ParseConfig(u)
		if err != nil {
			t.Fatalf("parse %s: %v", u, err)
		}
		var n int
		err = conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_database WHERE datname = $1", cfg.Database).Scan(&n)
		if err != nil || n != 0 {
			t.Errorf("database %s after its test: count %d, %v; want dropped", cfg.Database, n, err)
		}
	}
}

func TestPostgresDBURL(t *testing.T) {
	tests := []struct {
		name, raw, want string
	}{
		{"socket", "postgres://postgres@/postgres?host=/run/pg&port=5433&sslmode=disable",
			"postgres://postgres@/kzt_1?host=/run/pg&port=5433&sslmode=disable"},
		{"tcp with password", "postgresql://u:p%40ss@127.0.0.1:5433/postgres",
			"postgresql://u:p%40ss@127.0.0.1:5433/kzt_1"},
		{"no database", "postgres://u@localhost", "postgres://u@localhost/kzt_1"},
		{"dbname parameter", "postgres://u@localhost/?dbname=postgres", "postgres://u@localhost/kzt_1?dbname=kzt_1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := postgresDBURL(tc.raw, "kzt_1")
			if err != nil || got != tc.want {
				t.Errorf("postgresDBURL(%q) = %q, %v; want %q", tc.raw, got, err, tc.want)
			}
		})
	}
	t.Run("keyword form", func(t *testing.T) {
		_, err := postgresDBURL("host=/run/pg password=hunter2", "kzt_1")
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("postgresDBURL of a keyword string: %v; want an error without the password", err)
		}
	})
}

func TestPostgresUnavailable(t *testing.T) {
	tests := []struct {
		name, url, want string
	}{
		{"unset", "", "is not set"},
		{"unparsable", "postgres://u:hunter2@[::1/x", "pgx can parse"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(PostgresURLEnv, tc.url)
			_, why := postgresAdmin()
			if !strings.Contains(why, tc.want) || strings.Contains(why, "hunter2") {
				t.Errorf("postgresAdmin() unavailable = %q, want %q and no password", why, tc.want)
			}
		})
	}
}
