package api

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/wire"
)

// signedPayload is what a publisher's signature covers, in the "{payload}"
// slot of Standard Webhooks' "{webhook-id}.{webhook-timestamp}.{payload}":
// the raw body of a POST; for a GET, which has no body, its method and
// request target as sent ("GET /v1/publisher/subscriptions?status=active"),
// so a read's signature verifies for no other path, query or method (not
// even a POST with an empty body).
func signedPayload(c *gin.Context) ([]byte, error) {
	body, err := readBody(c)
	if err != nil || c.Request.Method != http.MethodGet {
		return body, err
	}
	if len(body) > 0 {
		return nil, problem(CodeInvalidRequest, "a GET carries no body")
	}
	return []byte(http.MethodGet + " " + requestTarget(c.Request)), nil
}

// requestTarget is the path and query exactly as the client sent them
// (percent-encoding included), also for an absolute-form request line.
func requestTarget(r *http.Request) string {
	if strings.HasPrefix(r.RequestURI, "/") {
		return r.RequestURI
	}
	return r.URL.RequestURI()
}

// listPublisherSubscriptions pages the subscriptions of the publisher's
// offers newest first, optionally only those in the given statuses.
func (s *Server) listPublisherSubscriptions(c *gin.Context, from caller) (int, any) {
	f := store.PublisherSubscriptionFilter{PublisherID: from.publisher.ID}
	for _, v := range c.QueryArray("status") {
		for _, st := range strings.Split(v, ",") {
			if !knownStatus(domain.Status(st)) {
				return fail(problem(CodeInvalidRequest, "status must be one or more (comma-separated) of "+
					"pending_fulfillment, active, cancelled, deactivated, expired, fulfillment_expired"))
			}
			f.Statuses = append(f.Statuses, domain.Status(st))
		}
	}
	limit, err := queryLimit(c)
	if err != nil {
		return fail(err)
	}
	f.Limit = limit
	if v := c.Query("cursor"); v != "" {
		seq, err := decodeCursor(v)
		if err != nil {
			return fail(problem(CodeInvalidRequest, "cursor is not one this API returned"))
		}
		f.BeforeSeq = seq
	}
	page, err := s.Store.ListPublisherSubscriptions(c.Request.Context(), f)
	if err != nil {
		return fail(unavailable(err))
	}
	items := make([]wire.Subscription, 0, len(page.Items))
	for _, sub := range page.Items {
		items = append(items, wire.NewSubscription(sub, s.Now(), nil)) // publishers never see the link
	}
	var next *string
	if page.NextSeq != 0 {
		cur := encodeCursor(page.NextSeq)
		next = &cur
	}
	return http.StatusOK, gin.H{"items": items, "next_cursor": next}
}

// getPublisherSubscription reads one subscription of the publisher's offers;
// any other id, whoever owns it, is 404.
func (s *Server) getPublisherSubscription(c *gin.Context, from caller) (int, any) {
	sub, err := s.publisherSubscription(c, from, c.Param("id"))
	if err != nil {
		return fail(err)
	}
	return http.StatusOK, wire.NewSubscription(sub, s.Now(), nil)
}

func knownStatus(st domain.Status) bool {
	return st.Terminal() || st == domain.StatusPendingFulfillment || st == domain.StatusActive
}
