package sluice

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/sluicehq/sluice/internal/partner"
)

// PartnerConfig declares a partner: an outside organisation that sends
// messages through POST /api/v1/partners/{id}/messages/{type} with its own
// token. Start registers it (shared by every instance through the engine)
// when it is missing, and sets its name and enabled state as declared; its
// message types are stored as declared, replacing what the registry held.
// Tokens are not declared: they are shown once, by [App.PartnerToken] or
// sluice partner token create.
type PartnerConfig struct {
	// ID names the partner in URLs and tokens: 1 to 64 lowercase letters,
	// digits, '-' and '_'.
	ID   string
	Name string
	// Disabled refuses the partner's messages (403) while keeping it.
	Disabled bool
	// Types are the message types only this partner sends.
	Types []MessageTypeConfig
	// Endpoints receive the partner's deliveries (see App.Delivery). Those
	// declared are stored as declared; others registered through the API
	// are kept.
	Endpoints []PartnerEndpoint
}

// PartnerEndpoint is where a partner receives deliveries, and how they
// authenticate. Secrets belong in the environment or a secret store, not
// in code: read them from there into these fields.
type PartnerEndpoint struct {
	// Name tells a partner's endpoints apart ("default").
	Name string
	URL  string
	// Types are the message types delivered here; empty: every type.
	Types []string
	// BearerToken, when set, is sent as Authorization: Bearer.
	BearerToken string
	// OAuth2 client credentials: tokens are fetched from TokenURL, cached
	// and refreshed.
	TokenURL, ClientID, ClientSecret string
	Scopes                           []string
	// SigningSecrets sign each delivery as Standard Webhooks do
	// (webhook-id, webhook-timestamp, webhook-signature); secrets are
	// "whsec_" and base64. During a rotation give the new and the old.
	SigningSecrets []string
	// Timeout bounds one POST; default 10s.
	Timeout time.Duration
	// RatePerSecond bounds each instance's POSTs to the endpoint; 0: none.
	RatePerSecond float64
	// Ordered keeps the order of messages with the same partition key.
	Ordered bool
	// MaxAttempts bounds the tries of a parked delivery; default 50.
	MaxAttempts int
}

func (e PartnerEndpoint) def() partner.Endpoint {
	ep := partner.Endpoint{Name: e.Name, URL: e.URL, Types: e.Types, RatePerSecond: e.RatePerSecond, Ordered: e.Ordered,
		MaxAttempts: e.MaxAttempts}
	if e.Timeout > 0 {
		ep.Timeout = e.Timeout.String()
	}
	switch {
	case len(e.SigningSecrets) > 0:
		ep.Auth = partner.EndpointAuth{Kind: partner.AuthHMAC, Secrets: e.SigningSecrets}
	case e.TokenURL != "":
		ep.Auth = partner.EndpointAuth{Kind: partner.AuthOAuth2, TokenURL: e.TokenURL, ClientID: e.ClientID,
			ClientSecret: e.ClientSecret, Scopes: e.Scopes}
	case e.BearerToken != "":
		ep.Auth = partner.EndpointAuth{Kind: partner.AuthBearer, Token: e.BearerToken}
	}
	return ep
}

// MessageTypeConfig declares a kind of message partners send: how it is
// validated, transformed and routed.
type MessageTypeConfig struct {
	Name string
	// Partners lists who may send a shared type (one given to
	// App.MessageType); empty: every partner. Not for a partner's own type.
	Partners []string
	// Format of the messages as partners send them: "json" or "xml".
	Format string
	// Schema validates the input: JSON Schema (2020-12 unless its $schema
	// says otherwise; formats are asserted; no $ref to files or URLs) for
	// JSON, XSD for XML. Empty: any well-formed message.
	Schema string
	// Transform makes what the hub gets: a jq program for JSON (it must
	// give one result), an XSLT 1.0 stylesheet for XML. Empty: the message
	// as sent.
	Transform string
	// TargetFormat is what Transform writes, "json" or "xml"; default
	// Format.
	TargetFormat string
	// TargetSchema validates the transformed message.
	TargetSchema string
	// Hub receives the accepted messages.
	Hub string
	// PartitionKey picks each message's partition key from the transformed
	// message: a jq expression for JSON, an XPath for XML. Empty: the
	// message id.
	PartitionKey string
	// Namespaces bind the prefixes of an XPath PartitionKey
	// ({"po": "urn:acme:po"}).
	Namespaces map[string]string
	// MaxBytes bounds one message; default 1 MiB.
	MaxBytes int64
}

// Properties of every event a partner's message becomes.
const (
	PropPartner     = partner.PropPartner
	PropMessageType = partner.PropType
	PropMessageID   = partner.PropMessageID
	PropReceived    = partner.PropReceived
)

// Partner declares a partner, applied by Start.
func (a *App) Partner(cfg PartnerConfig) {
	a.partnerDecls = append(a.partnerDecls, cfg)
}

// MessageType declares a message type shared by several partners (see
// MessageTypeConfig.Partners), applied by Start.
func (a *App) MessageType(cfg MessageTypeConfig) {
	a.sharedTypes = append(a.sharedTypes, cfg)
}

// PartnerToken gives a declared or registered partner a new token, valid
// for ttl (0: until revoked), and returns it: this is the only time it is
// shown; the registry keeps its hash. The partner's other tokens stay
// valid, so it can move to the new one before the old is revoked.
func (a *App) PartnerToken(ctx context.Context, partnerID, name string, ttl time.Duration) (string, error) {
	if err := a.running(); err != nil {
		return "", err
	}
	var expires time.Time
	if ttl > 0 {
		expires = time.Now().Add(ttl)
	}
	_, token, err := a.partners.Registry.AddToken(ctx, partnerID, name, expires)
	if err != nil {
		return "", fmt.Errorf("sluice: %w", err)
	}
	return token, nil
}

func (m MessageTypeConfig) def(partnerID string) partner.MessageType {
	return partner.MessageType{Partner: partnerID, Name: m.Name, Partners: m.Partners, Format: m.Format,
		Schema: m.Schema, Transform: m.Transform, TargetFormat: m.TargetFormat, TargetSchema: m.TargetSchema,
		Hub: m.Hub, PartitionKey: m.PartitionKey, Namespaces: m.Namespaces, MaxBytes: m.MaxBytes}
}

// openPartners opens the partner registry (followed live from its bucket)
// and the rejection log, for the partner routes of the API, and applies
// the declared partners and types.
func (a *App) openPartners(ctx context.Context) error {
	kv, err := partner.OpenBucket(ctx, a.eng.JS)
	if err != nil {
		return fmt.Errorf("sluice: %w", err)
	}
	reg, err := partner.Open(ctx, kv, partner.Options{Logger: a.log})
	if err != nil {
		return fmt.Errorf("sluice: %w", err)
	}
	rejections, err := partner.OpenRejectionLog(ctx, a.eng.JS)
	if err != nil {
		_ = reg.Stop(ctx)
		return fmt.Errorf("sluice: %w", err)
	}
	counter := a.metrics.PartnerMessages
	a.partners = &partner.Service{Registry: reg, Hubs: a.hubSvc, Rejections: rejections,
		Count: func(p, t, result string) { counter.WithLabelValues(p, t, result).Inc() }}
	if a.deliveryLog, err = partner.OpenDeliveryLog(ctx, a.eng.JS); err != nil {
		return fmt.Errorf("sluice: %w", err)
	}
	a.partners.Deliveries = a.deliveryLog
	if a.docs != nil {
		parks := partner.ParkStore{Docs: a.docs}
		if len(a.deliveries) > 0 {
			if err := parks.EnsureContainer(ctx); err != nil {
				return fmt.Errorf("sluice: %w", err)
			}
		}
		a.partners.Parks = &parks
	}
	return a.applyPartners(ctx)
}

// applyPartners registers the declared partners and message types.
func (a *App) applyPartners(ctx context.Context) error {
	reg := a.partners.Registry
	for _, pc := range slices.Concat(a.cfg.Partners, a.partnerDecls) {
		_, err := reg.CreatePartner(ctx, partner.Partner{ID: pc.ID, Name: pc.Name, Enabled: !pc.Disabled})
		if errors.Is(err, partner.ErrExists) {
			_, err = reg.UpdatePartner(ctx, pc.ID, func(p *partner.Partner) error {
				p.Name, p.Enabled = pc.Name, !pc.Disabled
				return nil
			})
		}
		if err != nil {
			return fmt.Errorf("sluice: partner %s: %w", pc.ID, err)
		}
		for _, ec := range pc.Endpoints {
			if _, err := reg.PutEndpoint(ctx, pc.ID, ec.def()); err != nil {
				return fmt.Errorf("sluice: partner %s: %w", pc.ID, err)
			}
		}
		for _, tc := range pc.Types {
			if _, err := reg.PutType(ctx, tc.def(pc.ID), false); err != nil {
				return fmt.Errorf("sluice: partner %s: %w", pc.ID, err)
			}
		}
	}
	for _, tc := range slices.Concat(a.cfg.MessageTypes, a.sharedTypes) {
		if _, err := reg.PutType(ctx, tc.def(""), false); err != nil {
			return fmt.Errorf("sluice: %w", err)
		}
	}
	return nil
}

// VerifyWebhook checks the Standard Webhooks signature of a request a
// delivery function sent (webhook-id, webhook-timestamp,
// webhook-signature) against secret ("whsec_…"), refusing timestamps more
// than tolerance away from now (replays): what a partner's receiver does,
// for tests, examples and Go partners. body is the request's body as
// received.
func VerifyWebhook(secret string, h http.Header, body []byte, tolerance time.Duration) error {
	return partner.Verify(secret, h, body, time.Now(), tolerance)
}
