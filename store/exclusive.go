package store

import "context"

// RunExclusive runs fn and reports that it ran: only one process opens a
// SQLite database (the unix-excl VFS), so no other runs the duty. It is the
// SQLite side of what several nodes on PostgreSQL share out with advisory
// locks (store/postgres/node.go).
func (db *DB) RunExclusive(ctx context.Context, duty string, fn func(context.Context) error) (bool, error) {
	return true, fn(ctx)
}
