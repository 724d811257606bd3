package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	// PostgresURLEnv names the server for [Postgres]: a postgres:// URL of a
	// role allowed to create databases, as printed by `scripts/dev-postgres env`.
	PostgresURLEnv = "KAIZEN_TEST_POSTGRES_URL"

	postgresStartHint = `eval "$(scripts/dev-postgres up && scripts/dev-postgres env)", or run make test`
	postgresTimeout   = 30 * time.Second
	// postgresDBPrefix marks databases created by tests, for clean-up by hand.
	postgresDBPrefix = "kzt_"
)

// Postgres creates a fresh, empty database on the PostgreSQL server named by
// $KAIZEN_TEST_POSTGRES_URL (see scripts/dev-postgres), drops it when the
// test ends, and returns its URL. When the variable is unset or the server
// does not answer, the test is skipped, or fails under CI=true.
func Postgres(t testing.TB) string {
	t.Helper()
	admin, unavailable := postgresAdmin()
	if unavailable != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("testenv: %s; CI=true, so this fails instead of skipping; start PostgreSQL first: %s",
				unavailable, postgresStartHint)
		}
		t.Skipf("testenv: %s; to run this test: %s", unavailable, postgresStartHint)
	}
	ctx, cancel := context.WithTimeout(context.Background(), postgresTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, admin)
	var refused *pgconn.PgError
	if errors.As(err, &refused) { // it answers, but says no: stale environment?
		t.Fatalf("testenv: PostgreSQL at %s refuses the connection from %s"+
			" (re-run `eval \"$(scripts/dev-postgres env)\"`): %v", admin.Host, PostgresURLEnv, err)
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("testenv: PostgreSQL at %s does not answer: %v; start it: %s", admin.Host, err, postgresStartHint)
		}
		t.Skipf("testenv: PostgreSQL at %s does not answer: %v; to run this test: %s", admin.Host, err, postgresStartHint)
	}
	defer conn.Close(ctx)

	name := postgresDBPrefix + randomHex(8)
	// The name is ours (prefix and hex digits), so it needs no quoting.
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := dropPostgresDB(admin, name); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	u, err := postgresDBURL(os.Getenv(PostgresURLEnv), name)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return u
}

// postgresAdmin parses $KAIZEN_TEST_POSTGRES_URL; unavailable says why
// there is no server to use.
func postgresAdmin() (cfg *pgx.ConnConfig, unavailable string) {
	raw := os.Getenv(PostgresURLEnv)
	if raw == "" {
		return nil, "PostgreSQL is not configured: " + PostgresURLEnv + " is not set"
	}
	cfg, err := pgx.ParseConfig(raw)
	if err != nil {
		// The URL may hold a password: do not show it.
		return nil, PostgresURLEnv + " is not a PostgreSQL URL pgx can parse"
	}
	cfg.ConnectTimeout = 5 * time.Second
	return cfg, ""
}

func dropPostgresDB(admin *pgx.ConnConfig, name string) error {
	// The test's context is cancelled by the time cleanups run.
	ctx, cancel := context.WithTimeout(context.Background(), postgresTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	defer conn.Close(ctx)
	// FORCE: the code under test may have left connections open.
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// postgresDBURL is raw with its database replaced by name.
func postgresDBURL(raw, name string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", errors.New(PostgresURLEnv + " must be a postgres:// URL (not shown: it may hold a password)")
	}
	q := u.Query()
	if q.Has("dbname") { // pgx lets a query parameter name the database too
		q.Set("dbname", name)
		u.RawQuery = q.Encode()
	}
	u.Path, u.RawPath = "/"+name, ""
	return u.String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n/2)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}
