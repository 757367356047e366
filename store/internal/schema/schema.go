// Package schema holds what the stores' migrations share, whatever the
// database: how migration files are named and read, what an applied
// migration is, and the refusal of a schema newer than the build.
package schema

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"time"
)

// ErrTooNew is matched (errors.Is) by the error a store's Open returns for a
// database whose schema is newer than this build of simgate knows. Use
// errors.As with *TooNewError for the versions.
var ErrTooNew = errors.New("database schema is newer than this simgate knows")

// TooNewError is returned by a store's Open for a database written by a
// newer simgate. Running against a schema it does not know could corrupt
// data, so simgate refuses.
type TooNewError struct {
	Path    string // the database: a file, or a connection string without its password
	Version int    // schema version found in the database
	Known   int    // newest schema version this build knows
}

// Error implements the error interface.
func (e *TooNewError) Error() string {
	return fmt.Sprintf("database %s has schema version %d, newer than this simgate knows (%d): "+
		"it was written by a newer simgate; upgrade simgate or restore a backup", e.Path, e.Version, e.Known)
}

// Is makes errors.Is(err, ErrTooNew) true.
func (e *TooNewError) Is(target error) bool { return target == ErrTooNew }

// Applied is a migration recorded in the database.
type Applied struct {
	Version   int
	Name      string // from the file name: "init" for 0001_init.sql
	AppliedAt time.Time
}

// String returns the migration's file name without ".sql", e.g. "0001_init".
func (m Applied) String() string {
	return fmt.Sprintf("%04d_%s", m.Version, m.Name)
}

// Migration is one migration file.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

var fileName = regexp.MustCompile(`^([0-9]{4})_([a-z0-9_]+)\.sql$`)

// Load reads dir/*.sql from fsys, in version order. A file is named
// NNNN_name.sql; versions start at 1 and have no gaps. It fails on a badly
// named file, a duplicate or a gap, so that a mistake in a new migration
// shows up in the first test run.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("cannot read migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil || e.IsDir() {
			return nil, fmt.Errorf("cannot read migrations: %q is not named NNNN_name.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		b, err := fs.ReadFile(fsys, dir+"/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("cannot read migration: %w", err)
		}
		ms = append(ms, Migration{Version: v, Name: m[2], SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("cannot read migrations: %04d_%s.sql should be version %d (versions start at 1, without gaps or duplicates)",
				m.Version, m.Name, i+1)
		}
	}
	return ms, nil
}

// Latest returns the newest version of ms, 0 when there is none.
func Latest(ms []Migration) int {
	if len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}
