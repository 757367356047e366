package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/simgate/simgate"
)

// What the nodes sharing the database need of it beyond the state they
// share: their reports to each other (nodes), the queue's wake-ups
// (LISTEN/NOTIFY) and duties run by one node at a time (advisory locks).

// queueChannel is the channel the messages_queued_notify trigger notifies
// (migrations/0002_nodes.sql).
const queueChannel = "simgate_queue"

// Heartbeat records n as the report of node n.ID at the time of the
// transaction: its version, start, and modems. LastSeen and Leases of n
// are not read.
func (db *DB) Heartbeat(ctx context.Context, n simgate.Node) error {
	modems, err := json.Marshal(n.Modems)
	if err != nil {
		return fmt.Errorf("cannot record node %s: %w", n.ID, err)
	}
	if _, err := db.pool.Exec(ctx, `
		INSERT INTO nodes (id, version, started_at, last_seen, modems) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO UPDATE SET version = excluded.version, started_at = excluded.started_at,
			last_seen = excluded.last_seen, modems = excluded.modems
	`, n.ID, n.Version, n.StartedAt.UnixMilli(), db.txNow().UnixMilli(), modems); err != nil {
		return fmt.Errorf("cannot record node %s: %w", n.ID, err)
	}
	return nil
}

// Nodes returns the last report of every node, by id, with the leases each
// holds: its messages in sending.
func (db *DB) Nodes(ctx context.Context) ([]simgate.Node, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT n.id, n.version, n.started_at, n.last_seen, n.modems,
			(SELECT count(*) FROM messages m WHERE m.status = 'sending' AND m.lease_owner = n.id)
		FROM nodes n ORDER BY n.id
	`)
	if err != nil {
		return nil, fmt.Errorf("cannot list nodes: %w", err)
	}
	defer rows.Close()
	var nodes []simgate.Node
	for rows.Next() {
		var n simgate.Node
		var started, seen int64
		var modems []byte
		if err := rows.Scan(&n.ID, &n.Version, &started, &seen, &modems, &n.Leases); err != nil {
			return nil, fmt.Errorf("cannot list nodes: %w", err)
		}
		n.StartedAt, n.LastSeen = time.UnixMilli(started).UTC(), time.UnixMilli(seen).UTC()
		if err := json.Unmarshal(modems, &n.Modems); err != nil {
			return nil, fmt.Errorf("cannot list nodes: the modems of node %s: %w", n.ID, err)
		}
		nodes = append(nodes, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list nodes: %w", err)
	}
	return nodes, nil
}

// ListenQueue calls wake each time a message is queued by any node (the
// messages_queued_notify trigger), until ctx is done; it then returns nil.
// It holds a connection of its own. When that connection fails it logs,
// connects again after a pause, and calls wake once connected, since what
// was queued meanwhile was not announced; it returns an error only when it
// cannot listen at all (a bad connection string).
func (db *DB) ListenQueue(ctx context.Context, wake func()) error {
	cfg := db.pool.Config().ConnConfig.Copy()
	for pause := 100 * time.Millisecond; ; pause = min(2*pause, 5*time.Second) {
		err := db.listen(ctx, cfg, wake, func() { pause = 100 * time.Millisecond })
		if ctx.Err() != nil {
			return nil
		}
		db.logger.Warn("lost the queue's notifications; listening again", "error", err, "in", pause)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// listen connects with cfg, listens on the queue's channel, calls wake and
// listening (which resets the caller's pause), then calls wake for each
// notification until the connection fails or ctx is done.
func (db *DB) listen(ctx context.Context, cfg *pgx.ConnConfig, wake, listening func()) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+queueChannel); err != nil {
		return err
	}
	listening()
	wake()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		wake()
	}
}

// RunExclusive runs fn unless another node runs the duty of the same name,
// and reports whether fn ran: a session advisory lock, keyed by the duty's
// name, is held on a connection of the pool while fn runs. When the node
// dies, its connection closes and the lock goes with it.
func (db *DB) RunExclusive(ctx context.Context, duty string, fn func(context.Context) error) (bool, error) {
	h := fnv.New64a()
	h.Write([]byte("simgate duty " + duty))
	key := int64(h.Sum64())
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("cannot take duty %s: %w", duty, err)
	}
	defer conn.Release()
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		return false, fmt.Errorf("cannot take duty %s: %w", duty, err)
	}
	if !ok {
		return false, nil
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, key); err != nil {
			// A lock left on a pooled connection would keep the duty from
			// every other node: close the connection, which drops it.
			conn.Conn().Close(uctx)
		}
	}()
	return true, fn(ctx)
}
