package simgate

import (
	"encoding/json"
	"time"
)

// Webhook event types. An event names what happened to one object; its data
// never holds a verification code, an SMS text of a verification, or a key.
const (
	EventMessageSent                    = "message.sent"
	EventMessageDelivered               = "message.delivered"
	EventMessageFailed                  = "message.failed"
	EventVerificationApproved           = "verification.approved"
	EventVerificationExpired            = "verification.expired"
	EventVerificationMaxAttemptsReached = "verification.max_attempts_reached"
	EventVerificationFailed             = "verification.failed"
	EventSecurityAlert                  = "security.alert"
	EventSMSReceived                    = "sms.received"
	EventModemDown                      = "modem.down"
	EventModemUp                        = "modem.up"
	EventModemBalanceLow                = "modem.balance_low"
	EventCallReceived                   = "call.received"
)

// EventTypes lists every webhook event type, for validating subscriptions.
var EventTypes = []string{
	EventMessageSent, EventMessageDelivered, EventMessageFailed,
	EventVerificationApproved, EventVerificationExpired, EventVerificationMaxAttemptsReached, EventVerificationFailed,
	EventSecurityAlert, EventSMSReceived, EventModemDown, EventModemUp,
	EventModemBalanceLow, EventCallReceived,
}

// WebhookEvent is one event in the outbox: written in the same transaction as
// the change it reports, delivered afterwards to every endpoint subscribed to
// its type.
type WebhookEvent struct {
	ID        string // "evt_...", the receiver's key for deduplication
	Type      string // one of EventTypes
	Data      json.RawMessage
	CreatedAt time.Time
}

// DeliveryStatus is where the delivery of one event to one endpoint is.
type DeliveryStatus string

// Delivery statuses.
const (
	DeliveryPending   DeliveryStatus = "pending"   // not yet delivered; retried with backoff
	DeliveryDelivered DeliveryStatus = "delivered" // the endpoint answered 2xx
	DeliveryFailed    DeliveryStatus = "failed"    // given up after the retry period
)

// WebhookDelivery is one event to one endpoint.
type WebhookDelivery struct {
	EventID       string
	EventType     string
	Endpoint      string // the configured endpoint name
	Status        DeliveryStatus
	Attempts      int
	NextAttemptAt time.Time // zero once final
	LastError     string    // e.g. "HTTP 503" or a transport error
	CreatedAt     time.Time // when the event was created
	DeliveredAt   time.Time
}

// DeliveryFilter selects webhook deliveries for a list, newest first. Cursor
// is the opaque value a previous page returned; Limit 0 means a default
// page size.
type DeliveryFilter struct {
	Status   DeliveryStatus // empty: any
	Endpoint string         // empty: any
	Cursor   string
	Limit    int
}

// WebhookAttempt is a delivery claimed for an attempt, with its event.
type WebhookAttempt struct {
	Delivery WebhookDelivery
	Event    WebhookEvent
}

// WebhookOutcome is what became of one attempt: Status delivered, failed (given
// up), or pending again with the time of the next attempt.
type WebhookOutcome struct {
	EventID       string
	Endpoint      string
	Status        DeliveryStatus
	Error         string
	NextAttemptAt time.Time
}
