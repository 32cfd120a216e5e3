package testenv

import (
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Get signs and sends a GET of target (path and query) with a fresh webhook-id.
func (p Publisher) Get(target string) Response {
	p.s.t.Helper()
	return p.GetAs("msg_"+uuid.NewString(), target)
}

// GetAs signs and sends a GET of target with the given webhook-id.
func (p Publisher) GetAs(webhookID, target string) Response {
	p.s.t.Helper()
	return send(p.s.t, p.SignedGet(webhookID, target))
}

// SignedGet builds a signed GET without sending it. A GET has no body: its
// signed payload is "GET " and the request target exactly as it goes on the
// wire, e.g. "GET /v1/publisher/subscriptions?status=active".
func (p Publisher) SignedGet(webhookID, target string) *http.Request {
	p.s.t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.s.BaseURL+target, nil)
	if err != nil {
		p.s.t.Fatal(err)
	}
	wh, err := standardwebhooks.NewWebhook(p.Secret)
	if err != nil {
		p.s.t.Fatal(err)
	}
	ts := time.Now().Add(p.Skew)
	// The client writes URL.RequestURI() as the request line's target.
	sig, err := wh.Sign(webhookID, ts, []byte(http.MethodGet+" "+req.URL.RequestURI()))
	if err != nil {
		p.s.t.Fatal(err)
	}
	req.Header.Set("X-Publisher-Id", p.ID)
	req.Header.Set(standardwebhooks.HeaderWebhookID, webhookID)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, fmt.Sprint(ts.Unix()))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)
	return req
}
