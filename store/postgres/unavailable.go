package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/simgate/simgate"
)

// conns is the connection pool, whose errors say when the database cannot
// be reached (unavailable): during a failover, a restart or a network
// outage every host's requests fail, and a client should hear "try again"
// (simgate.CodeUnavailable, the API's 503 with Retry-After) rather than an
// internal error. Transactions begun on it are the pool's; db.update marks
// their errors likewise.
type conns struct{ *pgxpool.Pool }

func (c conns) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := c.Pool.Exec(ctx, sql, args...)
	return tag, unavailable(err)
}

func (c conns) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rows, err := c.Pool.Query(ctx, sql, args...)
	if err != nil {
		return rows, unavailable(err)
	}
	return unavailableRows{rows}, nil
}

func (c conns) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return unavailableRow{c.Pool.QueryRow(ctx, sql, args...)}
}

func (c conns) Begin(ctx context.Context) (pgx.Tx, error) {
	tx, err := c.Pool.Begin(ctx)
	return tx, unavailable(err)
}

func (c conns) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	tx, err := c.Pool.BeginTx(ctx, opts)
	return tx, unavailable(err)
}

func (c conns) Acquire(ctx context.Context) (*pgxpool.Conn, error) {
	conn, err := c.Pool.Acquire(ctx)
	return conn, unavailable(err)
}

type unavailableRow struct{ pgx.Row }

func (r unavailableRow) Scan(dest ...any) error { return unavailable(r.Row.Scan(dest...)) }

type unavailableRows struct{ pgx.Rows }

func (r unavailableRows) Err() error { return unavailable(r.Rows.Err()) }

// unavailableError is an error of the database's reach: its cause, and the
// public simgate.CodeUnavailable error that clients see.
type unavailableError struct {
	err    error
	public *simgate.Error
}

func (e *unavailableError) Error() string   { return "the database cannot be reached: " + e.err.Error() }
func (e *unavailableError) Unwrap() []error { return []error{e.err, e.public} }

// RetryAfter is when a client may try again (the API's Retry-After).
func (e *unavailableError) RetryAfter() time.Duration { return time.Second }

// unavailable returns err marked as the database's unreachability when it
// is one: the connection could not be made or broke, or the server is
// shutting down, starting, out of connections, or a standby that takes no
// writes (a failover in progress). Any other error, and nil, is returned
// as it is, as is a context the caller ended.
func unavailable(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var ue *unavailableError
	if errors.As(err, &ue) {
		return err
	}
	if !unreachable(err) {
		return err
	}
	return &unavailableError{err: err,
		public: simgate.Errorf(simgate.CodeUnavailable, "the database cannot be reached; try again shortly")}
}

// unreachable reports whether err says that the database cannot be reached
// now, for a while (see unavailable).
func unreachable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"): // connection_exception
			return true
		case pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03": // admin_shutdown, crash_shutdown, cannot_connect_now
			return true
		case pe.Code == "53300": // too_many_connections
			return true
		case pe.Code == "25006": // read_only_sql_transaction: a standby, or a primary being demoted
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || pgconn.SafeToRetry(err)
}
