package portal

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/partnerhub/fulfillment/domain"
	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/wire"
)

// subView is a subscription as the pages show it.
type subView struct {
	wire.Subscription
	Name        string // nickname, else the offer's name
	OfferName   string
	OfferKind   string
	PlanName    string
	Plan        domain.Plan
	PartnerName string
	Linked      []ref
	Parent      *ref
	NeedsSetup  bool
}

type ref struct {
	ID     string
	Name   string
	Status domain.Status
}

// catalog caches offers, plans and partners while one page is built.
type catalog struct {
	st       *store.Store
	offers   map[string]store.Offer
	plans    map[string]domain.Plan
	partners map[string]string
}

func newCatalog(st *store.Store) *catalog {
	return &catalog{st: st, offers: map[string]store.Offer{}, plans: map[string]domain.Plan{}, partners: map[string]string{}}
}

func (k *catalog) offer(ctx context.Context, id string) store.Offer {
	if o, ok := k.offers[id]; ok {
		return o
	}
	o, err := k.st.Offer(ctx, id)
	if err != nil {
		o = store.Offer{ID: id, Name: id}
	}
	k.offers[id] = o
	return o
}

func (k *catalog) plan(ctx context.Context, offerID, planID string) domain.Plan {
	key := offerID + "/" + planID
	if p, ok := k.plans[key]; ok {
		return p
	}
	p, err := k.st.Plan(ctx, offerID, planID)
	if err != nil {
		p = domain.Plan{ID: planID, Name: planID}
	}
	k.plans[key] = p
	return p
}

func (k *catalog) partner(ctx context.Context, id string) string {
	if n, ok := k.partners[id]; ok {
		return n
	}
	n := id
	if p, err := k.st.Partner(ctx, id); err == nil {
		n = p.Name
	}
	k.partners[id] = n
	return n
}

func (k *catalog) name(ctx context.Context, s domain.Subscription) string {
	if s.Nickname != nil && *s.Nickname != "" {
		return *s.Nickname
	}
	return k.offer(ctx, s.OfferID).Name
}

// views renders subscriptions; withLink adds the publisher link (with its
// authorization code) to those waiting for fulfillment.
func (p *Portal) views(ctx context.Context, k *catalog, subs []domain.Subscription, withLink bool) []subView {
	out := make([]subView, 0, len(subs))
	ids := make([]string, 0, len(subs))
	for _, s := range subs {
		var link *wire.PublisherLink
		if withLink && s.Status == domain.StatusPendingFulfillment {
			if pub, err := p.Store.Publisher(ctx, s.PublisherID); err == nil {
				link = wire.NewPublisherLink(pub.LandingURL, p.Vault.AuthorizationCode(s.ID), s.ActivationDeadline)
			}
		}
		offer := k.offer(ctx, s.OfferID)
		// At the price the subscription is charged at, which the catalog may no longer show.
		plan := s.PricedPlan(k.plan(ctx, s.OfferID, s.PlanID))
		v := subView{Subscription: wire.NewSubscription(s, p.Now(), link), Name: k.name(ctx, s), OfferName: offer.Name,
			OfferKind: offer.Kind, PlanName: plan.Name, Plan: plan, PartnerName: k.partner(ctx, s.PartnerID)}
		for _, id := range s.LinkedSubscriptionIDs {
			if l, err := p.Store.Subscription(ctx, id); err == nil {
				v.Linked = append(v.Linked, ref{ID: l.ID, Name: k.name(ctx, l), Status: l.Status})
			}
		}
		if s.ParentSubscriptionID != nil {
			if l, err := p.Store.Subscription(ctx, *s.ParentSubscriptionID); err == nil {
				v.Parent = &ref{ID: l.ID, Name: k.name(ctx, l), Status: l.Status}
			}
		}
		out = append(out, v)
		ids = append(ids, s.ID)
	}
	placements, err := p.Store.Placements(ctx, ids)
	if err != nil {
		p.Logger.Warn("portal placements", "error", err)
	}
	for i := range out {
		v := &out[i]
		if pl, ok := placements[v.ID]; ok {
			v.BillingAccountID = pl.BillingAccountID
			if pl.SiteID != nil {
				v.Site = &wire.Site{ID: *pl.SiteID, Name: *pl.SiteName, URL: *pl.SiteURL}
			}
			if v.ActionRequired != nil {
				v.ActionRequired.SetupInstructions = pl.SetupInstructions
			}
		}
		// An app lives on its parent's site: only a subscription of its own
		// that waits for its site is set up by the customer.
		v.NeedsSetup = v.Status == domain.StatusPendingFulfillment && !v.FulfillmentConfirmed && v.ParentSubscriptionID == nil
	}
	return out
}

func (p *Portal) view(ctx context.Context, s domain.Subscription, withLink bool) subView {
	return p.views(ctx, newCatalog(p.Store), []domain.Subscription{s}, withLink)[0]
}

// tab reads the ?tab= of a list (default active).
func tab(c *gin.Context) string {
	switch t := c.Query("tab"); t {
	case domain.TabUpcoming, domain.TabInactive:
		return t
	}
	return domain.TabActive
}

// pageSize is how many subscriptions a list page shows.
const pageSize = 50

// listPage is one page of a tab: its subscriptions, newest first, and where
// the next (older) page starts (0: none).
type listPage struct {
	Tab    string
	Before int64 // this page's start (0: the newest)
	Next   int64
	Items  []domain.Subscription
}

// list reads one page of a customer's subscriptions on the request's tab,
// starting at ?before= (a page link; anything else shows the newest page).
func (p *Portal) list(c *gin.Context, partnerID, customerID string) (listPage, error) {
	lp := listPage{Tab: tab(c)}
	if before, err := strconv.ParseInt(c.Query("before"), 10, 64); err == nil && before > 0 {
		lp.Before = before
	}
	page, err := p.Store.ListSubscriptions(c.Request.Context(), store.SubscriptionFilter{
		PartnerID: partnerID, CustomerID: customerID, Statuses: domain.TabStatuses(lp.Tab), Limit: pageSize, BeforeSeq: lp.Before})
	lp.Items, lp.Next = page.Items, page.NextSeq
	return lp, err
}

// maxTabItems bounds what one page that needs a whole tab reads (installed
// apps, parents in the buy form).
const maxTabItems = 1000

// tabItems reads a whole tab of a customer's subscriptions, newest first, up
// to maxTabItems.
func (p *Portal) tabItems(ctx context.Context, partnerID, customerID, t string) ([]domain.Subscription, error) {
	f := store.SubscriptionFilter{PartnerID: partnerID, CustomerID: customerID, Statuses: domain.TabStatuses(t), Limit: 100}
	var out []domain.Subscription
	for len(out) < maxTabItems {
		page, err := p.Store.ListSubscriptions(ctx, f)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if page.NextSeq == 0 {
			break
		}
		f.BeforeSeq = page.NextSeq
	}
	return out, nil
}

// ownSubscription loads the path's subscription if the visitor's tenant owns
// it: the contact's customer, or the agent's partner (404 otherwise).
func (p *Portal) ownSubscription(c *gin.Context) (domain.Subscription, bool) {
	id := identity(c)
	sub, err := p.Store.Subscription(c.Request.Context(), c.Param("id"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && (sub.PartnerID != id.PartnerID ||
		(id.CustomerID != nil && sub.CustomerID != *id.CustomerID))) {
		p.notFound(c)
		return sub, false
	}
	if err != nil {
		p.unavailable(c, err)
		return sub, false
	}
	return sub, true
}

func (p *Portal) unavailable(c *gin.Context, err error) {
	p.Logger.Warn("portal", "path", c.FullPath(), "error", err)
	p.fail(c, http.StatusServiceUnavailable, "The service is unavailable. Please try again shortly.")
}

// customerRef is the signed-in contact's customer.
func customerRef(c *gin.Context) store.CustomerRef {
	id := identity(c)
	return store.CustomerRef{PartnerID: id.PartnerID, CustomerID: *id.CustomerID}
}

func contactActor(c *gin.Context) store.ContactActor {
	return store.ContactActor{CustomerRef: customerRef(c), ContactID: *identity(c).ContactID}
}
