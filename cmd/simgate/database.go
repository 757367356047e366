package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/api"
	"github.com/simgate/simgate/cluster"
	"github.com/simgate/simgate/console"
	"github.com/simgate/simgate/metrics"
	"github.com/simgate/simgate/modem"
	"github.com/simgate/simgate/queue"
	"github.com/simgate/simgate/store"
	"github.com/simgate/simgate/store/postgres"
	"github.com/simgate/simgate/verify"
	"github.com/simgate/simgate/webhook"
)

// Database drivers (database.driver).
const (
	driverSQLite   = "sqlite"
	driverPostgres = "postgres"
)

// Store is what the gateway needs of its database, whichever the driver:
// every store interface the parts declare, and the few writes only the App
// makes. *store.DB (SQLite) and *postgres.DB satisfy it.
type Store interface {
	verify.Store
	queue.Store
	modem.UsageStore
	modem.PINMemory
	api.KeyStore
	api.IdempotencyStore
	api.AlertStore
	api.BudgetStore
	api.Pinger
	api.WebhookService
	api.InboxService
	webhook.Store
	metrics.StoreSource
	console.Sessions
	console.Keys
	console.Records
	console.History
	console.SampleStore

	UpsertModem(ctx context.Context, id string, ident simgate.ModemIdentity) error
	RecordBalance(ctx context.Context, modemID string, at time.Time, amount *float64, raw string) error
	RecordBalanceLow(ctx context.Context, data any) (bool, error)
	CreateInboundCall(ctx context.Context, c *simgate.InboundCall) error
	RecentInboundCalls(ctx context.Context, since time.Time, limit int) ([]*simgate.InboundCall, error)
	CreateAPIKey(ctx context.Context, k *simgate.APIKey) error
	ListAPIKeys(ctx context.Context) ([]*simgate.APIKey, error)
	RevokeAPIKey(ctx context.Context, id string) error
	Applied() []store.AppliedMigration
	Close() error
}

var (
	_ Store = (*store.DB)(nil)
	_ Store = (*postgres.DB)(nil)
)

// sharedStore returns db as the nodes sharing it use it (cluster.Store),
// or nil for a SQLite file, which one process holds.
func sharedStore(db Store) cluster.Store {
	if pg, ok := db.(*postgres.DB); ok {
		return pg
	}
	return nil
}

// sharedBuckets returns db as the keeper of the API's rate-limit buckets
// for every node sharing it, or nil for a SQLite file, whose one process
// keeps them in memory.
func sharedBuckets(db Store) api.BucketStore {
	if pg, ok := db.(*postgres.DB); ok {
		return pg
	}
	return nil
}

// openDatabase opens (and migrates) the database of c: the SQLite file, or
// the PostgreSQL database. create makes a new SQLite file where a missing
// one existed before (simgate migrate).
func openDatabase(ctx context.Context, c DatabaseConfig, now simgate.Clock, logger *slog.Logger, create bool) (Store, error) {
	// A failed Open returns a nil Store, not a Store holding a nil pointer.
	switch c.Driver {
	case driverPostgres:
		db, err := postgres.Open(ctx, c.DSN, postgres.Options{Now: now, Logger: logger})
		if err != nil {
			return nil, err
		}
		return db, nil
	case driverSQLite, "":
		db, err := store.Open(ctx, c.Path, store.Options{Synchronous: c.Synchronous, Now: now, Logger: logger, Create: create})
		if err != nil {
			return nil, err
		}
		return db, nil
	}
	return nil, fmt.Errorf("cannot open database: driver %q is not sqlite or postgres", c.Driver)
}
