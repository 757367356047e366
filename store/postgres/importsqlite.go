package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The copy of a SQLite database (store) into an empty PostgreSQL one, for
// simgate migrate --from sqlite:PATH --to postgres:DSN. Both schemas have
// the same tables and columns, of matching types
// (store/postgres/migrations/0001_init.sql), but for the column rowid that
// three PostgreSQL tables have where SQLite's rowid is implicit. The copy
// reads both schemas and refuses any table or column it would not copy, so
// that a table added to one store and not to the other, or to importTables,
// fails the copy (and its test) instead of being left behind.

// SQLiteSource is the SQLite database ImportSQLite copies. *store.DB
// satisfies it.
type SQLiteSource interface {
	// ReadSnapshot runs fn in one read transaction, which sees one state
	// of the database, and returns fn's error.
	ReadSnapshot(ctx context.Context, fn func(*sql.Tx) error) error
}

// ErrNotEmpty is matched (errors.Is) by the error ImportSQLite returns for a
// database that holds simgate rows already.
var ErrNotEmpty = errors.New("the PostgreSQL database holds simgate data already")

// TableCount is a table and how many rows it holds, in the SQLite database
// and in PostgreSQL alike once ImportSQLite has copied it.
type TableCount struct {
	Table string
	Rows  int64
}

// importTable is a table of the schema as ImportSQLite copies it.
type importTable struct {
	name string
	// later is a column that the copy leaves NULL and fills in once every
	// table is copied: it refers to a table copied after this one, which
	// refers back to this one (PostgreSQL checks a foreign key at once).
	later string
	// countedByTriggers marks status_counts: the copy does not write it.
	// PostgreSQL's insert triggers of messages and verifications count the
	// copied rows into it, as they count every new row, and the copy checks
	// that their counts are SQLite's.
	countedByTriggers bool
	// seeded is a condition on the table that holds for the rows the
	// PostgreSQL migrations write (the default service, 0006): the check
	// that the database is empty passes over them, and the copy deletes
	// them before it copies SQLite's, which the SQLite migrations wrote
	// alike.
	seeded string
}

// importTables returns every table of the schema but schema_migrations (each
// store keeps its own), in the order ImportSQLite copies them: each after the
// tables its foreign keys refer to, and webhook_subscriptions last. While it
// is empty, PostgreSQL's insert triggers of alerts, inbound_messages and
// inbound_calls write no webhook event (they write one only for a subscribed
// type), so that the outbox holds the events SQLite's triggers wrote, copied,
// and no others. The update triggers (modem_hourly's, the text a sent
// verification SMS forgets) do not fire: the copy only inserts.
func importTables() []importTable {
	return []importTable{
		{name: "api_keys"},
		{name: "modems"},
		{name: "services", seeded: "id = 'VA00000000000000000000000000000000'"},
		{name: "verifications", later: "message_id"},
		{name: "messages"},
		{name: "message_parts"},
		{name: "message_events"},
		{name: "status_reports"},
		{name: "late_submits"},
		{name: "verification_sends"},
		{name: "check_failures"},
		{name: "inbound_messages"},
		{name: "inbound_calls"},
		{name: "alerts"},
		{name: "modem_daily_usage"},
		{name: "idempotency_keys"},
		{name: "opt_outs"},
		{name: "console_sessions"},
		{name: "webhook_events"},
		{name: "webhook_deliveries"},
		{name: "webhook_modem_states"},
		{name: "heartbeat"},
		{name: "modem_hourly"},
		{name: "queue_hourly"},
		{name: "sim_balances"},
		{name: "budget_counts"},
		{name: "rejected_pins"},
		{name: "status_counts", countedByTriggers: true},
		{name: "webhook_subscriptions"},
	}
}

// postgresOnly are the tables of PostgreSQL's schema that have no
// counterpart in SQLite's, which the copy leaves as they are: nodes holds
// what the running nodes report of themselves (a SQLite database has one
// node, which reports to no one), written again within a second of a
// node's start; rate_buckets the API's rate limits shared by the nodes (a
// SQLite node keeps them in memory, and a restart forgets them).
var postgresOnly = map[string]bool{"nodes": true, "rate_buckets": true}

// ImportSQLite copies the SQLite database src into db, which must hold no
// simgate rows but the default service its migrations wrote (ErrNotEmpty
// otherwise), in one transaction: all of it or,
// on any error, nothing. Every value is copied as it is stored (times stay
// unix milliseconds, key and code hashes, PIN fingerprints and sealed texts
// byte for byte); a value PostgreSQL cannot hold as it is (text that is not
// UTF-8 or holds a NUL, an integer too large for an integer column) fails
// the copy with an error naming its table, row and column, and one that
// breaks a constraint of PostgreSQL's with an error naming its table, row
// and the constraint; neither shows the row's values. The identities keep their values, and their sequences continue
// after the largest (or after SQLite's AUTOINCREMENT counter, when that is
// larger), so that new rows take new ids. Before it commits, it counts the
// rows of each table on both sides; it returns those counts, by table
// name, and fails when any differs.
//
// src must be at the schema version of this build (store.Open brings it
// there), and db's schema up to date (Open does that): the copy refuses a
// table or a column that it does not know on either side.
func (db *DB) ImportSQLite(ctx context.Context, src SQLiteSource) ([]TableCount, error) {
	var counts []TableCount
	err := src.ReadSnapshot(ctx, func(s *sql.Tx) error {
		return db.update(ctx, "copy", func(t *tx) error {
			var err error
			counts, err = db.importSnapshot(ctx, s, t.Tx)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return counts, nil
}

// importSnapshot is ImportSQLite in its two transactions.
func (db *DB) importSnapshot(ctx context.Context, s *sql.Tx, t pgx.Tx) ([]TableCount, error) {
	plans, err := planImport(ctx, s, t)
	if err != nil {
		return nil, err
	}
	if err := db.lockEmpty(ctx, t, plans); err != nil {
		return nil, err
	}
	for _, p := range plans {
		if p.countedByTriggers {
			continue
		}
		if p.seeded != "" {
			if _, err := t.Exec(ctx, `DELETE FROM `+pgx.Identifier{p.name}.Sanitize()+` WHERE `+p.seeded); err != nil {
				return nil, fmt.Errorf("cannot copy table %s: %w", p.name, err)
			}
		}
		if _, err := copyRows(ctx, s, t, p, p.name, p.copied, ""); err != nil {
			return nil, err
		}
	}
	for _, p := range plans {
		if p.later != "" {
			if err := copyLater(ctx, s, t, p); err != nil {
				return nil, err
			}
		}
	}
	if err := checkStatusCounts(ctx, s, t); err != nil {
		return nil, err
	}
	for _, p := range plans {
		if err := continueIdentities(ctx, t, p); err != nil {
			return nil, err
		}
	}
	return countBoth(ctx, s, t, plans)
}

// importColumn is a column the copy writes.
type importColumn struct {
	name     string // the same in both databases; rowid is SQLite's implicit one
	sqlite   string // SQLite's declared type, lower case
	pg       string // PostgreSQL's type (information_schema's data_type)
	identity bool   // PostgreSQL generates it (GENERATED ALWAYS AS IDENTITY)
}

// tablePlan is how one table is copied, as read from both schemas.
type tablePlan struct {
	importTable
	cols   []importColumn // every column of the table, in PostgreSQL's order
	copied []importColumn // those the first pass writes: all but later
	pk     []string       // SQLite's primary key, in order
	key    []string       // what names a row in errors: rowid, or pk in a table without one
	seq    int64          // SQLite's AUTOINCREMENT counter of the table; 0 when it has none
}

// planImport reads both schemas and matches them to importTables: the same
// tables on both sides, each column of a type it converts, and every
// identity column SQLite's rowid.
func planImport(ctx context.Context, s *sql.Tx, t pgx.Tx) ([]*tablePlan, error) {
	sqliteTables, err := sqliteSchema(ctx, s)
	if err != nil {
		return nil, err
	}
	pgTables, err := pgSchema(ctx, t)
	if err != nil {
		return nil, err
	}
	seqs, err := sqliteSequences(ctx, s)
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	var plans []*tablePlan
	var problems []string
	for _, it := range importTables() {
		known[it.name] = true
		st, ok := sqliteTables[it.name]
		if !ok {
			problems = append(problems, fmt.Sprintf("the SQLite database has no table %s", it.name))
			continue
		}
		pt, ok := pgTables[it.name]
		if !ok {
			problems = append(problems, fmt.Sprintf("the PostgreSQL database has no table %s", it.name))
			continue
		}
		p, ps := matchTable(it, st, pt)
		problems = append(problems, ps...)
		p.seq = seqs[it.name]
		plans = append(plans, p)
	}
	for _, side := range []struct {
		name   string
		tables []string
	}{{"SQLite", slices.Sorted(maps.Keys(sqliteTables))}, {"PostgreSQL", slices.Sorted(maps.Keys(pgTables))}} {
		for _, name := range side.tables {
			if !known[name] && !(side.name == "PostgreSQL" && postgresOnly[name]) {
				problems = append(problems, fmt.Sprintf("the %s database has a table %s, which this simgate does not copy", side.name, name))
			}
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("cannot copy: the two schemas are not the ones this simgate copies: %s",
			strings.Join(problems, "; "))
	}
	return plans, nil
}

// sqliteTable is a SQLite table's columns and whether it has a rowid.
type sqliteTable struct {
	cols  map[string]sqliteColumn
	rowid bool // not WITHOUT ROWID
}

type sqliteColumn struct {
	typ string // declared, lower case
	pk  int    // its place in the primary key, from 1; 0 when not in it
}

// sqliteSchema returns the tables of s but SQLite's own and
// schema_migrations.
func sqliteSchema(ctx context.Context, s *sql.Tx) (map[string]*sqliteTable, error) {
	rows, err := s.QueryContext(ctx, `
		SELECT name, wr FROM pragma_table_list
		WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name <> 'schema_migrations'
	`)
	if err != nil {
		return nil, fmt.Errorf("cannot read the SQLite schema: %w", err)
	}
	tables := map[string]*sqliteTable{}
	for rows.Next() {
		var name string
		var withoutRowid bool
		if err := rows.Scan(&name, &withoutRowid); err != nil {
			rows.Close()
			return nil, fmt.Errorf("cannot read the SQLite schema: %w", err)
		}
		tables[name] = &sqliteTable{cols: map[string]sqliteColumn{}, rowid: !withoutRowid}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("cannot read the SQLite schema: %w", err)
	}
	for name, st := range tables {
		rows, err := s.QueryContext(ctx, `SELECT name, lower(type), pk FROM pragma_table_xinfo(?)`, name)
		if err != nil {
			return nil, fmt.Errorf("cannot read the columns of SQLite table %s: %w", name, err)
		}
		for rows.Next() {
			var col string
			var c sqliteColumn
			if err := rows.Scan(&col, &c.typ, &c.pk); err != nil {
				rows.Close()
				return nil, fmt.Errorf("cannot read the columns of SQLite table %s: %w", name, err)
			}
			st.cols[col] = c
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, fmt.Errorf("cannot read the columns of SQLite table %s: %w", name, err)
		}
	}
	return tables, nil
}

// sqliteSequences returns SQLite's AUTOINCREMENT counters by table: the
// largest rowid each such table ever had, which may be larger than the
// largest it has now.
func sqliteSequences(ctx context.Context, s *sql.Tx) (map[string]int64, error) {
	seqs := map[string]int64{}
	var exists bool
	if err := s.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_sequence')`).Scan(&exists); err != nil {
		return nil, fmt.Errorf("cannot read SQLite's sequences: %w", err)
	} else if !exists {
		return seqs, nil
	}
	rows, err := s.QueryContext(ctx, `SELECT name, seq FROM sqlite_sequence`)
	if err != nil {
		return nil, fmt.Errorf("cannot read SQLite's sequences: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var seq int64
		if err := rows.Scan(&name, &seq); err != nil {
			return nil, fmt.Errorf("cannot read SQLite's sequences: %w", err)
		}
		seqs[name] = seq
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read SQLite's sequences: %w", err)
	}
	return seqs, nil
}

// pgColumn is a PostgreSQL column as information_schema describes it.
type pgColumn struct {
	name     string
	typ      string
	identity bool
}

// pgSchema returns the tables of the current schema of t but
// schema_migrations, with their columns in order.
func pgSchema(ctx context.Context, t pgx.Tx) (map[string][]pgColumn, error) {
	rows, err := t.Query(ctx, `
		SELECT c.table_name, c.column_name, c.data_type, c.is_identity = 'YES'
		FROM information_schema.columns c
		JOIN information_schema.tables t USING (table_schema, table_name)
		WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' AND c.table_name <> 'schema_migrations'
		ORDER BY c.table_name, c.ordinal_position
	`)
	if err != nil {
		return nil, fmt.Errorf("cannot read the PostgreSQL schema: %w", err)
	}
	defer rows.Close()
	tables := map[string][]pgColumn{}
	for rows.Next() {
		var table string
		var c pgColumn
		if err := rows.Scan(&table, &c.name, &c.typ, &c.identity); err != nil {
			return nil, fmt.Errorf("cannot read the PostgreSQL schema: %w", err)
		}
		tables[table] = append(tables[table], c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read the PostgreSQL schema: %w", err)
	}
	return tables, nil
}

// matchTable pairs the columns of one table and says what does not match.
func matchTable(it importTable, st *sqliteTable, pt []pgColumn) (*tablePlan, []string) {
	p := &tablePlan{importTable: it}
	var problems []string
	used := map[string]bool{}
	for _, pc := range pt {
		c := importColumn{name: pc.name, pg: pc.typ, identity: pc.identity}
		sc, ok := st.cols[pc.name]
		switch {
		case ok:
			c.sqlite = sc.typ
			used[pc.name] = true
		case pc.name == "rowid" && st.rowid:
			c.sqlite = "integer"
		case it.countedByTriggers && pc.identity:
			// The key of PostgreSQL's log of counts (0004), which the copy
			// does not write.
			continue
		default:
			problems = append(problems, fmt.Sprintf("column %s.%s is not in the SQLite database", it.name, pc.name))
			continue
		}
		if !convertible(c.sqlite, c.pg) {
			problems = append(problems, fmt.Sprintf("column %s.%s is %s in SQLite and %s in PostgreSQL, which the copy does not convert",
				it.name, c.name, c.sqlite, c.pg))
		}
		// An identity is the rowid: SQLite's implicit one, or the
		// INTEGER PRIMARY KEY that names it.
		if c.identity && c.name != "rowid" && !(sc.pk == 1 && sc.typ == "integer" && primaryKeyColumns(st) == 1) {
			problems = append(problems, fmt.Sprintf("identity column %s.%s is not SQLite's rowid", it.name, c.name))
		}
		p.cols = append(p.cols, c)
		if c.name != it.later {
			p.copied = append(p.copied, c)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(st.cols)) {
		if !used[name] {
			problems = append(problems, fmt.Sprintf("column %s.%s is not in the PostgreSQL database", it.name, name))
		}
	}
	for name, c := range st.cols {
		if c.pk > 0 {
			p.pk = append(p.pk, name)
		}
	}
	sort.Slice(p.pk, func(i, j int) bool { return st.cols[p.pk[i]].pk < st.cols[p.pk[j]].pk })
	p.key = p.pk
	if st.rowid {
		p.key = []string{"rowid"}
	}
	if it.later != "" && (len(p.pk) != 1 || !used[it.later]) {
		problems = append(problems, fmt.Sprintf("%s.%s cannot be copied last: the table needs a primary key of one column", it.name, it.later))
	}
	return p, problems
}

// primaryKeyColumns returns how many columns st's primary key has.
func primaryKeyColumns(st *sqliteTable) int {
	n := 0
	for _, c := range st.cols {
		if c.pk > 0 {
			n++
		}
	}
	return n
}

// convertible reports whether a SQLite column of type from is copied into
// a PostgreSQL column of type to: the types the two migrations pair.
func convertible(from, to string) bool {
	switch from {
	case "integer":
		return to == "bigint" || to == "integer"
	case "text":
		return to == "text"
	case "blob":
		return to == "bytea"
	case "real":
		return to == "double precision"
	}
	return false
}

// convert returns the value v of SQLite column c as the copy writes it into
// PostgreSQL; its errors say what is wrong, not the value.
func (c importColumn) convert(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch c.sqlite {
	case "integer":
		n, ok := v.(int64)
		if !ok {
			return nil, fmt.Errorf("holds %s, not an integer", sqliteKind(v))
		}
		if c.pg == "integer" {
			if n < math.MinInt32 || n > math.MaxInt32 {
				return nil, fmt.Errorf("%d is beyond PostgreSQL's integer", n)
			}
			return int32(n), nil
		}
		return n, nil
	case "text":
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("holds %s, not text", sqliteKind(v))
		}
		if !utf8.ValidString(s) {
			return nil, fmt.Errorf("holds text that is not valid UTF-8, which PostgreSQL's text refuses")
		}
		if strings.IndexByte(s, 0) >= 0 {
			return nil, fmt.Errorf("holds text with a NUL character, which PostgreSQL's text refuses")
		}
		return s, nil
	case "blob":
		b, ok := v.([]byte)
		if !ok {
			return nil, fmt.Errorf("holds %s, not a blob", sqliteKind(v))
		}
		return b, nil
	case "real":
		f, ok := v.(float64)
		if !ok {
			return nil, fmt.Errorf("holds %s, not a real", sqliteKind(v))
		}
		return f, nil
	}
	return nil, fmt.Errorf("is of SQLite type %s, which the copy does not convert", c.sqlite)
}

// sqliteKind names the storage class of a value read from SQLite.
func sqliteKind(v any) string {
	switch v.(type) {
	case int64:
		return "an integer"
	case float64:
		return "a real"
	case string:
		return "text"
	case []byte:
		return "a blob"
	}
	return fmt.Sprintf("a %T", v)
}

// lockEmpty locks the tables of plans against writes by others until the
// copy commits, then refuses to copy when any holds a row but those the
// migrations seeded.
func (db *DB) lockEmpty(ctx context.Context, t pgx.Tx, plans []*tablePlan) error {
	names := make([]string, len(plans))
	for i, p := range plans {
		names[i] = pgx.Identifier{p.name}.Sanitize()
	}
	if _, err := t.Exec(ctx, `LOCK TABLE `+strings.Join(names, ", ")+` IN EXCLUSIVE MODE`); err != nil {
		return fmt.Errorf("cannot lock the tables of %s: %w", db.name, err)
	}
	var full []string
	for i, p := range plans {
		var has bool
		q := `SELECT EXISTS (SELECT 1 FROM ` + names[i] + `)`
		if p.seeded != "" {
			q = `SELECT EXISTS (SELECT 1 FROM ` + names[i] + ` WHERE NOT (` + p.seeded + `))`
		}
		if err := t.QueryRow(ctx, q).Scan(&has); err != nil {
			return fmt.Errorf("cannot read %s of %s: %w", p.name, db.name, err)
		}
		if has {
			full = append(full, p.name)
		}
	}
	if len(full) > 0 {
		return fmt.Errorf("cannot copy into %s: %w: %s hold rows; copy into a new, empty database", db.name, ErrNotEmpty,
			strings.Join(full, ", "))
	}
	return nil
}

// copyRows copies the rows of SQLite table p.name that match where ("":
// all) into the PostgreSQL table into, its columns cols, with COPY: rows of
// a table come in rowid order. COPY writes the identities' values as given
// (PostgreSQL takes a given value in COPY whatever GENERATED ALWAYS says,
// where an INSERT would need OVERRIDING SYSTEM VALUE), and fires the row
// triggers as an INSERT does. It returns how many rows it copied.
func copyRows(ctx context.Context, s *sql.Tx, t pgx.Tx, p *tablePlan, into string, cols []importColumn, where string) (int64, error) {
	exprs := make([]string, 0, len(p.key)+len(cols))
	for _, k := range p.key {
		exprs = append(exprs, sqliteIdent(k))
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		exprs = append(exprs, sqliteIdent(c.name))
		names[i] = c.name
	}
	q := `SELECT ` + strings.Join(exprs, ", ") + ` FROM ` + sqliteIdent(p.name)
	if where != "" {
		q += ` WHERE ` + where
	}
	if slices.Equal(p.key, []string{"rowid"}) {
		q += ` ORDER BY rowid`
	}
	rows, err := s.QueryContext(ctx, q)
	if err != nil {
		return 0, fmt.Errorf("cannot read SQLite table %s: %w", p.name, err)
	}
	defer rows.Close()
	src := newSQLiteRows(p, cols, rows)
	n, err := t.CopyFrom(ctx, pgx.Identifier{into}, names, src)
	if err := src.Err(); err != nil {
		return 0, fmt.Errorf("cannot read SQLite table %s: %w", p.name, err)
	}
	if err != nil {
		if src.bad != nil {
			return 0, src.bad
		}
		return 0, fmt.Errorf("cannot copy table %s, %s: %w", p.name, refusedRow(ctx, s, q, p, err), err)
	}
	return n, nil
}

// copyLine finds the line of COPY that PostgreSQL refused in its error.
var copyLine = regexp.MustCompile(`^COPY [^,]+, line ([0-9]+)`)

// refusedRow names the row that PostgreSQL refused in err (a constraint
// the value breaks there), which COPY names by its place among the rows
// sent: query q, run again on the same snapshot, finds it. The error names
// the constraint; its detail, which shows the row's values, is left out.
func refusedRow(ctx context.Context, s *sql.Tx, q string, p *tablePlan, err error) string {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return "a row"
	}
	m := copyLine.FindStringSubmatch(pe.Where)
	if m == nil {
		return "a row"
	}
	line, _ := strconv.ParseInt(m[1], 10, 64)
	rows, qerr := s.QueryContext(ctx, q+` LIMIT 1 OFFSET ?`, line-1)
	if qerr != nil {
		return "row " + m[1] + " in copy order"
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	vals := make([]any, len(cols))
	dest := make([]any, len(cols))
	for i := range vals {
		dest[i] = &vals[i]
	}
	if !rows.Next() || rows.Scan(dest...) != nil {
		return "row " + m[1] + " in copy order"
	}
	return rowName(p.key, vals)
}

// sqliteRows is the rows of a SQLite query as pgx.CopyFromSource: the key
// columns (that name a row in errors) first, then cols.
type sqliteRows struct {
	p    *tablePlan
	cols []importColumn
	rows *sql.Rows
	vals []any // the row read: key columns, then cols
	dest []any // pointers to vals
	out  []any // cols converted
	err  error // of reading SQLite
	bad  error // of a value that cannot be copied
}

func newSQLiteRows(p *tablePlan, cols []importColumn, rows *sql.Rows) *sqliteRows {
	r := &sqliteRows{p: p, cols: cols, rows: rows, vals: make([]any, len(p.key)+len(cols)), out: make([]any, len(cols))}
	r.dest = make([]any, len(r.vals))
	for i := range r.vals {
		r.dest[i] = &r.vals[i]
	}
	return r
}

func (r *sqliteRows) Next() bool {
	if r.err != nil || !r.rows.Next() {
		return false
	}
	if err := r.rows.Scan(r.dest...); err != nil {
		r.err = err
		return false
	}
	return true
}

func (r *sqliteRows) Values() ([]any, error) {
	vals := r.vals[len(r.p.key):]
	for i, c := range r.cols {
		v, err := c.convert(vals[i])
		if err != nil {
			r.bad = fmt.Errorf("cannot copy table %s, %s, column %s: it %w", r.p.name, r.row(), c.name, err)
			return nil, r.bad
		}
		r.out[i] = v
	}
	return r.out, nil
}

func (r *sqliteRows) Err() error {
	if r.err != nil {
		return r.err
	}
	return r.rows.Err()
}

// row names the row read last.
func (r *sqliteRows) row() string { return rowName(r.p.key, r.vals) }

// rowName names a row by the values of its key columns, the first of vals:
// its rowid, or its primary key. A blob in the key (a PIN fingerprint) is
// named by its length only.
func rowName(key []string, vals []any) string {
	parts := make([]string, len(key))
	for i, k := range key {
		switch v := vals[i].(type) {
		case []byte:
			parts[i] = fmt.Sprintf("%s (%d bytes)", k, len(v))
		case string:
			parts[i] = fmt.Sprintf("%s %q", k, v)
		default:
			parts[i] = fmt.Sprintf("%s %v", k, v)
		}
	}
	return "row " + strings.Join(parts, ", ")
}

// copyLater fills in p.later, which the first pass left NULL, from SQLite:
// the values go to a temporary table first, and one UPDATE joins them in.
// An UPDATE that does not set status fires none of the schema's triggers.
func copyLater(ctx context.Context, s *sql.Tx, t pgx.Tx, p *tablePlan) error {
	var key, later importColumn
	for _, c := range p.cols {
		switch c.name {
		case p.pk[0]:
			key = c
		case p.later:
			later = c
		}
	}
	pk := key.name
	table, temp := pgx.Identifier{p.name}.Sanitize(), "simgate_copy_"+p.name+"_"+p.later
	tempID, keyID, laterID := pgx.Identifier{temp}.Sanitize(), pgx.Identifier{pk}.Sanitize(), pgx.Identifier{p.later}.Sanitize()
	if _, err := t.Exec(ctx, `CREATE TEMPORARY TABLE `+tempID+` ON COMMIT DROP AS SELECT `+keyID+`, `+laterID+
		` FROM `+table+` WITH NO DATA`); err != nil {
		return fmt.Errorf("cannot copy %s.%s: %w", p.name, p.later, err)
	}
	n, err := copyRows(ctx, s, t, p, temp, []importColumn{key, later}, sqliteIdent(p.later)+` IS NOT NULL`)
	if err != nil {
		return err
	}
	tag, err := t.Exec(ctx, `UPDATE `+table+` SET `+laterID+` = l.`+laterID+` FROM `+tempID+` l WHERE `+table+`.`+keyID+` = l.`+keyID)
	if err != nil {
		return fmt.Errorf("cannot copy %s.%s: %w", p.name, p.later, err)
	}
	if tag.RowsAffected() != n {
		return fmt.Errorf("cannot copy %s.%s: %d rows have one in SQLite, %d were set", p.name, p.later, n, tag.RowsAffected())
	}
	if _, err := t.Exec(ctx, `DROP TABLE `+tempID); err != nil {
		return fmt.Errorf("cannot copy %s.%s: %w", p.name, p.later, err)
	}
	return nil
}

// checkStatusCounts checks status_counts, which PostgreSQL's insert triggers
// filled while messages and verifications were copied, against SQLite's.
// A status whose count went back to 0 keeps its row in SQLite; the
// triggers write no row for a status no copied row has, so those rows are
// copied. Every count must then be SQLite's: counted from the rows copied,
// it differs only where SQLite's count does not match SQLite's rows.
func checkStatusCounts(ctx context.Context, s *sql.Tx, t pgx.Tx) error {
	want, err := sqliteStatusCounts(ctx, s)
	if err != nil {
		return err
	}
	for k, n := range want {
		if n != 0 {
			continue
		}
		if _, err := t.Exec(ctx, `INSERT INTO status_counts (entity, status, n) VALUES ($1, $2, 0)`,
			k[0], k[1]); err != nil {
			return fmt.Errorf("cannot copy status_counts: %w", err)
		}
	}
	// A log of changes (migrations/0004_status_count_deltas.sql): the count
	// is the sum.
	rows, err := t.Query(ctx, `SELECT entity, status, sum(n)::bigint FROM status_counts GROUP BY entity, status`)
	if err != nil {
		return fmt.Errorf("cannot read status_counts: %w", err)
	}
	defer rows.Close()
	got := map[[2]string]int64{}
	for rows.Next() {
		var k [2]string
		var n int64
		if err := rows.Scan(&k[0], &k[1], &n); err != nil {
			return fmt.Errorf("cannot read status_counts: %w", err)
		}
		got[k] = n
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot read status_counts: %w", err)
	}
	var diffs []string
	for _, k := range slices.SortedFunc(maps.Keys(mergeKeys(want, got)), compareKeys) {
		w, inW := want[k]
		g, inG := got[k]
		if w != g || inW != inG {
			diffs = append(diffs, fmt.Sprintf("%s %s: %d in SQLite, %d counted from the copied rows", k[0], k[1], w, g))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("cannot copy: SQLite's status_counts does not match its messages and verifications: %s",
			strings.Join(diffs, "; "))
	}
	return nil
}

// sqliteStatusCounts returns SQLite's status_counts by entity and status.
func sqliteStatusCounts(ctx context.Context, s *sql.Tx) (map[[2]string]int64, error) {
	rows, err := s.QueryContext(ctx, `SELECT entity, status, n FROM status_counts`)
	if err != nil {
		return nil, fmt.Errorf("cannot read SQLite's status_counts: %w", err)
	}
	defer rows.Close()
	counts := map[[2]string]int64{}
	for rows.Next() {
		var k [2]string
		var n int64
		if err := rows.Scan(&k[0], &k[1], &n); err != nil {
			return nil, fmt.Errorf("cannot read SQLite's status_counts: %w", err)
		}
		counts[k] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read SQLite's status_counts: %w", err)
	}
	return counts, nil
}

// mergeKeys returns a set of the keys of a and b.
func mergeKeys(a, b map[[2]string]int64) map[[2]string]bool {
	keys := map[[2]string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	return keys
}

func compareKeys(a, b [2]string) int {
	if c := strings.Compare(a[0], b[0]); c != 0 {
		return c
	}
	return strings.Compare(a[1], b[1])
}

// continueIdentities moves the sequence of each identity column of p past
// the largest value copied, or past SQLite's AUTOINCREMENT counter when that
// is larger (an id AUTOINCREMENT gave out is never given again, also after
// its row was deleted), so that the next row takes the next id. A sequence
// of an empty table stays where it starts.
func continueIdentities(ctx context.Context, t pgx.Tx, p *tablePlan) error {
	table := pgx.Identifier{p.name}.Sanitize()
	var floor *int64
	if p.seq > 0 {
		floor = &p.seq
	}
	for _, c := range p.cols {
		if !c.identity {
			continue
		}
		if _, err := t.Exec(ctx, `
			SELECT setval(pg_get_serial_sequence($1, $2), v)
			FROM (SELECT GREATEST(max(`+pgx.Identifier{c.name}.Sanitize()+`), $3::bigint) AS v FROM `+table+`) AS largest
			WHERE v IS NOT NULL
		`, table, c.name, floor); err != nil {
			return fmt.Errorf("cannot continue the identity %s.%s: %w", p.name, c.name, err)
		}
	}
	return nil
}

// countBoth counts the rows of every table of plans in both databases and
// returns the counts by table name; it fails when any differs.
func countBoth(ctx context.Context, s *sql.Tx, t pgx.Tx, plans []*tablePlan) ([]TableCount, error) {
	var counts []TableCount
	var diffs []string
	for _, p := range plans {
		var inSQLite, inPG int64
		if err := s.QueryRowContext(ctx, `SELECT count(*) FROM `+sqliteIdent(p.name)).Scan(&inSQLite); err != nil {
			return nil, fmt.Errorf("cannot count SQLite's %s: %w", p.name, err)
		}
		q := `SELECT count(*) FROM ` + pgx.Identifier{p.name}.Sanitize()
		if p.countedByTriggers {
			// A log of changes on PostgreSQL: a row of SQLite's is a
			// status there, summed (checkStatusCounts checks the sums).
			q = `SELECT count(*) FROM (SELECT 1 FROM status_counts GROUP BY entity, status) s`
		}
		if err := t.QueryRow(ctx, q).Scan(&inPG); err != nil {
			return nil, fmt.Errorf("cannot count PostgreSQL's %s: %w", p.name, err)
		}
		if inSQLite != inPG {
			diffs = append(diffs, fmt.Sprintf("%s: %d rows in SQLite, %d in PostgreSQL", p.name, inSQLite, inPG))
		}
		counts = append(counts, TableCount{Table: p.name, Rows: inPG})
	}
	if len(diffs) > 0 {
		return nil, fmt.Errorf("cannot copy: the counts differ after the copy: %s", strings.Join(diffs, "; "))
	}
	slices.SortFunc(counts, func(a, b TableCount) int { return strings.Compare(a.Table, b.Table) })
	return counts, nil
}

// sqliteIdent quotes a SQLite table or column name; rowid stays bare, so
// that it names the rowid of a table that has no column of that name.
func sqliteIdent(name string) string {
	if name == "rowid" {
		return name
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}
