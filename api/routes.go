package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/simgate/simgate"
)

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the embedded OpenAPI 3.1 document.
func OpenAPI() []byte { return bytes.Clone(openAPI) }

// route options.
type routeOpts struct {
	scope      simgate.Scope // "" : no authentication
	idempotent bool          // honours Idempotency-Key
	// recover answers, for an idempotent route, a retry of a request that
	// created the message messageID and died before its response was
	// stored (see Server.idempotent).
	recover func(w http.ResponseWriter, r *http.Request, messageID string) error
	// noIdempotency, for an idempotent route, refuses an Idempotency-Key
	// for a body it returns an error for, before anything is stored.
	noIdempotency func(body []byte) error
}

// handlerFunc serves a request; a returned error is written by Server.Error.
type handlerFunc func(w http.ResponseWriter, r *http.Request, body []byte) error

func (s *Server) routes() *mux.Router {
	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Error(w, r, simgate.Errorf(simgate.CodeNotFound, "no such route"))
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isTwilio(r) {
			writeTwilioError(w, r, http.StatusMethodNotAllowed, twilioMethodNotAllowed, "Method not allowed")
			return
		}
		writeProblem(w, r, http.StatusMethodNotAllowed, simgate.CodeInvalid, "method not allowed on this route")
	})

	pub := routeOpts{}
	verify := routeOpts{scope: simgate.ScopeVerify}
	read := routeOpts{scope: simgate.ScopeRead}
	admin := routeOpts{scope: simgate.ScopeAdmin}

	s.handle(r, "GET", "/healthz", pub, s.healthz)
	s.handle(r, "GET", "/readyz", pub, s.readyz)
	s.handle(r, "GET", "/v1/openapi.json", pub, func(w http.ResponseWriter, r *http.Request, _ []byte) error {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openAPI)
		return nil
	})

	s.handle(r, "POST", "/v1/verifications", routeOpts{scope: simgate.ScopeVerify, idempotent: true, recover: s.recoverVerification,
		noIdempotency: noIdempotentCustomCode}, s.createVerification)
	s.handle(r, "POST", "/v1/verifications/check", verify, s.checkVerification)
	s.handle(r, "GET", "/v1/verifications/{id}", verify, s.getVerification)
	s.handle(r, "POST", "/v1/verifications/{id}/cancel", verify, s.cancelVerification)

	s.handle(r, "POST", "/v1/services", admin, s.createService)
	s.handle(r, "GET", "/v1/services", verify, s.listServices)
	s.handle(r, "GET", "/v1/services/{id}", verify, s.getService)

	s.handle(r, "POST", "/v1/messages", routeOpts{scope: simgate.ScopeSend, idempotent: true, recover: s.recoverMessage}, s.createMessage)
	s.handle(r, "GET", "/v1/messages", read, s.listMessages)
	s.handle(r, "GET", "/v1/messages/{id}", read, s.getMessage)
	s.handle(r, "POST", "/v1/messages/{id}/cancel", routeOpts{scope: simgate.ScopeSend}, s.cancelMessage)

	s.handle(r, "GET", "/v1/inbox", read, s.listInbox)

	s.handle(r, "GET", "/v1/modems", read, s.listModems)
	s.handle(r, "GET", "/v1/nodes", read, s.listNodes)
	s.handle(r, "GET", "/v1/modems/{id}", read, s.getModem)
	for _, action := range []string{"enable", "disable", "drain", "reset"} {
		s.handle(r, "POST", "/v1/modems/{id}/"+action, admin, s.modemAction(action))
	}
	s.handle(r, "POST", "/v1/modems/{id}/ussd", admin, s.modemUSSD)

	s.handle(r, "GET", "/v1/webhooks/deliveries", admin, s.listWebhookDeliveries)

	s.twilioRoutes(r)
	return r
}

// handle registers h with the controls every route shares, in this order:
// per-IP limit, body size, authentication, scope, Content-Type of a body
// (JSON; a form on the Twilio surface), per-key limit, idempotency, then h.
func (s *Server) handle(r *mux.Router, method, path string, o routeOpts, h handlerFunc) {
	r.Methods(method).Path(path).HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusWriter{ResponseWriter: w}
		err := s.serve(rec, r, o, h)
		if err != nil {
			s.Error(rec, r, err)
		}
		// The query is left out: it may hold a key sent by mistake.
		attrs := []any{"method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", time.Since(start)}
		if k := apiKeyFrom(r.Context()); k != nil {
			attrs = append(attrs, "key", k.ID)
		}
		s.log.Debug("request", attrs...)
	})
}

func (s *Server) serve(w *statusWriter, r *http.Request, o routeOpts, h handlerFunc) error {
	if o.scope == "" {
		return h(w, r, nil)
	}
	if ok, after, _, err := allow(r.Context(), s.limits.perIP, clientIP(r), s.opts.Now(), 1); err != nil {
		return err
	} else if !ok {
		return rateLimited(RulePerIP, after, "too many requests from this address")
	}
	var body []byte
	if r.Method == http.MethodPost {
		var err error
		if body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes)); err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return simgate.Errorf(CodeTooLarge, "the request body is over %d bytes", MaxBodyBytes)
			}
			return simgate.Errorf(simgate.CodeInvalid, "cannot read the request body")
		}
	}
	k, err := s.authenticate(r)
	if err != nil {
		return err
	}
	r = r.WithContext(context.WithValue(r.Context(), keyCtx, k))
	if !k.Has(o.scope) {
		return simgate.Errorf(simgate.CodeForbidden, "this API key lacks the %s scope", o.scope)
	}
	if len(body) > 0 {
		want := "application/json"
		if isTwilio(r) {
			want = "application/x-www-form-urlencoded"
		}
		if err := checkContentType(r.Header.Get("Content-Type"), want); err != nil {
			return err
		}
	}
	if ok, after, _, err := allow(r.Context(), s.limits.perKey, k.ID, s.opts.Now(), 1); err != nil {
		return err
	} else if !ok {
		return rateLimited(RulePerAPIKey, after, "too many requests with this API key")
	}
	if o.idempotent {
		if ik := r.Header.Get("Idempotency-Key"); ik != "" {
			return s.idempotent(w, r, k, ik, body, o, h)
		}
	}
	return h(w, r, body)
}

// idempotent runs h once per Idempotency-Key and request: a retry with the
// same key and body gets the first response again (with
// Idempotent-Replayed: true), the same key with another body 422, and a
// retry while the first is still running 409. Only 2xx responses are kept;
// after any other the key is released so that a retry runs again.
//
// A crash between reserving the key and storing the response would leave
// the key in progress. The response cannot share the message's transaction
// (it is written once h has returned), but what identifies it can: h runs
// with a context that makes the store record the message it creates with
// the reservation, in the transaction that creates the message. A
// reservation is a lease (Options.IdempotencyLease): a retry after it either
// runs h, when the dead request created nothing, or answers with o.recover
// from the message the dead request created. Either way a key makes at most
// one message, and a reservation that made one is never released.
func (s *Server) idempotent(w http.ResponseWriter, r *http.Request, k *simgate.APIKey, ik string, body []byte, o routeOpts, h handlerFunc) error {
	if s.opts.Idempotency == nil {
		return simgate.Errorf(simgate.CodeUnavailable, "idempotency keys are not available")
	}
	if len(ik) > 255 {
		return simgate.Errorf(simgate.CodeInvalid, "Idempotency-Key must be at most 255 characters")
	}
	if o.noIdempotency != nil {
		if err := o.noIdempotency(body); err != nil {
			return err
		}
	}
	sum := sha256.New()
	sum.Write([]byte(r.Method + " " + r.URL.Path + "\n"))
	sum.Write(body)
	hash := sum.Sum(nil)

	outcome, status, stored, messageID, err := s.opts.Idempotency.ReserveIdempotencyKey(r.Context(), k.ID, ik, hash, s.opts.IdempotencyTTL, s.opts.IdempotencyLease)
	if err != nil {
		return err
	}
	switch outcome {
	case simgate.IdempotencyReplay:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(status)
		w.Write(stored)
		return nil
	case simgate.IdempotencyInFlight:
		return simgate.Errorf(simgate.CodeConflict, "a request with this Idempotency-Key is still in progress")
	case simgate.IdempotencyMismatch:
		return simgate.Errorf(CodeIdempotencyMismatch, "this Idempotency-Key was used for another request")
	}

	rec := &recorder{header: http.Header{}}
	ctx := context.WithoutCancel(r.Context())
	if outcome == simgate.IdempotencyRecover {
		if o.recover == nil {
			return simgate.Errorf(simgate.CodeConflict, "a request with this Idempotency-Key did not finish")
		}
		if err := o.recover(rec, r, messageID); err != nil {
			s.Error(rec, r, err)
		}
		// Not released on failure: the message exists, and a later retry
		// recovers it again once the lease has run out.
		if rec.status >= 200 && rec.status < 300 {
			rec.header.Set("Idempotent-Replayed", "true")
			if err := s.opts.Idempotency.CompleteIdempotencyKey(ctx, k.ID, ik, rec.status, rec.body.Bytes()); err != nil {
				s.log.Error("cannot store idempotent response", "key", k.ID, "error", err)
			}
		}
		rec.writeTo(w)
		return nil
	}

	herr := h(rec, r.WithContext(simgate.WithIdempotencyKey(r.Context(), k.ID, ik)), body)
	if herr != nil {
		s.Error(rec, r, herr)
	}
	if rec.status >= 200 && rec.status < 300 {
		if err := s.opts.Idempotency.CompleteIdempotencyKey(ctx, k.ID, ik, rec.status, rec.body.Bytes()); err != nil {
			s.log.Error("cannot store idempotent response", "key", k.ID, "error", err)
		}
	} else if err := s.opts.Idempotency.ReleaseIdempotencyKey(ctx, k.ID, ik); err != nil {
		s.log.Error("cannot release idempotency key", "key", k.ID, "error", err)
	}
	rec.writeTo(w)
	return nil
}

// recoverMessage answers POST /v1/messages with the message messageID.
func (s *Server) recoverMessage(w http.ResponseWriter, r *http.Request, messageID string) error {
	if s.opts.Messages == nil {
		return simgate.Errorf(simgate.CodeUnavailable, "messages are not available")
	}
	m, err := s.opts.Messages.Message(r.Context(), messageID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toMessageJSON(m))
	return nil
}

// recoverVerification answers POST /v1/verifications with the verification
// whose SMS is the message messageID.
func (s *Server) recoverVerification(w http.ResponseWriter, r *http.Request, messageID string) error {
	if s.opts.Messages == nil || s.opts.Verify == nil {
		return simgate.Errorf(simgate.CodeUnavailable, "verifications are not available")
	}
	m, err := s.opts.Messages.Message(r.Context(), messageID)
	if err != nil {
		return err
	}
	if m.VerificationID == "" {
		return simgate.Errorf(simgate.CodeConflict, "this Idempotency-Key was used for a message, not a verification")
	}
	v, err := s.opts.Verify.Get(r.Context(), simgate.VerificationRef{ID: m.VerificationID, Services: apiKeyFrom(r.Context()).Services})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toVerificationJSON(v, m.Status))
	return nil
}

// clientIP is the peer address. Forwarded headers are not trusted: the API
// listens on loopback by default, and a proxy in front would need its own
// configuration to be believed.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// statusWriter remembers the status written, for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// recorder keeps a response to store it before sending it.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

// writeTo sends the recorded response to w.
func (r *recorder) writeTo(w http.ResponseWriter) {
	for name, vs := range r.header {
		w.Header()[name] = vs
	}
	w.WriteHeader(r.status)
	w.Write(r.body.Bytes())
}
