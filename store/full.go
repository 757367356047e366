package store

import (
	"errors"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/simgate/simgate"
)

// ErrDiskFull is matched (errors.Is) by the error of a write that SQLite
// refused because the disk, or the database's size limit, is full.
var ErrDiskFull = errors.New("the database's disk is full")

// fullRetry is when a client refused for a full disk may try again.
const fullRetry = time.Minute

// fullError is a write refused for a full disk: a 503 with Retry-After for
// clients, which says so (CodeUnavailable), instead of an internal error.
type fullError struct {
	err    error
	public *simgate.Error
}

func (e *fullError) Error() string                 { return ErrDiskFull.Error() + ": " + e.err.Error() }
func (e *fullError) Unwrap() []error               { return []error{e.public, ErrDiskFull, e.err} }
func (e *fullError) RetryAfter() (d time.Duration) { return fullRetry }

// checkFull turns SQLite's "database or disk is full" into a fullError.
func (db *DB) checkFull(err error) error {
	var se sqlite3.Error
	if err == nil || !errors.As(err, &se) || se.Code != sqlite3.ErrFull {
		return err
	}
	return &fullError{err: err, public: simgate.Errorf(simgate.CodeUnavailable,
		"the database's disk is full: nothing can be stored until space is freed on the volume of %s", db.path)}
}
