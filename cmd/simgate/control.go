package main

// The control socket: how simgate apikey and simgate backup reach the
// database while simgate serve runs. The daemon holds the database file
// locked to its own process ("One process" in docs/STORAGE.md), so no other process can
// open it then; the commands ask the daemon instead, over a Unix socket
// beside the database. Who may connect is decided by the file system (the
// socket is 0600 in the daemon's data directory) and checked again with the
// peer's credentials: root or the daemon's own user.
//
// The protocol is HTTP with JSON bodies, for this program only:
//
//	POST /keys              a simgate.APIKey (hashed: the key itself never crosses) -> its ID
//	GET  /keys              the keys, without their hashes
//	POST /keys/{id}/revoke
//	POST /services          a simgate.Service, checked against the daemon's configuration -> the service stored
//	GET  /services          the services as stored
//	GET  /backup            a consistent copy of the database file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store"
	"github.com/simgate/simgate/store/postgres"
)

// controlSocketPath is the control socket of the database at dbPath.
func controlSocketPath(dbPath string) string { return dbPath + ".sock" }

// maxSocketPath is the longest path a Unix socket can have on Linux
// (sun_path holds 108 bytes with the terminating NUL).
const maxSocketPath = 107

// admin is what simgate apikey, services and backup do to a database: a
// *store.DB when no daemon runs, a *controlClient when one does.
type admin interface {
	CreateAPIKey(ctx context.Context, k *simgate.APIKey) error
	ListAPIKeys(ctx context.Context) ([]*simgate.APIKey, error)
	RevokeAPIKey(ctx context.Context, id string) error
	// CreateService stores a service whose settings the caller checked
	// (verify.Options.CheckService); the daemon checks them again against
	// its own configuration.
	CreateService(ctx context.Context, s *simgate.Service) error
	ListServices(ctx context.Context) ([]*simgate.Service, error)
	Backup(ctx context.Context, dest string) error
	Close() error
}

// control serves the control socket. App owns it: Open starts its one
// goroutine (the HTTP server's accept loop), Close ends it.
type control struct {
	path string
	srv  *http.Server
	done chan struct{}
}

// openControl listens on path for the commands of the package comment, run
// against db; checkService holds the services created through it to the
// daemon's settings. Any file at path is left over from a daemon that died:
// this process holds the database, so no other daemon of it can be running.
func openControl(path string, db *store.DB, checkService func(*simgate.Service) error, logger *slog.Logger) (*control, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("cannot open the control socket %s: the path is %d bytes, Unix sockets allow %d (move database.path to a shorter one)", path, len(path), maxSocketPath)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("cannot open the control socket %s: a file that is not a socket is in the way", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("cannot remove the stale control socket: %w", err)
		}
	}
	// Copies left by a backup the daemon did not finish (it was killed).
	stale, _ := filepath.Glob(filepath.Join(filepath.Dir(db.Path()), backupDirPattern))
	for _, dir := range stale {
		os.RemoveAll(dir)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("cannot open the control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("cannot open the control socket: %w", err)
	}
	c := &control{path: path, done: make(chan struct{})}
	c.srv = &http.Server{
		Handler:           controlHandler(db, checkService),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	go func() {
		defer close(c.done)
		c.srv.Serve(peerListener{ln.(*net.UnixListener), logger})
	}()
	return c, nil
}

// close stops the server, waits for its requests, and removes the socket.
func (c *control) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := c.srv.Shutdown(ctx)
	<-c.done
	return err
}

// peerListener accepts only connections from root or from this process's
// user.
type peerListener struct {
	*net.UnixListener
	logger *slog.Logger
}

func (l peerListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.AcceptUnix()
		if err != nil {
			return nil, err
		}
		uid, err := peerUID(conn)
		if err == nil && (uid == 0 || uid == uint32(os.Getuid())) {
			return conn, nil
		}
		l.logger.Warn("refused a connection to the control socket", "uid", uid, "error", err)
		conn.Close()
	}
}

func peerUID(conn *net.UnixConn) (uint32, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if credErr != nil {
		return 0, credErr
	}
	return cred.Uid, nil
}

// backupDirPattern names the directories (os.MkdirTemp) that hold a copy
// while it is streamed.
const backupDirPattern = ".simgate-backup-*"

// controlError is the body of a failed request.
type controlError struct {
	Code    simgate.Code `json:"code"`
	Message string       `json:"message"`
}

func controlHandler(db *store.DB, checkService func(*simgate.Service) error) http.Handler {
	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, err error) {
		status := http.StatusInternalServerError
		switch simgate.ErrorCode(err) {
		case simgate.CodeNotFound:
			status = http.StatusNotFound
		case simgate.CodeInvalid:
			status = http.StatusBadRequest
		case simgate.CodeConflict:
			status = http.StatusConflict
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		// A domain error's message alone, which the client wraps in an
		// error of the same code again; the operator's own socket gets an
		// internal error whole.
		msg := err.Error()
		if simgate.ErrorCode(err) != simgate.CodeInternal {
			msg = simgate.ErrorMessage(err)
		}
		json.NewEncoder(w).Encode(controlError{Code: simgate.ErrorCode(err), Message: msg})
	}
	mux.HandleFunc("POST /keys", func(w http.ResponseWriter, r *http.Request) {
		var k simgate.APIKey
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&k); err != nil {
			fail(w, simgate.Errorf(simgate.CodeInvalid, "cannot read the key: %v", err))
			return
		}
		if err := db.CreateAPIKey(r.Context(), &k); err != nil {
			fail(w, err)
			return
		}
		json.NewEncoder(w).Encode(struct{ ID string }{k.ID})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		keys, err := db.ListAPIKeys(r.Context())
		if err != nil {
			fail(w, err)
			return
		}
		for _, k := range keys {
			k.Hash = nil
		}
		json.NewEncoder(w).Encode(keys)
	})
	mux.HandleFunc("POST /keys/{id}/revoke", func(w http.ResponseWriter, r *http.Request) {
		if err := db.RevokeAPIKey(r.Context(), r.PathValue("id")); err != nil {
			fail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /services", func(w http.ResponseWriter, r *http.Request) {
		var svc simgate.Service
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&svc); err != nil {
			fail(w, simgate.Errorf(simgate.CodeInvalid, "cannot read the service: %v", err))
			return
		}
		svc.ID = ""
		if err := checkService(&svc); err != nil {
			fail(w, err)
			return
		}
		if err := db.CreateService(r.Context(), &svc); err != nil {
			fail(w, err)
			return
		}
		json.NewEncoder(w).Encode(svc)
	})
	mux.HandleFunc("GET /services", func(w http.ResponseWriter, r *http.Request) {
		ss, err := db.ListServices(r.Context())
		if err != nil {
			fail(w, err)
			return
		}
		json.NewEncoder(w).Encode(ss)
	})
	mux.HandleFunc("GET /backup", func(w http.ResponseWriter, r *http.Request) {
		// The copy is made beside the database, where the daemon may write,
		// and streamed: the client writes it wherever its user may.
		dir, err := os.MkdirTemp(filepath.Dir(db.Path()), backupDirPattern)
		if err != nil {
			fail(w, fmt.Errorf("cannot back up: %w", err))
			return
		}
		defer os.RemoveAll(dir)
		tmp := filepath.Join(dir, "simgate.db")
		if err := db.Backup(r.Context(), tmp); err != nil {
			fail(w, err)
			return
		}
		f, err := os.Open(tmp)
		if err != nil {
			fail(w, fmt.Errorf("cannot back up: %w", err))
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			fail(w, fmt.Errorf("cannot back up: %w", err))
			return
		}
		w.Header().Set("Content-Type", "application/vnd.sqlite3")
		w.Header().Set("Content-Length", fmt.Sprint(fi.Size()))
		io.Copy(w, f)
	})
	return mux
}

// openAdmin returns the admin of the database named by a configuration file
// or a path: the running daemon's control socket when one answers, else the
// database itself, opened (and migrated) here; and the configuration
// (databaseFor).
func openAdmin(ctx context.Context, configPath, dbPath string) (admin, *Config, error) {
	path, cfg, err := databaseFor(configPath, dbPath)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Database.Driver == driverPostgres {
		db, err := postgres.Open(ctx, cfg.Database.DSN, postgres.Options{})
		if err != nil {
			return nil, nil, err
		}
		return postgresAdmin{db}, cfg, nil
	}
	sock := controlSocketPath(path)
	conn, err := net.DialTimeout("unix", sock, 5*time.Second)
	switch {
	case err == nil:
		conn.Close()
		return newControlClient(sock), cfg, nil
	case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
		// No daemon, or one that died and left its socket.
		db, err := store.Open(ctx, path, store.Options{Synchronous: cfg.Database.Synchronous})
		if err != nil {
			return nil, nil, err
		}
		return db, cfg, nil
	default:
		return nil, nil, fmt.Errorf("cannot reach the running daemon at %s: %w (run this as root or as the daemon's user)", sock, err)
	}
}

// postgresAdmin is the admin of a PostgreSQL database, which takes the
// commands' connections itself (no daemon holds it).
type postgresAdmin struct{ *postgres.DB }

// Backup refuses: PostgreSQL has its own tools for a consistent copy.
func (postgresAdmin) Backup(context.Context, string) error {
	return errors.New("cannot back up a PostgreSQL database with simgate backup: use pg_dump (or the server's own backups)")
}

// controlClient is an admin that asks the daemon over its control socket.
type controlClient struct {
	sock string
	hc   *http.Client
}

func newControlClient(sock string) *controlClient {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	return &controlClient{sock: sock, hc: &http.Client{Transport: tr}}
}

// do sends a request and decodes a JSON answer into out (when not nil).
func (c *controlClient) do(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.request(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("cannot read the daemon's answer on %s: %w", c.sock, err)
	}
	return nil
}

// request sends a request and returns a successful response; a failed one
// becomes the daemon's error.
func (c *controlClient) request(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://simgate"+path, body)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the running daemon at %s: %w", c.sock, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	var e controlError
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&e); err != nil || e.Message == "" {
		return nil, fmt.Errorf("the running daemon answered %s on %s", resp.Status, c.sock)
	}
	if e.Code == simgate.CodeNotFound || e.Code == simgate.CodeInvalid || e.Code == simgate.CodeConflict {
		return nil, simgate.Errorf(e.Code, "%s", e.Message)
	}
	return nil, errors.New(e.Message)
}

func (c *controlClient) CreateAPIKey(ctx context.Context, k *simgate.APIKey) error {
	var out struct{ ID string }
	if err := c.do(ctx, "POST", "/keys", k, &out); err != nil {
		return err
	}
	k.ID = out.ID
	return nil
}

func (c *controlClient) ListAPIKeys(ctx context.Context) ([]*simgate.APIKey, error) {
	var keys []*simgate.APIKey
	err := c.do(ctx, "GET", "/keys", nil, &keys)
	return keys, err
}

func (c *controlClient) RevokeAPIKey(ctx context.Context, id string) error {
	return c.do(ctx, "POST", "/keys/"+url.PathEscape(id)+"/revoke", nil, nil)
}

func (c *controlClient) CreateService(ctx context.Context, svc *simgate.Service) error {
	var out simgate.Service
	if err := c.do(ctx, "POST", "/services", svc, &out); err != nil {
		return err
	}
	*svc = out
	return nil
}

func (c *controlClient) ListServices(ctx context.Context) ([]*simgate.Service, error) {
	var ss []*simgate.Service
	err := c.do(ctx, "GET", "/services", nil, &ss)
	return ss, err
}

// Backup writes the daemon's copy of the database to the new file dest
// (mode 0600) and flushes it to disk.
func (c *controlClient) Backup(ctx context.Context, dest string) (err error) {
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("cannot back up to %s: the file exists; give a new name", dest)
		}
		return fmt.Errorf("cannot back up: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(dest)
		}
	}()
	resp, err := c.request(ctx, "GET", "/backup", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(f, resp.Body)
	if err != nil {
		return fmt.Errorf("cannot back up to %s: %w", dest, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return fmt.Errorf("cannot back up to %s: the daemon sent %d of %d bytes", dest, n, resp.ContentLength)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("cannot back up to %s: %w", dest, err)
	}
	return f.Close()
}

func (c *controlClient) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}
