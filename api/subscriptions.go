package api

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/wire"
)

// lookupable tells whether id could name a row: PostgreSQL refuses NUL and
// invalid UTF-8, and such an id is unknown (404), not an outage (503).
func lookupable(id string) bool {
	return utf8.ValidString(id) && !strings.ContainsRune(id, 0)
}

// ownSubscription loads a subscription of the calling partner (404 otherwise).
func (s *Server) ownSubscription(c *gin.Context) (domain.Subscription, error) {
	if !lookupable(c.Param("id")) {
		return domain.Subscription{}, problem(CodeNotFound, "no subscription "+strconv.Quote(c.Param("id")))
	}
	sub, err := s.Store.Subscription(c.Request.Context(), c.Param("id"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && sub.PartnerID != currentAgent(c).PartnerID) {
		return sub, problem(CodeNotFound, "no subscription "+strconv.Quote(c.Param("id")))
	}
	if err != nil {
		return sub, unavailable(err)
	}
	return sub, nil
}

// partnerView renders a subscription for its partner, with the publisher link
// while it waits for fulfillment. A view it cannot complete is an error
// (503), never an answer with a field silently missing.
func (s *Server) partnerView(ctx context.Context, sub domain.Subscription) (wire.Subscription, error) {
	return s.partnerViewWith(ctx, sub, nil)
}

// partnerViewWith is partnerView reading publishers through cache (nil: none).
func (s *Server) partnerViewWith(ctx context.Context, sub domain.Subscription, cache publishers) (wire.Subscription, error) {
	view, err := s.unplacedView(ctx, sub, cache)
	if err == nil {
		err = s.place(ctx, &view)
	}
	return view, err
}

// publishers holds the publishers one request has read, so a list page reads
// each publisher once rather than once per pending subscription.
type publishers map[string]store.Publisher

// publisher reads a publisher, through the request's cache when there is one.
func (s *Server) publisher(ctx context.Context, cache publishers, id string) (store.Publisher, error) {
	if p, ok := cache[id]; ok {
		return p, nil
	}
	p, err := s.Store.Publisher(ctx, id)
	if err == nil && cache != nil {
		cache[id] = p
	}
	return p, err
}

// unplacedView is partnerView without the customer-side fields (lists fill
// them in one query); cache, when not nil, keeps the publishers read.
func (s *Server) unplacedView(ctx context.Context, sub domain.Subscription, cache publishers) (wire.Subscription, error) {
	var link *wire.PublisherLink
	if sub.Status == domain.StatusPendingFulfillment {
		pub, err := s.publisher(ctx, cache, sub.PublisherID)
		if err != nil {
			return wire.Subscription{}, unavailable(fmt.Errorf("publisher of %s: %w", sub.ID, err))
		}
		link = wire.NewPublisherLink(pub.LandingURL, s.Vault.AuthorizationCode(sub.ID), sub.ActivationDeadline)
	}
	if sub.BillingFrequency == "" {
		// A workflow started before billing periods answers without one: it bills once per term.
		plan, err := s.Store.Plan(ctx, sub.OfferID, sub.PlanID)
		if err != nil {
			return wire.Subscription{}, unavailable(fmt.Errorf("plan of %s: %w", sub.ID, err))
		}
		sub.BillingFrequency = sub.PricedPlan(plan).Term // the term its workflow carries, when recorded
	}
	return wire.NewSubscription(sub, s.Now(), link), nil
}

func (s *Server) getSubscription(c *gin.Context) {
	sub, err := s.ownSubscription(c)
	if err != nil {
		writeProblem(c, err)
		return
	}
	view, err := s.partnerView(c.Request.Context(), sub)
	if err != nil {
		writeProblem(c, err)
		return
	}
	c.JSON(http.StatusOK, view)
}

// listSubscriptions pages through the read model.
func (s *Server) listSubscriptions(c *gin.Context) {
	f := store.SubscriptionFilter{PartnerID: currentAgent(c).PartnerID, CustomerID: c.Query("customer_id"), Limit: 50}
	if tab, ok := c.GetQuery("tab"); ok {
		if f.Statuses = domain.TabStatuses(tab); f.Statuses == nil {
			writeProblem(c, problem(CodeInvalidRequest, "tab must be active, inactive or upcoming"))
			return
		}
	}
	if v, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			writeProblem(c, problem(CodeInvalidRequest, "limit must be an integer from 1 to 100"))
			return
		}
		f.Limit = n
	}
	if v := c.Query("cursor"); v != "" {
		seq, err := decodeCursor(v)
		if err != nil {
			writeProblem(c, problem(CodeInvalidRequest, "cursor is not one this API returned"))
			return
		}
		f.BeforeSeq = seq
	}
	page, err := s.Store.ListSubscriptions(c.Request.Context(), f)
	if err != nil {
		writeProblem(c, unavailable(err))
		return
	}
	items := make([]wire.Subscription, 0, len(page.Items))
	cache := publishers{}
	for _, sub := range page.Items {
		view, err := s.unplacedView(c.Request.Context(), sub, cache)
		if err != nil {
			writeProblem(c, err)
			return
		}
		items = append(items, view)
	}
	if err := s.placeAll(c.Request.Context(), items); err != nil {
		writeProblem(c, err)
		return
	}
	var next *string
	if page.NextSeq != 0 {
		cur := encodeCursor(page.NextSeq)
		next = &cur
	}
	c.JSON(http.StatusOK, gin.H{"items": items, "next_cursor": next})
}

func encodeCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("s:" + strconv.FormatInt(seq, 10)))
}

func decodeCursor(cursor string) (int64, error) {
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(raw) < 3 || string(raw[:2]) != "s:" {
		return 0, errors.New("bad cursor")
	}
	seq, err := strconv.ParseInt(string(raw[2:]), 10, 64)
	if err != nil || seq <= 0 {
		return 0, errors.New("bad cursor")
	}
	return seq, nil
}

func (s *Server) subscriptionEvents(c *gin.Context) {
	sub, err := s.ownSubscription(c)
	if err != nil {
		writeProblem(c, err)
		return
	}
	events, err := s.Store.Events(c.Request.Context(), sub.ID)
	if err != nil {
		writeProblem(c, unavailable(err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": wire.Events(events)})
}

func (s *Server) subscriptionBilling(c *gin.Context) {
	sub, err := s.ownSubscription(c)
	if err != nil {
		writeProblem(c, err)
		return
	}
	// The subscription again, with its ledger as of the same instant.
	sub, entries, balance, err := s.Store.Billing(c.Request.Context(), sub.ID)
	if err != nil {
		writeProblem(c, unavailable(err))
		return
	}
	plan, err := s.Store.Plan(c.Request.Context(), sub.OfferID, sub.PlanID)
	if err != nil {
		writeProblem(c, unavailable(err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": wire.Ledger(entries), "balance_minor": balance, "currency": s.currencyOf(entries),
		"upcoming_charges": wire.UpcomingCharges(domain.UpcomingCharges(sub, plan))})
}

func (s *Server) currencyOf(entries []domain.LedgerEntry) *string {
	if len(entries) == 0 {
		return nil
	}
	return &entries[0].Currency
}
