package api

import (
	"net/http"
	"time"

	"github.com/simgate/simgate"
)

// deliveryJSON is a webhook delivery in the API.
type deliveryJSON struct {
	EventID       string                 `json:"event_id"`
	EventType     string                 `json:"event_type"`
	Endpoint      string                 `json:"endpoint"`
	Status        simgate.DeliveryStatus `json:"status"`
	Attempts      int                    `json:"attempts"`
	NextAttemptAt *time.Time             `json:"next_attempt_at,omitempty"`
	LastError     string                 `json:"last_error,omitempty"`
	CreatedAt     time.Time              `json:"created_at"`
	DeliveredAt   *time.Time             `json:"delivered_at,omitempty"`
}

func (s *Server) listWebhookDeliveries(w http.ResponseWriter, r *http.Request, _ []byte) error {
	if s.opts.Webhooks == nil {
		return simgate.Errorf(simgate.CodeUnavailable, "webhooks are not available")
	}
	q := r.URL.Query()
	limit, err := pageLimit(r)
	if err != nil {
		return err
	}
	ds, next, err := s.opts.Webhooks.ListWebhookDeliveries(r.Context(), simgate.DeliveryFilter{
		Status: simgate.DeliveryStatus(q.Get("status")), Endpoint: q.Get("endpoint"), Cursor: q.Get("cursor"), Limit: limit,
	})
	if err != nil {
		return err
	}
	out := struct {
		Deliveries []deliveryJSON `json:"deliveries"`
		NextCursor string         `json:"next_cursor,omitempty"`
	}{Deliveries: []deliveryJSON{}, NextCursor: next}
	for _, d := range ds {
		out.Deliveries = append(out.Deliveries, deliveryJSON{
			EventID: d.EventID, EventType: d.EventType, Endpoint: d.Endpoint, Status: d.Status, Attempts: d.Attempts,
			NextAttemptAt: timePtr(d.NextAttemptAt), LastError: d.LastError, CreatedAt: d.CreatedAt, DeliveredAt: timePtr(d.DeliveredAt),
		})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
