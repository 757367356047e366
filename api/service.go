package api

import (
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/simgate/simgate"
)

// ServiceRequest is the body of POST /v1/services. A setting left out is
// the gateway's (the configuration's verify section), at each
// verification.
type ServiceRequest struct {
	// FriendlyName is the name the texts show as {app}.
	FriendlyName string `json:"friendly_name"`
	CodeLength   int    `json:"code_length,omitempty"`
	// TTL is a Go duration ("5m") or a number of seconds.
	TTL duration `json:"ttl,omitempty"`
	// Templates are texts by locale; a locale they lack takes the
	// gateway's.
	Templates map[string]string `json:"templates,omitempty"`
	// AllowedCountries narrow the gateway's country allow-list.
	AllowedCountries  []string `json:"allowed_countries,omitempty"`
	CustomCodeAllowed bool     `json:"custom_code_allowed,omitempty"`
}

// serviceJSON is a service as it applies now: the gateway's friendly name,
// code length and TTL where it sets none; its own templates and countries
// (none: the gateway's).
type serviceJSON struct {
	ID                string            `json:"id"`
	FriendlyName      string            `json:"friendly_name"`
	CodeLength        int               `json:"code_length"`
	TTL               float64           `json:"ttl"` // seconds
	Templates         map[string]string `json:"templates"`
	AllowedCountries  []string          `json:"allowed_countries"`
	CustomCodeAllowed bool              `json:"custom_code_allowed"`
	Default           bool              `json:"default"`
	CreatedAt         time.Time         `json:"created_at"`
	UpdatedAt         time.Time         `json:"updated_at"`
}

func toServiceJSON(s *simgate.Service) serviceJSON {
	j := serviceJSON{
		ID: s.ID, FriendlyName: s.FriendlyName, CodeLength: s.CodeLength, TTL: s.TTL.Seconds(),
		Templates: s.Templates, AllowedCountries: s.AllowedCountries, CustomCodeAllowed: s.CustomCodeAllowed,
		Default: s.ID == simgate.DefaultServiceID, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
	if j.Templates == nil {
		j.Templates = map[string]string{}
	}
	if j.AllowedCountries == nil {
		j.AllowedCountries = []string{}
	}
	return j
}

// createService answers POST /v1/services (admin scope).
func (s *Server) createService(w http.ResponseWriter, r *http.Request, body []byte) error {
	if s.opts.Services == nil {
		return simgate.Errorf(simgate.CodeUnavailable, "services are not available")
	}
	var req ServiceRequest
	if err := decode(body, &req, "templates"); err != nil {
		return err
	}
	svc := &simgate.Service{
		FriendlyName: req.FriendlyName, CodeLength: req.CodeLength, TTL: time.Duration(req.TTL),
		Templates: req.Templates, AllowedCountries: req.AllowedCountries, CustomCodeAllowed: req.CustomCodeAllowed,
	}
	if err := s.opts.Services.CreateService(r.Context(), svc); err != nil {
		return err
	}
	applied, err := s.opts.Services.GetService(r.Context(), svc.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toServiceJSON(applied))
	return nil
}

// listServices answers GET /v1/services: every service, or those a key
// limited to services may use.
func (s *Server) listServices(w http.ResponseWriter, r *http.Request, _ []byte) error {
	if s.opts.Services == nil {
		return simgate.Errorf(simgate.CodeUnavailable, "services are not available")
	}
	ss, err := s.opts.Services.ListServices(r.Context())
	if err != nil {
		return err
	}
	k := apiKeyFrom(r.Context())
	out := struct {
		Services []serviceJSON `json:"services"`
	}{Services: []serviceJSON{}}
	for _, svc := range ss {
		if k.AllowsService(svc.ID) {
			out.Services = append(out.Services, toServiceJSON(svc))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getService answers GET /v1/services/{id}: not found for a service the
// key may not use, as for one that does not exist.
func (s *Server) getService(w http.ResponseWriter, r *http.Request, _ []byte) error {
	if s.opts.Services == nil {
		return simgate.Errorf(simgate.CodeUnavailable, "services are not available")
	}
	id := mux.Vars(r)["id"]
	if !apiKeyFrom(r.Context()).AllowsService(id) {
		return simgate.ServiceNotFound(id)
	}
	svc, err := s.opts.Services.GetService(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toServiceJSON(svc))
	return nil
}
