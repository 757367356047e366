package postgres

import (
	"context"
	"errors"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"

	"github.com/simgate/simgate/store/internal/schema"
	"github.com/simgate/simgate/store/postgres/pgtest"
)

// newDatabase creates an empty database for the test (pgtest.NewDatabase).
func newDatabase(t *testing.T) string { return pgtest.NewDatabase(t) }

func versions(t *testing.T, dsn string) []int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// The embedded schema applies to an empty database, once: a second Open
// finds it up to date.
func TestOpenMigrates(t *testing.T) {
	dsn := newDatabase(t)
	ctx := context.Background()
	ms, err := schema.Load(migrationsFS, "migrations")
	if err != nil || len(ms) == 0 {
		t.Fatalf("embedded migrations: %d, %v", len(ms), err)
	}
	db, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(db.Applied()); got != len(ms) {
		t.Fatalf("applied %d migrations, want %d", got, len(ms))
	}
	db.Close()
	db, err = Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := db.Applied(); len(got) != 0 {
		t.Fatalf("the second Open applied %v", got)
	}
	if got := versions(t, dsn); len(got) != len(ms) || got[len(got)-1] != schema.Latest(ms) {
		t.Fatalf("recorded versions %v", got)
	}
}

// Hosts that start together on a new database apply each migration once.
func TestOpenConcurrently(t *testing.T) {
	dsn := newDatabase(t)
	fsys := fstest.MapFS{
		"migrations/0001_one.sql": {Data: []byte(`CREATE TABLE one (id BIGINT PRIMARY KEY);`)},
		"migrations/0002_two.sql": {Data: []byte(`CREATE TABLE two (id BIGINT PRIMARY KEY); INSERT INTO one VALUES (1);`)},
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	applied := 0
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := open(context.Background(), dsn, Options{}, fsys)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			applied += len(db.Applied())
			mu.Unlock()
			db.Close()
		}()
	}
	wg.Wait()
	if applied != 2 {
		t.Fatalf("%d migrations applied by five hosts, want each of the two once", applied)
	}
}

// A migration that fails leaves nothing of itself and names itself; the
// ones before it stay, and the fixed one applies on the next Open. A
// database newer than the build is refused, and the error names it
// without its password.
func TestOpenFailures(t *testing.T) {
	dsn := newDatabase(t)
	ctx := context.Background()
	fsys := fstest.MapFS{
		"migrations/0001_one.sql": {Data: []byte(`CREATE TABLE one (id BIGINT PRIMARY KEY);`)},
		"migrations/0002_two.sql": {Data: []byte(`CREATE TABLE two (id BIGINT PRIMARY KEY); SELECT nonsense FROM nowhere;`)},
	}
	if _, err := open(ctx, dsn, Options{}, fsys); err == nil || !strings.Contains(err.Error(), "0002_two") {
		t.Fatalf("a failing migration: %v; want an error naming 0002_two", err)
	}
	if got := versions(t, dsn); len(got) != 1 || got[0] != 1 {
		t.Fatalf("versions after the failure: %v, want [1]", got)
	}
	fsys["migrations/0002_two.sql"] = &fstest.MapFile{Data: []byte(`CREATE TABLE two (id BIGINT PRIMARY KEY);`)}
	db, err := open(ctx, dsn, Options{}, fsys)
	if err != nil || len(db.Applied()) != 1 {
		t.Fatalf("after the fix: %v, applied %v", err, db.Applied())
	}
	db.Close()

	delete(fsys, "migrations/0002_two.sql")
	u, _ := url.Parse(dsn)
	u.User = url.UserPassword(u.User.Username(), "hunter2-secret")
	_, err = open(ctx, u.String(), Options{}, fsys)
	var tooNew *schema.TooNewError
	if !errors.Is(err, schema.ErrTooNew) || !errors.As(err, &tooNew) || tooNew.Version != 2 || tooNew.Known != 1 {
		t.Fatalf("a newer schema: %v; want TooNewError 2 > 1", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("the error shows the password: %v", err)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:pw@h:5/db?sslmode=disable":     "postgres://u:xxxxx@h:5/db?sslmode=disable",
		"postgres://u@h/db":                          "postgres://u@h/db",
		"host=h port=5 dbname=db user=u password=pw": "host=h port=5 dbname=db user=u",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// A DB opens DefaultMaxConns connections at most, unless its connection
// string says how many (pool_max_conns), in either form.
func TestPoolSize(t *testing.T) {
	dsn := newDatabase(t)
	for _, c := range []struct {
		dsn  string
		want int32
	}{
		{dsn, max(DefaultMaxConns, int32(max(4, runtime.NumCPU())))}, // pgxpool's default: 4, or NumCPU
		{dsn + "&pool_max_conns=3", 3},
	} {
		db, err := Open(context.Background(), c.dsn, Options{})
		if err != nil {
			t.Fatal(err)
		}
		got := db.pool.Config().MaxConns
		db.Close()
		if got != c.want {
			t.Errorf("%s: %d connections at most, want %d", redact(c.dsn), got, c.want)
		}
	}
	for dsn, want := range map[string]bool{
		"postgres://u@h/db?sslmode=disable":                  false,
		"postgres://u@h/db?sslmode=disable&pool_max_conns=8": true,
		"postgres://u:pool_max_conns=8@h/db?sslmode=disable": false,
		"host=h dbname=db pool_max_conns=8":                  true,
		"host=h dbname=db":                                   false,
	} {
		if got := setsPoolSize(dsn); got != want {
			t.Errorf("setsPoolSize(%q) = %v, want %v", dsn, got, want)
		}
	}
}
